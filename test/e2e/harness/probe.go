package harness

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// CounterProg is a program of some other tool on the same hook, or a
// test's probe: it counts packets in the slots of an array and hands every
// packet on.
type CounterProg struct {
	Prog   *ebpf.Program
	counts *ebpf.Map
}

// __sk_buff field offsets (uapi linux/bpf.h).
const (
	skbLenOff     = 0
	skbDataOff    = 76
	skbDataEndOff = 80
)

// LoadCounterProg loads a TC CounterProg with slots counters, which hands
// every packet on with TC_ACT_UNSPEC (TCX_NEXT). body starts with the skb
// in R6 and jumps to "out" to hand a packet on; inc(slot, label) gives the
// instructions that add one to a slot, the first of them labelled unless
// label is empty.
func LoadCounterProg(t *testing.T, name string, slots uint32, body func(inc func(slot int32, label string) asm.Instructions) asm.Instructions) *CounterProg {
	t.Helper()
	return LoadCounter(t, name, ebpf.SchedCLS, -1, slots, body)
}

// LoadCounter is LoadCounterProg for a program of type typ, which returns
// pass at "out"; body starts with the context in R6.
func LoadCounter(t *testing.T, name string, typ ebpf.ProgramType, pass int32, slots uint32, body func(inc func(slot int32, label string) asm.Instructions) asm.Instructions) *CounterProg {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: slots})
	if err != nil {
		t.Fatalf("create counter map: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	inc := func(slot int32, label string) asm.Instructions {
		insns := asm.Instructions{
			asm.StoreImm(asm.RFP, -4, int64(slot), asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		}
		if label != "" {
			insns[0] = insns[0].WithSymbol(label)
		}
		return insns
	}
	insns := append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, body(inc)...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, pass).WithSymbol("out"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: typ, License: "MIT", Instructions: insns})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(func() { prog.Close() })
	return &CounterProg{Prog: prog, counts: m}
}

// NewCounterProg counts the skbs of one frame length in slot 0, and in
// slot 1 those of them whose first hdrLen bytes are not all in the linear
// area.
func NewCounterProg(t *testing.T, name string, frameLen, hdrLen int) *CounterProg {
	t.Helper()
	return LoadCounterProg(t, name, 2, func(inc func(int32, string) asm.Instructions) asm.Instructions {
		insns := asm.Instructions{
			asm.LoadMem(asm.R2, asm.R6, skbLenOff, asm.Word),
			asm.JNE.Imm(asm.R2, int32(frameLen), "out"),
			asm.Mov.Imm(asm.R7, 0),
			asm.LoadMem(asm.R3, asm.R6, skbDataOff, asm.Word),
			asm.LoadMem(asm.R4, asm.R6, skbDataEndOff, asm.Word),
			asm.Add.Imm(asm.R3, int32(hdrLen)),
			asm.JLE.Reg(asm.R3, asm.R4, "all"),
			asm.Mov.Imm(asm.R7, 1),
		}
		insns = append(insns, inc(0, "all")...)
		insns = append(insns, asm.JEq.Imm(asm.R7, 0, "out"))
		return append(insns, inc(1, "")...)
	})
}

func (c *CounterProg) Count(t *testing.T, slot uint32) uint64 {
	t.Helper()
	var v uint64
	if err := c.counts.Lookup(slot, &v); err != nil {
		t.Fatalf("read counter %d: %v", slot, err)
	}
	return v
}

// AttachTCXHead attaches prog at the head of e's TCX hook, ahead of the tool.
func AttachTCXHead(t *testing.T, e testnet.End, prog *ebpf.Program, at ebpf.AttachType) {
	t.Helper()
	var l link.Link
	if err := e.Do(func() (err error) {
		l, err = link.AttachTCX(link.TCXOptions{Interface: e.Index, Program: prog, Attach: at, Anchor: link.Head()})
		return err
	}); err != nil {
		t.Fatalf("attach %v: %v", prog, err)
	}
	t.Cleanup(func() { l.Close() })
}
