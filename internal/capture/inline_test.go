package capture

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
)

// TestInlineCalls inlines a two-exit body into a program that jumps over
// its call from before it and back over it from after it, and checks the
// instructions and every jump's new target, slot by slot.
func TestInlineCalls(t *testing.T) {
	prog := asm.Instructions{
		asm.Mov.Imm(asm.R0, 0).WithSymbol("prog"),    // 0
		asm.JEq.Imm(asm.R0, 1, "").WithReference(""), // 1: over the call, to 5
		asm.LoadImm(asm.R3, 1<<40, asm.DWord),        // 2, 3: two slots
		asm.Call.Label("f"),                          // 4
		asm.Mov.Imm(asm.R0, 2),                       // 5
		asm.JNE.Imm(asm.R0, 7, "").WithReference(""), // 6: back to 1
		asm.Return(),                           // 7
		asm.Mov.Imm(asm.R0, 9).WithSymbol("f"), // 8: the function, left out
		asm.Return(),                           // 9
	}
	prog[1].Offset = 3  // 1 + 1 + 3 = slot 5
	prog[5].Offset = -6 // 6 + 1 - 6 = slot 1
	body := asm.Instructions{
		asm.JEq.Imm(asm.R1, 0, "").WithReference(""), // b0: to b3
		asm.Mov.Imm(asm.R0, 1),                       // b1
		asm.Return(),                                 // b2
		asm.Mov.Imm(asm.R0, 0),                       // b3
		asm.Return(),                                 // b4
	}
	body[0].Offset = 2
	out, n, err := inlineCalls(prog, body, "f")
	if err != nil || n != 1 {
		t.Fatalf("inlineCalls: %d calls, %v", n, err)
	}
	// Slots after: 0 mov, 1 jeq, 2-3 lddw, 4-8 body, 9 mov, 10 jne, 11 exit.
	if len(out) != 11 {
		t.Fatalf("%d instructions, want 11:\n%v", len(out), out)
	}
	want := []struct {
		i      int
		op     asm.JumpOp
		offset int16
	}{
		{1, asm.JEq, 7},   // slot 1 + 1 + 7 = 9, the mov after the body
		{3, asm.JEq, 2},   // b0, inside the body: unchanged
		{5, asm.Ja, 2},    // b2's exit: slot 6 + 1 + 2 = 9
		{7, asm.Ja, 0},    // b4's exit: slot 8 + 1 + 0 = 9
		{9, asm.JNE, -10}, // slot 10 + 1 - 10 = 1
	}
	for _, w := range want {
		ins := out[w.i]
		if ins.OpCode.JumpOp() != w.op || ins.Offset != w.offset {
			t.Errorf("instruction %d: %v, want %v with offset %d", w.i, ins, w.op, w.offset)
		}
	}
	for _, ins := range out {
		if ins.Symbol() == "f" || ins.IsFunctionCall() {
			t.Errorf("%v is left", ins)
		}
	}
}

// TestFilterInlined: with a filter, no program of any object keeps a call
// of the stub, or the stub itself.
func TestFilterInlined(t *testing.T) {
	flt, err := filter.Parse([]string{"udp and dst port 53"})
	if err != nil {
		t.Fatal(err)
	}
	specs := map[string]func() (*ebpf.CollectionSpec, error){
		"tc": bpfprog.LoadTC, "xdp": bpfprog.LoadXDP, "cgroup": bpfprog.LoadCgroup,
		"process": func() (*ebpf.CollectionSpec, error) { return ProcessSpec(1024) },
	}
	for name, load := range specs {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		if err := applyFilter(spec, flt); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for pn, p := range spec.Programs {
			for _, ins := range p.Instructions {
				if ins.Symbol() == filterFunc || (ins.IsFunctionCall() && ins.Reference() == filterFunc) {
					t.Errorf("%s/%s still has %v", name, pn, ins)
				}
			}
		}
	}
}
