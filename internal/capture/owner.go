package capture

import (
	"bytes"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// The modes that know a socket's owner (cgroup and process mode) share
// the row key of bpf/include/owner.h, read as bpfprog.OwnedFlowKey,
// and the naming of its owner: the process name from the object's comms
// map and the cgroup's path from its id.

// cgroupNamer names cgroup ids: cgroups.Resolver below one directory,
// cgroups.IDResolver anywhere on the host.
type cgroupNamer interface {
	Paths(ids []uint64) (map[uint64]string, error)
}

// ownedKey converts an owner-keyed row into the model's key with the
// owner's PID, and appends the row's cgroup id to rowCgroups for
// nameOwners.
func ownedKey(k *bpfprog.OwnedFlowKey, rowCgroups *[]uint64) flow.Key {
	fk := OwnedKeyFromBPF(k)
	fk.Owner = flow.NewOwner(flow.OwnerInfo{PID: k.Pid})
	*rowCgroups = append(*rowCgroups, k.CgroupId)
	return fk
}

// nameOwners fills in the process name and cgroup path of every row of s,
// whose cgroup ids rowCgroups holds in row order.
func nameOwners(s *flow.Snapshot, rowCgroups []uint64, names cgroupNamer, comms *ebpf.Map, log *slog.Logger) {
	var (
		ids   []uint64
		seen  = map[uint64]bool{}
		named = map[uint32]string{}
	)
	for _, id := range rowCgroups {
		if id != 0 && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	paths, err := names.Paths(ids)
	if err != nil {
		// Rows without a cgroup name are still right: say why, go on.
		log.Warn("could not name every cgroup", "error", err)
	}
	for i := range s.Flows {
		o := s.Flows[i].Owner.Info()
		if o.PID != 0 {
			name, ok := named[o.PID]
			if !ok {
				name = commOf(comms, o.PID)
				named[o.PID] = name
			}
			o.Comm = name
		}
		o.Cgroup = paths[rowCgroups[i]]
		s.Flows[i].Owner = flow.NewOwner(o)
	}
}

// commOf names process pid: from the comms map, else from /proc (the map
// is an LRU and may have forgotten it), else "".
func commOf(comms *ebpf.Map, pid uint32) string {
	var name bpfprog.OwnerComm
	if err := comms.Lookup(pid, &name); err == nil {
		b := make([]byte, 0, len(name.Comm))
		for _, ch := range name.Comm {
			if ch == 0 {
				break
			}
			b = append(b, byte(ch))
		}
		return cleanComm(b)
	}
	raw, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return ""
	}
	return cleanComm(bytes.TrimSuffix(raw, []byte("\n")))
}

// cleanComm makes a process name safe for a one-line report: a process
// may name itself anything, control characters included.
func cleanComm(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, string(b))
}

// OwnedKeyFromBPF converts the flow part of an owner-keyed row into the
// model's key; the owner is left for the caller to name.
func OwnedKeyFromBPF(k *bpfprog.OwnedFlowKey) flow.Key {
	f := &k.Flow
	return KeyFromBPF(&bpfprog.FlowKey{
		Saddr:    f.Saddr,
		Daddr:    f.Daddr,
		Sport:    f.Sport,
		Dport:    f.Dport,
		EthProto: f.EthProto,
		Vlan:     f.Vlan,
		Proto:    f.Proto,
		Flags:    bpfprog.TCFlowFlags(f.Flags),
		Dir:      bpfprog.TCFlowDir(f.Dir),
	})
}
