package filter

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"unsafe"

	"github.com/cilium/ebpf/asm"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
)

// The flow key's fields, where bpf2go's copy of struct flow_key has them:
// nothing here is kept in sync with the C by hand.
var fk bpfprog.FlowKey

var (
	offSrc   = int16(unsafe.Offsetof(fk.Saddr))
	offDst   = int16(unsafe.Offsetof(fk.Daddr))
	offSport = int16(unsafe.Offsetof(fk.Sport))
	offDport = int16(unsafe.Offsetof(fk.Dport))
	offEth   = int16(unsafe.Offsetof(fk.EthProto))
	offVLAN  = int16(unsafe.Offsetof(fk.Vlan))
	offProto = int16(unsafe.Offsetof(fk.Proto))
	offFlags = int16(unsafe.Offsetof(fk.Flags))
	fragment = uint32(bpfprog.TCFlowFlagsFLOW_F_FRAGMENT)
)

// MaxInstructions bounds a compiled filter: far below the verifier's
// limits, and far above any expression a user types.
const MaxInstructions = 4096

// cond is an expression lowered to comparisons of the key's fields.
type cond interface{}

type (
	cAnd   []cond
	cOr    []cond
	cNot   struct{ c cond }
	cConst bool
	// cTest compares a field, ANDed with mask if mask is not 0, with val.
	cTest struct {
		off  int16
		size asm.Size
		mask uint32
		op   asm.JumpOp
		val  uint32
	}
)

// facts are what the code already knows of a key where a primitive is
// tested: the EtherTypes and IP protocols it can have, nil for any. The
// conjuncts before a primitive establish them ("udp and port 53": port
// need not test the EtherType and protocol again), so a typical
// expression tests each field once.
type facts struct {
	eth    []uint16
	protos []uint8
}

// intersect keeps what both sets allow; nil allows anything.
func intersect[T comparable](a, b []T) []T {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	out := []T{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func (f facts) and(g facts) facts {
	return facts{eth: intersect(f.eth, g.eth), protos: intersect(f.protos, g.protos)}
}

// oneOf tests whether the field at off (of size) is one of vals, where
// known is what it can be (nil: anything).
func oneOf[T uint8 | uint16](off int16, size asm.Size, vals, known []T) cond {
	if known != nil {
		if len(intersect(known, vals)) == len(known) {
			return cConst(true)
		}
		vals = intersect(vals, known)
	}
	var c cOr
	for _, v := range vals {
		c = append(c, cTest{off: off, size: size, op: asm.JEq, val: uint32(v)})
	}
	switch len(c) {
	case 0:
		return cConst(false)
	case 1:
		return c[0]
	}
	return c
}

func (f facts) etherIn(types ...uint16) cond { return oneOf(offEth, asm.Half, types, f.eth) }
func (f facts) protoIn(ps ...uint8) cond     { return oneOf(offProto, asm.Byte, ps, f.protos) }

// lower tests first what both sides need (the EtherTypes and protocols
// the conjunction implies), then each side knowing it: "udp and src net
// 198.18.0.0/15" tests EtherType IPv4 once, not IPv4-or-IPv6 and then
// IPv4 again.
func (n and) lower(f facts) cond {
	imp := n.implies()
	c := cAnd{}
	if imp.eth != nil {
		c = append(c, f.etherIn(imp.eth...))
	}
	if imp.protos != nil {
		c = append(c, f.protoIn(imp.protos...))
	}
	g := f.and(imp)
	return append(c, n.a.lower(g), n.b.lower(g))
}

func (n or) lower(f facts) cond  { return cOr{n.a.lower(f), n.b.lower(f)} }
func (n not) lower(f facts) cond { return cNot{n.a.lower(f)} }

func (n ether) lower(f facts) cond { return f.etherIn(n.typ) }
func (n l4) lower(f facts) cond    { return cAnd{f.etherIn(n.eth...), f.protoIn(n.proto)} }

func (n vlan) lower(facts) cond {
	if n.any {
		return cTest{off: offVLAN, size: asm.Half, op: asm.JNE, val: 0}
	}
	return cTest{off: offVLAN, size: asm.Half, op: asm.JEq, val: uint32(n.id)}
}

// implies is what a key that matches n is known to be.
func (n and) implies() facts   { return n.a.implies().and(n.b.implies()) }
func (n or) implies() facts    { return facts{} }
func (n not) implies() facts   { return facts{} }
func (n vlan) implies() facts  { return facts{} }
func (n ether) implies() facts { return facts{eth: []uint16{n.typ}} }
func (n l4) implies() facts    { return facts{eth: n.eth, protos: []uint8{n.proto}} }
func (n addr) implies() facts  { return facts{eth: n.eth} }
func (n ports) implies() facts {
	return facts{eth: []uint16{etherIPv4, etherIPv6}, protos: n.protos}
}

// prefixAt tests whether the address at off lies in p: one masked
// comparison per 32-bit word the prefix covers. The key holds addresses
// in network order, so the words are compared as a little-endian load
// sees them (the objects are bpfel only).
func prefixAt(off int16, p netip.Prefix) cond {
	raw := p.Addr().AsSlice()
	c := cAnd{}
	for w := 0; w*32 < p.Bits(); w++ {
		bits := min(p.Bits()-w*32, 32)
		var m [4]byte
		for i := range bits {
			m[i/8] |= 0x80 >> (i % 8)
		}
		t := cTest{off: off + int16(4*w), size: asm.Word, op: asm.JEq, val: binary.LittleEndian.Uint32(raw[4*w:])}
		if bits < 32 {
			t.mask = binary.LittleEndian.Uint32(m[:])
		}
		c = append(c, t)
	}
	if len(c) == 0 {
		return cConst(true)
	}
	return c
}

func dirCond(d dirQual, src, dst cond) cond {
	switch d {
	case dirSrc:
		return src
	case dirDst:
		return dst
	case dirBoth:
		return cAnd{src, dst}
	}
	return cOr{src, dst}
}

func (n addr) lower(f facts) cond {
	return cAnd{f.etherIn(n.eth...), dirCond(n.dir, prefixAt(offSrc, n.prefix), prefixAt(offDst, n.prefix))}
}

func (n ports) lower(f facts) cond {
	in := func(off int16) cond {
		if n.lo == n.hi {
			return cTest{off: off, size: asm.Half, op: asm.JEq, val: uint32(n.lo)}
		}
		c := cAnd{}
		if n.lo > 0 {
			c = append(c, cTest{off: off, size: asm.Half, op: asm.JGE, val: uint32(n.lo)})
		}
		if n.hi < 0xffff {
			c = append(c, cTest{off: off, size: asm.Half, op: asm.JLE, val: uint32(n.hi)})
		}
		if len(c) == 0 {
			return cConst(true)
		}
		return c
	}
	return cAnd{
		f.etherIn(etherIPv4, etherIPv6),
		f.protoIn(n.protos...),
		cTest{off: offFlags, size: asm.Byte, mask: fragment, op: asm.JEq, val: 0},
		dirCond(n.dir, in(offSport), in(offDport)),
	}
}

// item is an instruction whose jump goes to a label, or a label's place.
type item struct {
	ins    asm.Instruction
	target int // label a jump goes to; -1 for other instructions
	mark   int // the label placed here; -1 for instructions
}

type gen struct {
	items  []item
	labels int
}

func (g *gen) label() int { g.labels++; return g.labels - 1 }
func (g *gen) place(l int) {
	g.items = append(g.items, item{target: -1, mark: l})
}
func (g *gen) emit(ins asm.Instruction) {
	g.items = append(g.items, item{ins: ins, target: -1, mark: -1})
}
func (g *gen) jump(ins asm.Instruction, to int) {
	g.items = append(g.items, item{ins: ins, target: to, mark: -1})
}

func ja() asm.Instruction {
	return asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Ja)}
}

