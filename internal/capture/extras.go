package capture

import (
	"fmt"
	"log/slog"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
)

// An extra is a part of a mode's programs that counting does not need: a
// kernel whose verifier refuses it gets the mode without it.
type extra struct {
	lost string                           // what the user does without, for the warning
	drop func(*ebpf.CollectionSpec) error // takes it out of a spec
}

// l7Detection is the application-protocol detection of the TC and XDP
// programs (bpf/include/l7.h). Its detectors sit in a global function of
// their own, which the verifier checks on its own; dropping it replaces
// that function's body with "return L7_NONE", so every row says that no
// protocol was recognised.
var l7Detection = extra{
	lost: "application protocol detection (the l7 column stays empty)",
	drop: func(spec *ebpf.CollectionSpec) error {
		return stubFunc(spec, int32(bpfprog.TCL7ProtoL7NONE), "pktstat_l7_skb", "pktstat_l7_xdp")
	},
}

// stubFunc replaces the body of each global function named in names, in
// every program of spec that calls it, with "return ret". The function
// keeps its symbol and BTF signature, which the verifier checks its
// callers against. A spec in which no program has any of them is an
// error: the extra would be dropped in name only.
func stubFunc(spec *ebpf.CollectionSpec, ret int32, names ...string) error {
	return replaceFunc(spec, asm.Instructions{asm.Mov.Imm(asm.R0, ret), asm.Return()}, names...)
}

// loadDegrading loads spec with load. If the verifier refuses it, it drops
// the extras one at a time, in order, until the rest loads, and warns once,
// naming what was dropped and the refusal. A failure that is not the
// verifier's, or a refusal with every extra dropped, is returned as the
// first refusal. load must leave nothing behind when it fails.
func loadDegrading(spec *ebpf.CollectionSpec, extras []extra, log *slog.Logger, load func(*ebpf.CollectionSpec) error) error {
	err := load(spec)
	refusal := kernel.AsRefusal(err)
	if refusal == nil || len(extras) == 0 {
		return err
	}
	s := spec.Copy()
	var lost []string
	for _, x := range extras {
		if derr := x.drop(s); derr != nil {
			return fmt.Errorf("%w (and dropping %s failed: %w)", refusal, x.lost, derr)
		}
		lost = append(lost, x.lost)
		rerr := load(s)
		if rerr == nil {
			log.Warn("starting without parts that this kernel's verifier refuses", "without", lost, "refusal", refusal.Error())
			return nil
		}
		if kernel.AsRefusal(rerr) == nil {
			return rerr
		}
	}
	return refusal
}
