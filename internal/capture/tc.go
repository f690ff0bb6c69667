package capture

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
)

// TCOptions configure a TC capture.
type TCOptions struct {
	Ifindex    int
	MaxEntries uint32
	Attach     attach.TCMode
	Log        *slog.Logger
	// NoARP counts ARP frames without their opcode and addresses.
	NoARP bool
	// specHook, for tests, changes the spec before it loads.
	specHook func(*ebpf.CollectionSpec)
}

// TC counts both directions of one interface with TC programs.
type TC struct {
	objs   bpfprog.TCObjects
	table  *table[bpfprog.FlowKey]
	tc     *attach.TC
	closed bool
}

// StartTC loads the TC programs and attaches them. Counting starts when it
// returns.
func StartTC(o TCOptions) (*TC, error) {
	if err := checkTableMemory(o.MaxEntries); err != nil {
		return nil, err
	}
	spec, err := bpfprog.LoadTC()
	if err != nil {
		return nil, fmt.Errorf("load TC object: %w", err)
	}
	sizeFlowTables(spec, o.MaxEntries)
	if err := spec.Variables[bpfprog.TCVarArpDetail].Set(!o.NoARP); err != nil {
		return nil, fmt.Errorf("set arp_detail: %w", err)
	}
	if o.specHook != nil {
		o.specHook(spec)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &TC{}
	err = loadDegrading(spec, []extra{l7Detection}, log, func(s *ebpf.CollectionSpec) error {
		return s.LoadAndAssign(&t.objs, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("%w%s", loadError(err, o.MaxEntries), kernel.Hint("TC mode", 5, 7))
	}
	t.table, err = newTable(tableMaps{
		Slot:      t.objs.FlowTables,
		Flows:     t.objs.Flows,
		Untracked: t.objs.Untracked,
		HLL:       t.objs.UntrackedHll,
		Gen:       t.objs.UntrackedGen,
	}, spec.Maps[bpfprog.TCMapFlows], KeyFromBPF)
	if err != nil {
		t.objs.Close()
		return nil, err
	}
	t.tc, err = attach.AttachTC(o.Ifindex, attach.TCPrograms{
		Ingress: t.objs.PktstatIngress,
		Egress:  t.objs.PktstatEgress,
	}, o.Attach, o.Log)
	if err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Mode says how the programs are attached.
func (t *TC) Mode() attach.TCMode { return t.tc.Mode() }

// Stop detaches the programs; counting ends, and the table stays readable.
func (t *TC) Stop() error {
	if t.closed {
		return nil
	}
	t.closed = true
	return t.tc.Close()
}

// Drain returns every count since the previous Drain.
func (t *TC) Drain() (flow.Snapshot, error) {
	return t.table.drain(nil)
}

// Close detaches the programs and frees the kernel objects.
func (t *TC) Close() error {
	var errs []error
	if t.tc != nil {
		errs = append(errs, t.Stop())
	}
	if t.table != nil {
		errs = append(errs, t.table.close())
	}
	return errors.Join(append(errs, t.objs.Close())...)
}

// Describe names the mode and the attach method.
func (t *TC) Describe() string { return "tc/" + string(t.tc.Mode()) }
