package filter

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// keyProgram is a SchedCLS program that copies the first 48 bytes of its
// packet (a flow key) to the stack and returns what the compiled filter,
// called as a function with R1 pointing there, says: the call the tool's
// programs make, verified and run by the kernel.
func keyProgram(t *testing.T, body asm.Instructions) *ebpf.Program {
	t.Helper()
	fn := make(asm.Instructions, len(body))
	copy(fn, body)
	fn[0] = fn[0].WithSymbol("filter")
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm(asm.R2, 0),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, -48),
		asm.Mov.Imm(asm.R4, 48),
		asm.FnSkbLoadBytes.Call(),
		asm.JEq.Imm(asm.R0, 0, "copied"),
		asm.Mov.Imm(asm.R0, 2),
		asm.Return(),
		asm.Mov.Reg(asm.R1, asm.R10).WithSymbol("copied"),
		asm.Add.Imm(asm.R1, -48),
		asm.Call.Label("filter"),
		asm.Return(),
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "MIT", Instructions: append(insns, fn...)})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

// TestKernelMatchesReference runs random expressions on random keys in
// the kernel and checks each verdict against Match.
func TestKernelMatchesReference(t *testing.T) {
	bpftest.RequireRoot(t)
	r := rand.New(rand.NewPCG(3, 4))
	for range 60 {
		expr := randomExpr(r, 3)
		f, err := Parse(strings.Fields(expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		insns, err := f.Instructions()
		if err != nil {
			t.Fatal(err)
		}
		prog := keyProgram(t, insns)
		for range 100 {
			k := randomKey(r)
			data := append(keyBytes(&k), make([]byte, 16)...) // BPF_PROG_TEST_RUN wants a whole IPv6 header's room
			got := bpftest.Run(t, prog, data, nil)
			if want := f.Match(&k); got != map[bool]uint32{true: 1, false: 0}[want] {
				t.Fatalf("%s on %+v: the kernel says %d, Match %v", expr, k, got, want)
			}
		}
	}
}