func jmp32(op asm.JumpOp, val uint32) asm.Instruction {
	return asm.Instruction{OpCode: asm.OpCode(asm.Jump32Class).SetJumpOp(op).SetSource(asm.ImmSource), Dst: asm.R2, Constant: int64(int32(val))}
}

// code emits c as jumps to t when it holds and to f when not.
func (g *gen) code(c cond, t, f int) {
	switch c := c.(type) {
	case cConst:
		if c {
			g.jump(ja(), t)
		} else {
			g.jump(ja(), f)
		}
	case cNot:
		g.code(c.c, f, t)
	case cAnd:
		g.chain(c, t, f, true)
	case cOr:
		g.chain(c, t, f, false)
	case cTest:
		g.emit(asm.LoadMem(asm.R2, asm.R1, c.off, c.size))
		if c.mask != 0 {
			g.emit(asm.And.Imm32(asm.R2, int32(c.mask)))
		}
		g.jump(jmp32(c.op, c.val), t)
		g.jump(ja(), f)
	default:
		panic(fmt.Sprintf("filter: cannot lower %T", c))
	}
}

// chain emits a conjunction (and) or a disjunction of cs: each but the
// last decides only when it settles the whole, and falls to the next.
func (g *gen) chain(cs []cond, t, f int, and bool) {
	for _, x := range cs[:len(cs)-1] {
		next := g.label()
		if and {
			g.code(x, next, f)
		} else {
			g.code(x, t, next)
		}
		g.place(next)
	}
	g.code(cs[len(cs)-1], t, f)
}

// inverse is the jump taken exactly when op's is not.
var inverse = map[asm.JumpOp]asm.JumpOp{
	asm.JEq: asm.JNE, asm.JNE: asm.JEq,
	asm.JGE: asm.JLT, asm.JLT: asm.JGE,
	asm.JLE: asm.JGT, asm.JGT: asm.JLE,
}

// reaches reports whether label l is placed between item i and the next
// instruction, so that falling through from i lands on it.
func (g *gen) reaches(i, l int) bool {
	for j := i; j < len(g.items) && g.items[j].mark >= 0; j++ {
		if g.items[j].mark == l {
			return true
		}
	}
	return false
}

