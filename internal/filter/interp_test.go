package filter

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// checkShape fails t unless insns only jump forward, write only R0-R2,
// read memory only through R1, reach every instruction (the verifier
// refuses unreachable code) and end in an exit.
func checkShape(t testing.TB, insns asm.Instructions) {
	t.Helper()
	if len(insns) == 0 || insns[len(insns)-1].OpCode.JumpOp() != asm.Exit {
		t.Fatalf("the code does not end in an exit:\n%v", insns)
	}
	// Every instruction is reached: by falling through from one that can,
	// or by a jump.
	reached := make([]bool, len(insns))
	reached[0] = true
	for i, ins := range insns {
		if !reached[i] {
			t.Errorf("instruction %d is unreachable: %v", i, ins)
			continue
		}
		op := ins.OpCode.JumpOp()
		jump := ins.OpCode.Class().IsJump()
		if jump && op != asm.Exit && i+1+int(ins.Offset) < len(insns) && ins.Offset >= 0 {
			reached[i+1+int(ins.Offset)] = true
		}
		if (!jump || (op != asm.Ja && op != asm.Exit)) && i+1 < len(insns) {
			reached[i+1] = true
		}
	}
	for i, ins := range insns {
		if ins.Dst > asm.R2 {
			t.Errorf("instruction %d writes %v: %v", i, ins.Dst, ins)
		}
		if ins.OpCode.Class() == asm.LdXClass && ins.Src != asm.R1 {
			t.Errorf("instruction %d loads through %v: %v", i, ins.Src, ins)
		}
		if ins.OpCode.Class().IsJump() && ins.OpCode.JumpOp() != asm.Exit {
			if ins.Offset < 0 || i+1+int(ins.Offset) >= len(insns) {
				t.Errorf("instruction %d jumps to %d: %v", i, i+1+int(ins.Offset), ins)
			}
		}
	}
}

// keyBytes lays k out as struct flow_key.
func keyBytes(k *Key) []byte {
	b := make([]byte, 48)
	copy(b[offSrc:], k.Src[:])
	copy(b[offDst:], k.Dst[:])
	binary.LittleEndian.PutUint16(b[offSport:], k.SrcPort)
	binary.LittleEndian.PutUint16(b[offDport:], k.DstPort)
	binary.LittleEndian.PutUint16(b[offEth:], k.EtherType)
	binary.LittleEndian.PutUint16(b[offVLAN:], k.VLAN)
	b[offProto] = k.Proto
	if k.Fragment {
		b[offFlags] = byte(fragment)
	}
	return b
}

// interpret runs the compiled code on a key's bytes, for the instructions
// the compiler emits: a model of the eBPF machine small enough to trust,
// so that the compiler is checked against Match without a kernel.
func interpret(t testing.TB, insns asm.Instructions, key []byte) bool {
	t.Helper()
	var r [3]uint64
	for pc := 0; pc < len(insns); pc++ {
		ins := insns[pc]
		op := ins.OpCode
		switch {
		case op.Class() == asm.LdXClass:
			off := int(ins.Offset)
			switch op.Size() {
			case asm.Byte:
				r[ins.Dst] = uint64(key[off])
			case asm.Half:
				r[ins.Dst] = uint64(binary.LittleEndian.Uint16(key[off:]))
			case asm.Word:
				r[ins.Dst] = uint64(binary.LittleEndian.Uint32(key[off:]))
			}
		case op.Class() == asm.ALUClass && op.ALUOp() == asm.And:
			r[ins.Dst] = uint64(uint32(r[ins.Dst]) & uint32(ins.Constant))
		case op.Class() == asm.ALU64Class && op.ALUOp() == asm.Mov:
			r[ins.Dst] = uint64(ins.Constant)
		case op.JumpOp() == asm.Exit:
			return r[0] == 1
		case op.JumpOp() == asm.Ja:
			pc += int(ins.Offset)
		case op.Class() == asm.Jump32Class:
			a, b := uint32(r[ins.Dst]), uint32(ins.Constant)
			var taken bool
			switch op.JumpOp() {
			case asm.JEq:
				taken = a == b
			case asm.JNE:
				taken = a != b
			case asm.JGE:
				taken = a >= b
			case asm.JGT:
				taken = a > b
			case asm.JLE:
				taken = a <= b
			case asm.JLT:
				taken = a < b
			default:
				t.Fatalf("unexpected jump %v", ins)
			}
			if taken {
				pc += int(ins.Offset)
			}
		default:
			t.Fatalf("unexpected instruction %v", ins)
		}
	}
	t.Fatal("ran off the end")
	return false
}

