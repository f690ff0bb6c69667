// Package capture runs the eBPF programs of one capture mode: it loads them,
// attaches them through internal/attach, and reads the flow table back into
// the pure-Go model of internal/flow.
package capture

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
)

// haveHelper reports whether programs of type typ may call helper fn, as
// a feature probe finds; what names the feature in a failed probe's error.
func haveHelper(typ ebpf.ProgramType, fn asm.BuiltinFunc, what string) (bool, error) {
	err := features.HaveProgramHelper(typ, fn)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return false, nil
	default:
		return false, fmt.Errorf("probe for %s: %w", what, loadError(err, 0))
	}
}

// loadError explains the usual reasons a load fails. entries is the size
// of the flow tables being loaded, 0 for a probe that has none.
func loadError(err error, entries uint32) error {
	if entries > 0 && (errors.Is(err, unix.E2BIG) || errors.Is(err, unix.ENOMEM)) {
		size := "they"
		ncpu, cerr := ebpf.PossibleCPU()
		layout, lerr := flowtable.Resolve(flowtable.Default)
		if cerr == nil && lerr == nil {
			size = fmt.Sprintf("they would lock about %s of kernel memory, and", flowtable.MiB(flowtable.Bytes(entries, ncpu, layout)))
		}
		return fmt.Errorf("load eBPF programs: the kernel refused flow tables of %d flows: %s %w: lower --max-entries", entries, size, err)
	}
	if r := kernel.AsRefusal(err); r != nil {
		// The verifier ran and said no: no capability would change that.
		return r
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("load eBPF programs: %w: run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON", err)
	}
	return fmt.Errorf("load eBPF programs: %w", err)
}

// Source is a running capture in any mode.
type Source interface {
	// Drain returns every count since the previous Drain (or the start),
	// each exactly once, and empties the kernel's table.
	Drain() (flow.Snapshot, error)
	// Stop detaches the programs: counting ends, the table stays readable.
	Stop() error
	// Close detaches the programs and frees the kernel objects.
	Close() error
	// Describe names the mode and how it is attached, for the log.
	Describe() string
}

// orDiscard is log, or a logger that discards everything if log is nil.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// sizedSpec loads an object's spec with load and gives its flow table
// maxEntries rows in layout, and its flow cache, if it has one, the size
// for this machine; what names the object in an error.
func sizedSpec(load func() (*ebpf.CollectionSpec, error), what string, maxEntries uint32, layout flowtable.Layout) (*ebpf.CollectionSpec, error) {
	spec, err := load()
	if err != nil {
		return nil, fmt.Errorf("load %s object: %w", what, err)
	}
	flowtable.Size(spec, maxEntries)
	if err := setLayout(spec, layout); err != nil {
		return nil, err
	}
	if err := flowtable.SizeCache(spec, 0); err != nil {
		return nil, err
	}
	return spec, nil
}

// tableAddFunc is the global function that adds to an array flow table
// (bpf/include/account.h).
const tableAddFunc = "pktstat_table_add"

// setLayout is flowtable.SetLayout of layout resolved (flowtable.Resolve),
// and for a hash table it takes the
// array table's global function out of spec's programs, with a result of
// 0 in place of each call (which the programs make only for an array
// table): kernels before 5.12 refuse the function whether or not it runs,
// for its atomics and its pointer argument.
func setLayout(spec *ebpf.CollectionSpec, layout flowtable.Layout) error {
	layout, err := flowtable.Resolve(layout)
	if err != nil {
		return err
	}
	if err := flowtable.SetLayout(spec, layout); err != nil {
		return err
	}
	if layout == flowtable.Array {
		return nil
	}
	if err := inlineFunc(spec, asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, tableAddFunc); err != nil {
		return fmt.Errorf("set the flow table's layout: %w", err)
	}
	return nil
}

// defaultLayout is the flow table's layout on this kernel
// (flowtable.Resolve).
func defaultLayout() (flowtable.Layout, error) { return flowtable.Resolve(flowtable.Default) }

// checkMemory refuses two flow tables of maxEntries flows in this
// kernel's layout that would not fit in memory (flowtable.CheckMemory).
func checkMemory(maxEntries uint32) error {
	layout, err := defaultLayout()
	if err != nil {
		return err
	}
	return flowtable.CheckMemory(maxEntries, layout)
}