// peephole drops jumps to the next instruction, and turns "if c goto t;
// goto f; t:" into "if !c goto f; t:".
func (g *gen) peephole() {
	for changed := true; changed; {
		changed = false
		out := g.items[:0]
		for i := 0; i < len(g.items); i++ {
			it := g.items[i]
			if it.target >= 0 && it.ins.OpCode.JumpOp() == asm.Ja && g.reaches(i+1, it.target) {
				changed = true
				continue
			}
			if it.target >= 0 && it.ins.OpCode.JumpOp() != asm.Ja && i+1 < len(g.items) {
				nx := g.items[i+1]
				if nx.target >= 0 && nx.ins.OpCode.JumpOp() == asm.Ja && g.reaches(i+2, it.target) {
					it.ins.OpCode = it.ins.OpCode.SetJumpOp(inverse[it.ins.OpCode.JumpOp()])
					it.target = nx.target
					out = append(out, it)
					i++
					changed = true
					continue
				}
			}
			out = append(out, it)
		}
		g.items = out
	}
}

// prune drops the instructions no path reaches (after an always-true
// part such as "net 0.0.0.0/0"): the verifier refuses unreachable code.
// Jumps go forward only, so one pass in order sees every way in first.
func (g *gen) prune() {
	reached := map[int]bool{}
	live := true
	out := g.items[:0]
	for _, it := range g.items {
		if it.mark >= 0 {
			live = live || reached[it.mark]
			out = append(out, it)
			continue
		}
		if !live {
			continue
		}
		if it.target >= 0 {
			reached[it.target] = true
		}
		if op := it.ins.OpCode.JumpOp(); it.ins.OpCode.Class().IsJump() && (op == asm.Ja || op == asm.Exit) {
			live = false
		}
		out = append(out, it)
	}
	g.items = out
}

// reloads drops a load of the field that R2 already holds. A label holds
// what every way into it holds: the jumps to it (all earlier: jumps go
// forward) and the fall-through.
func (g *gen) reloads() {
	type field struct {
		off  int16
		size asm.Size
	}
	type state struct {
		f     field
		known bool
	}
	// at[l] is what R2 holds on the jumps to label l seen so far.
	at := map[int]state{}
	join := func(a, b state) state {
		if a.known && b.known && a.f == b.f {
			return a
		}
		return state{}
	}
	var held state
	live := true // whether the previous instruction falls through
	out := g.items[:0]
	for _, it := range g.items {
		if it.mark >= 0 {
			if in, ok := at[it.mark]; ok {
				if live {
					held = join(held, in)
				} else {
					held = in
				}
				live = true
			}
			out = append(out, it)
			continue
		}
		switch {
		case it.ins.OpCode.Class() == asm.LdXClass:
			f := field{it.ins.Offset, it.ins.OpCode.Size()}
			if live && held.known && held.f == f {
				continue
			}
			held = state{f, true}
		case it.ins.OpCode.Class().IsALU():
			held = state{}
		}
		if it.target >= 0 {
			if prev, ok := at[it.target]; ok {
				at[it.target] = join(prev, held)
			} else {
				at[it.target] = held
			}
		}
		op := it.ins.OpCode.JumpOp()
		live = !(it.ins.OpCode.Class().IsJump() && (op == asm.Ja || op == asm.Exit))
		out = append(out, it)
	}
	g.items = out
}

// Instructions compiles the filter into the body of pktstat_filter
// (bpf/include/filter.h): R1 points at the flow key, R0 is 1 to keep the
// packet and 0 to drop it. Only R0-R2 are written, every jump goes
// forward, and every path ends in an exit: the verifier sees a straight
// walk of at most MaxInstructions.
func (f *Filter) Instructions() (asm.Instructions, error) {
	g := &gen{}
	t, fl := g.label(), g.label()
	g.code(f.root.lower(facts{}), t, fl)
	g.place(fl)
	g.emit(asm.Mov.Imm(asm.R0, 0))
	g.emit(asm.Return())
	g.place(t)
	g.emit(asm.Mov.Imm(asm.R0, 1))
	g.emit(asm.Return())
	for n := -1; n != len(g.items); {
		n = len(g.items)
		g.peephole()
		g.prune()
	}
	g.reloads()

	pos := map[int]int{}
	n := 0
	for _, it := range g.items {
		if it.mark >= 0 {
			pos[it.mark] = n
			continue
		}
		n++
	}
	if n > MaxInstructions {
		return nil, fmt.Errorf("filter %q: %d instructions, more than %d: simplify the expression", f.text, n, MaxInstructions)
	}
	insns := make(asm.Instructions, 0, n)
	for _, it := range g.items {
		if it.mark >= 0 {
			continue
		}
		ins := it.ins
		if it.target >= 0 {
			ins.Offset = int16(pos[it.target] - len(insns) - 1)
			if ins.Offset < 0 {
				return nil, fmt.Errorf("filter %q: internal error: a backward jump", f.text)
			}
		}
		insns = append(insns, ins)
	}
	return insns, nil
}
