package capture

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
)

// TCOptions configure a TC capture.
type TCOptions struct {
	Ifindex    int
	MaxEntries uint32
	Attach     attach.TCMode
	Log        *slog.Logger
	// NoARP counts ARP frames without their opcode and addresses.
	NoARP bool
	// Filter is the filter expression; nil counts every packet.
	Filter *filter.Filter
	// Several, when set, are the interfaces to watch instead of Ifindex
	// (ifaces.go): rows then name their interface.
	Several *netif.Several
	// specHook, for tests, changes the spec before it loads.
	specHook func(*ebpf.CollectionSpec)
}

// TC counts both directions of one interface with TC programs.
type TC struct {
	session[bpfprog.FlowKey]
	objs bpfprog.TCObjects
	tc   *attach.TC
	set  *ifaceSet // several interfaces; nil with one
}

// StartTC loads the TC programs and attaches them. Counting starts when it
// returns.
func StartTC(o TCOptions) (*TC, error) {
	t, err := loadTC(o)
	if err != nil {
		return nil, err
	}
	// Identified now, while the process may read what the kernel says of
	// them: -i any attaches again after the privilege drop.
	progs, err := attach.NewTCPrograms(t.objs.PktstatIngress, t.objs.PktstatEgress)
	if err != nil {
		t.Close()
		return nil, err
	}
	return t.attach(o, progs)
}

// loadTC loads the TC programs and their flow table, attached nowhere.
func loadTC(o TCOptions) (*TC, error) {
	if err := checkMemory(o.MaxEntries); err != nil {
		return nil, err
	}
	layout, err := defaultLayout()
	if err != nil {
		return nil, err
	}
	spec, err := sizedSpec(bpfprog.LoadTC, "TC", o.MaxEntries, layout)
	if err != nil {
		return nil, err
	}
	if err := spec.Variables[bpfprog.TCVarArpDetail].Set(!o.NoARP); err != nil {
		return nil, fmt.Errorf("set arp_detail: %w", err)
	}
	if err := applyFilter(spec, o.Filter); err != nil {
		return nil, err
	}
	if o.specHook != nil {
		o.specHook(spec)
	}
	log := orDiscard(o.Log)
	t := &TC{set: newIfaceSet(o.Several, o.Log)}
	t.free = t.objs.Close
	err = loadDegrading(spec, []extra{l7Detection}, log, func(s *ebpf.CollectionSpec) error {
		return s.LoadAndAssign(&t.objs, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("%w%s", loadError(err, o.MaxEntries), kernel.Hint("TC mode", 5, 7))
	}
	// Every mode names its own maps to flowtable: bpf2go gives each object
	// types of its own, so the fields cannot be picked out in one place.
	t.table, err = flowtable.New(flowtable.Maps{
		Slot:      t.objs.FlowTables,
		Flows:     t.objs.Flows,
		Untracked: t.objs.Untracked,
		HLL:       t.objs.UntrackedHll,
		Filtered:  t.objs.Filtered,
		Gen:       t.objs.UntrackedGen,
		Rows:      t.objs.ArrayRows,
		Cache:     t.objs.FlowCache,
	}, spec.Maps[bpfprog.TCMapFlows], t.set.keyFromBPF)
	if err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// attach puts the loaded programs on the interfaces o names.
func (t *TC) attach(o TCOptions, progs attach.TCPrograms) (*TC, error) {
	var err error
	if t.set != nil {
		t.detach = t.set.Close
		err := t.set.start(func(ifc netif.Interface) (io.Closer, string, error) {
			a, err := attach.AttachTC(ifc.Index, progs, o.Attach, o.Log)
			if err != nil {
				return nil, "", err
			}
			return a, string(a.Mode()), nil
		})
		if err != nil {
			t.Close()
			return nil, err
		}
		return t, nil
	}
	t.tc, err = attach.AttachTC(o.Ifindex, progs, o.Attach, o.Log)
	if err != nil {
		t.Close()
		return nil, err
	}
	t.detach = t.tc.Close
	return t, nil
}

// Mode says how the programs are attached; on several interfaces, every
// way they are, joined by commas ("legacy,tcx").
func (t *TC) Mode() attach.TCMode {
	if t.set != nil {
		return attach.TCMode(t.set.modes())
	}
	return t.tc.Mode()
}

// Describe names the mode and the attach method.
func (t *TC) Describe() string { return "tc/" + string(t.Mode()) }
