// Package owners names the owners of sockets, for the modes that know
// them (cgroup and process mode): it records who holds each socket that
// existed before the capture started (seeding), and names each row's
// owner after a drain (its process name and its cgroup's path). Both modes
// share the row key of bpf/include/owner.h, read as bpfprog.OwnedFlowKey.
package owners

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strconv"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
)

// CgroupNamer names cgroup ids: cgroups.Resolver below one directory,
// cgroups.IDResolver anywhere on the host.
type CgroupNamer interface {
	Paths(ids []uint64) (map[uint64]string, error)
}

// Namer names the owners of the rows of one owner-keyed table: the
// process name from the object's comms map (or /proc), the cgroup's path
// from its id. Its Key converts the table's rows for flowtable.New and
// notes each row's cgroup id; Drain then names them all at once.
type Namer struct {
	names CgroupNamer
	comms *ebpf.Map
	log   *slog.Logger
	// rowCgroups holds the cgroup id of each row of the drain under way.
	rowCgroups []uint64
}

// NewNamer names owners with names and the comms map of the object.
func NewNamer(names CgroupNamer, comms *ebpf.Map, log *slog.Logger) *Namer {
	return &Namer{names: names, comms: comms, log: log}
}

// Key converts an owner-keyed row into the model's key with the owner's
// PID, and notes the row's cgroup id for Drain.
func (n *Namer) Key(k *bpfprog.OwnedFlowKey) flow.Key {
	fk := flowtable.OwnedKeyFromBPF(k)
	fk.Owner = flow.NewOwner(flow.OwnerInfo{PID: k.Pid})
	n.rowCgroups = append(n.rowCgroups, k.CgroupId)
	return fk
}

// Drain runs drain, a drain of the table whose rows Key converts, and
// names the owners of its rows.
func (n *Namer) Drain(drain func(rows []flow.Flow) (flow.Snapshot, error)) (flow.Snapshot, error) {
	n.rowCgroups = n.rowCgroups[:0]
	s, err := drain(nil)
	if err != nil && !errors.Is(err, flow.ErrPartialDrain) {
		return flow.Snapshot{}, err
	}
	n.name(&s)
	return s, err
}

// name fills in the process name and cgroup path of every row of s, whose
// cgroup ids rowCgroups holds in row order.
func (n *Namer) name(s *flow.Snapshot) {
	rowCgroups, names, comms, log := n.rowCgroups, n.names, n.comms, n.log
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
// is an LRU and may have forgotten it), else "". The name is as the
// process set it, control characters and all: every output makes it safe
// (internal/untrusted).
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
		return string(b)
	}
	raw, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSuffix(raw, []byte("\n")))
}