// Values that the random keys and expressions share, so that they meet.
var (
	addrs4 = []string{"198.18.0.1", "198.18.0.2", "198.18.1.1", "198.19.255.254", "198.18.128.0"}
	addrs6 = []string{"2001:2::1", "2001:2::2", "2001:2:0:1::1", "2001:2:0:ffff::9"}
	nets   = []string{"198.18.0.0/16", "198.18", "198.18.0.0/24", "198.19", "2001:2::/48", "2001:2:0:1::/64", "198.18.0.0/15", "0.0.0.0/0", "198.18.128.0/17"}
	ports_ = []uint16{0, 22, 53, 80, 443, 1000, 1500, 2000, 65535}
	vlans  = []uint16{0, 100, 200}
	ethers = []uint16{etherIPv4, etherIPv6, etherARP, 0x88cc, 0}
	protos = []uint8{protoICMP, protoTCP, protoUDP, protoICMPv6, protoSCTP, 47, 0}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// RandomKey is a key whose fields come from the values above.
func randomKey(r *rand.Rand) Key {
	k := Key{EtherType: pick(r, ethers), Proto: pick(r, protos), SrcPort: pick(r, ports_), DstPort: pick(r, ports_),
		VLAN: pick(r, vlans), Fragment: r.IntN(8) == 0}
	if k.EtherType == etherIPv6 {
		k.Src, k.Dst = netip.MustParseAddr(pick(r, addrs6)).As16(), netip.MustParseAddr(pick(r, addrs6)).As16()
	} else {
		s, d := netip.MustParseAddr(pick(r, addrs4)).As4(), netip.MustParseAddr(pick(r, addrs4)).As4()
		copy(k.Src[:], s[:])
		copy(k.Dst[:], d[:])
	}
	return k
}

// RandomExpr is a random expression of the supported grammar, depth deep.
func randomExpr(r *rand.Rand, depth int) string {
	if depth > 0 && r.IntN(3) > 0 {
		switch r.IntN(4) {
		case 0:
			return "not " + randomExpr(r, depth-1)
		case 1:
			return "(" + randomExpr(r, depth-1) + " and " + randomExpr(r, depth-1) + ")"
		case 2:
			return "(" + randomExpr(r, depth-1) + " or " + randomExpr(r, depth-1) + ")"
		default:
			return randomExpr(r, depth-1) + " || " + randomExpr(r, depth-1)
		}
	}
	dir := pick(r, []string{"", "src ", "dst ", "src or dst ", "src and dst "})
	switch r.IntN(10) {
	case 0:
		return pick(r, []string{"ip", "ip6", "arp", "tcp", "udp", "icmp", "icmp6", "sctp", "vlan", "vlan 100", "vlan 200", "proto 47", "ip proto 6", "ip6 proto 17"})
	case 1, 2:
		if r.IntN(2) == 0 {
			return pick(r, []string{"", "ip ", "arp "}) + dir + "host " + pick(r, addrs4)
		}
		return pick(r, []string{"", "ip6 "}) + dir + "host " + pick(r, addrs6)
	case 3, 4:
		return dir + "net " + pick(r, nets)
	case 5:
		return dir + "net 198.18.0.0 mask 255.255.128.0"
	case 6, 7:
		return pick(r, []string{"", "tcp ", "udp ", "sctp "}) + dir + "port " + pick(r, []string{"22", "53", "80", "443", "0", "65535"})
	default:
		return pick(r, []string{"", "tcp ", "udp "}) + dir + "portrange " + pick(r, []string{"1000-2000", "0-80", "443-65535", "2000-1000", "0-65535"})
	}
}

// TestCompiledMatchesReference runs random expressions on random keys
// through the compiled code (interpreted) and Match.
func TestCompiledMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		expr := randomExpr(r, 3)
		f, err := Parse(strings.Fields(expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		insns, err := f.Instructions()
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		checkShape(t, insns)
		for range 50 {
			k := randomKey(r)
			if got, want := interpret(t, insns, keyBytes(&k)), f.Match(&k); got != want {
				t.Fatalf("%s on %+v: compiled %v, reference %v\n%v", expr, k, got, want, insns)
			}
		}
	}
}

// FuzzParse: any input either fails to parse, or compiles into code of the
// right shape that agrees with Match.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"udp and dst port 53", "host 198.18.0.1 or 2001:2::1", "net 198.18 mask 255.255.0.0",
		"not (vlan 100 and tcp portrange 1-2)", "src or dst net 2001:2::/48", "ip proto \\tcp", "!(arp||icmp6)&&sctp", "port 1 or 2 and 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := Parse([]string{s})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "filter ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if flt == nil {
			return // blank: no filter
		}
		insns, err := flt.Instructions()
		if err != nil {
			return // too long
		}
		checkShape(t, insns)
		r := rand.New(rand.NewPCG(uint64(len(s)), 7))
		for range 20 {
			k := randomKey(r)
			if got, want := interpret(t, insns, keyBytes(&k)), flt.Match(&k); got != want {
				t.Fatalf("%q on %+v: compiled %v, reference %v", s, k, got, want)
			}
		}
	})
}
