package capture

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/owners"
)

// CgroupOptions configure a cgroup capture.
type CgroupOptions struct {
	Dir        cgroups.Dir // the cgroup v2 directory to watch (cgroups.Open)
	MaxEntries uint32
	Log        *slog.Logger
	// Filter is the filter expression; nil counts every packet.
	Filter *filter.Filter
}

// Cgroup counts the traffic of the sockets in one cgroup v2 directory and
// below it, both directions, with the owner of each socket on its rows.
type Cgroup struct {
	session[bpfprog.OwnedFlowKey]
	objs bpfprog.CgroupObjects
	cg   *attach.Cgroup
	dir  cgroups.Dir
	log  *slog.Logger
}

// StartCgroup loads the cgroup programs and attaches them. Counting starts
// when it returns.
//
// The order makes every socket's rows carry one owner from its first
// counted packet on: sock_create is attached first, so that every socket
// created from then on records its creator; then the sockets that already
// exist get the process that holds them (owners.Seed); only then are the
// counting programs attached.
func StartCgroup(o CgroupOptions) (*Cgroup, error) {
	if err := checkMemory(o.MaxEntries); err != nil {
		return nil, err
	}
	layout, err := defaultLayout()
	if err != nil {
		return nil, err
	}
	spec, err := sizedSpec(bpfprog.LoadCgroup, "cgroup", o.MaxEntries, layout)
	if err != nil {
		return nil, err
	}
	mptcp, err := ProbeMPTCPOwner()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables[bpfprog.CgroupVarMptcpAware].Set(mptcp); err != nil {
		return nil, fmt.Errorf("set mptcp_aware: %w", err)
	}
	if err := applyFilter(spec, o.Filter); err != nil {
		return nil, err
	}
	log := orDiscard(o.Log)
	c := &Cgroup{dir: o.Dir, log: log}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		return nil, loadError(err, o.MaxEntries)
	}
	c.free = c.objs.Close
	// Rows name their owners: the process from the comms map (or /proc,
	// for a name the map has forgotten), the cgroup's path from its id.
	names, err := cgroups.NewResolver(c.dir.Path, cgroups.DefaultMaxDirs)
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	c.namer = owners.NewNamer(names, c.objs.Comms, log)
	c.table, err = flowtable.New(flowtable.Maps{
		Slot:      c.objs.FlowTables,
		Flows:     c.objs.Flows,
		Untracked: c.objs.Untracked,
		HLL:       c.objs.UntrackedHll,
		Filtered:  c.objs.Filtered,
		Gen:       c.objs.UntrackedGen,
		Rows:      c.objs.ArrayRows,
	}, spec.Maps[bpfprog.CgroupMapFlows], c.namer.Key)
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	if err := c.start(); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// ProbeMPTCPOwner reports whether cgroup_skb programs may call
// bpf_skc_to_mptcp_sock (Linux 5.19+, and CAP_PERFMON), which finds the
// MPTCP socket, and with it the owner, of a subflow. Without it, traffic of
// MPTCP sockets is counted without a PID. Go's net.Listen makes MPTCP
// listeners by default since Go 1.24, so this is not rare.
func ProbeMPTCPOwner() (bool, error) {
	return haveHelper(ebpf.CGroupSKB, asm.FnSkcToMptcpSock, "bpf_skc_to_mptcp_sock")
}

func (c *Cgroup) start() error {
	var err error
	if c.cg, err = attach.OpenCgroup(c.dir.Path); err != nil {
		return err
	}
	c.detach = c.cg.Close
	if err := c.cg.Attach(c.objs.PktstatCgSock, ebpf.AttachCGroupInetSockCreate); err != nil {
		return err
	}
	pids, err := cgroups.Procs(c.dir.Path, cgroups.DefaultMaxDirs)
	if err != nil {
		return err
	}
	if err := owners.Seed(pids, c.objs.SockOwners, c.objs.Comms, c.log); err != nil {
		return err
	}
	if err := c.cg.Attach(c.objs.PktstatCgIn, ebpf.AttachCGroupInetIngress); err != nil {
		return err
	}
	return c.cg.Attach(c.objs.PktstatCgOut, ebpf.AttachCGroupInetEgress)
}

// Path is the watched cgroup directory.
func (c *Cgroup) Path() string { return c.dir.Path }

// Describe names the mode.
func (c *Cgroup) Describe() string { return "cgroup" }
