package bpfprog

// The types every object shares, under names of their own. bpf2go names a
// type after the object it generated it from, but these come from the
// shared headers, byte for byte alike in every object that uses them (the
// tests in internal/capture check the maps' sizes and layouts):
//
//   - bpf/include/pktstat.h: the flow key and counters of every mode, and
//     the sketch of untracked flows;
//   - bpf/include/owner.h: the owned row of cgroup and process mode (a
//     flow key and its socket's owner), the owner kept in socket storage,
//     and a process name.
type (
	FlowKey = TCFlowKey
	FlowVal = TCFlowVal
	HLL     = TCHll
	// The flow cache of the TC and XDP objects (bpf/include/account_l7.h).
	FlowCacheEntry = TCFlowCacheEntry
	OwnedFlowKey   = CgroupOwnedFlowKey
	SockOwner      = CgroupSockOwner
	OwnerComm      = CgroupOwnerComm
)
