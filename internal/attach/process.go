package attach

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Tracing is a set of tracing programs attached to kernel hooks: BTF
// tracepoints (tp_btf), fentry/fexit trampolines and kprobes. Every
// attachment is a link that goes away with its last file descriptor, so
// even a killed run leaves nothing behind; Close detaches them all.
type Tracing struct {
	links []link.Link
}

// AttachBTF attaches a tp_btf, fentry or fexit program to the hook that it
// named when it was loaded.
func (t *Tracing) AttachBTF(prog *ebpf.Program, what string) error {
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("attach %s: %w", what, err)
	}
	t.links = append(t.links, l)
	return nil
}

// kprobePMU is the perf event source that kprobes are created through; a
// kernel without kprobes has none.
const kprobePMU = "/sys/bus/event_source/devices/kprobe"

// AttachKprobe attaches a kprobe program to the entry of the kernel
// function symbol, or with ret to its return.
func (t *Tracing) AttachKprobe(prog *ebpf.Program, symbol string, ret bool) error {
	attach, what := link.Kprobe, "kprobe"
	if ret {
		attach, what = link.Kretprobe, "kretprobe"
	}
	l, err := attach(symbol, prog, nil)
	if err != nil {
		if _, serr := os.Stat(kprobePMU); errors.Is(serr, os.ErrNotExist) {
			// What the library says then (no tracefs to fall back on)
			// hides the cause.
			return fmt.Errorf("attach %s %s: this kernel has no kprobes (no %s: CONFIG_KPROBES is off): %w", what, symbol, kprobePMU, ebpf.ErrNotSupported)
		}
		return fmt.Errorf("attach %s %s: %w", what, symbol, err)
	}
	t.links = append(t.links, l)
	return nil
}

// Len is the number of attached links.
func (t *Tracing) Len() int { return len(t.links) }

// Close detaches every program, in the reverse order of attaching.
func (t *Tracing) Close() error {
	var errs []error
	for i := len(t.links) - 1; i >= 0; i-- {
		if err := t.links[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach tracing link: %w", err))
		}
	}
	t.links = nil
	return errors.Join(errs...)
}

// RunIter runs an iterator program once over everything it iterates, and
// detaches it: the program's side effects (map updates) are its result.
func RunIter(prog *ebpf.Program, what string) error {
	it, err := link.AttachIter(link.IterOptions{Program: prog})
	if err != nil {
		return fmt.Errorf("attach iterator %s: %w", what, err)
	}
	defer it.Close()
	r, err := it.Open()
	if err != nil {
		return fmt.Errorf("open iterator %s: %w", what, err)
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("run iterator %s: %w", what, err)
	}
	return nil
}
