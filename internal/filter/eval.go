package filter

import (
	"net/netip"
	"slices"
)

// Key is the part of a flow key (struct flow_key, bpf/include/pktstat.h)
// that a filter reads.
type Key struct {
	Src, Dst         [16]byte // IPv4 in the first four bytes; ARP's sender and target
	SrcPort, DstPort uint16   // ports, or a port-less protocol's fields
	EtherType        uint16
	VLAN             uint16 // outer VLAN ID, 0 untagged
	Proto            uint8
	Fragment         bool // a non-first IP fragment: no L4 header
}

// Match evaluates the filter on k in Go: the reference that the tests
// hold the generated instructions to.
func (f *Filter) Match(k *Key) bool { return f.root.eval(k) }

// node is an expression's tree. eval is the semantics on a flow key;
// lower turns it into comparisons of the key's fields, given what is
// known of the key there, and implies is what a matching key is known to
// be (compile.go).
type node interface {
	eval(k *Key) bool
	lower(f facts) cond
	implies() facts
}

type and struct{ a, b node }
type or struct{ a, b node }
type not struct{ a node }

func (n and) eval(k *Key) bool { return n.a.eval(k) && n.b.eval(k) }
func (n or) eval(k *Key) bool  { return n.a.eval(k) || n.b.eval(k) }
func (n not) eval(k *Key) bool { return !n.a.eval(k) }

// ether is "ip", "ip6" and "arp": the frame's EtherType.
type ether struct{ typ uint16 }

func (n ether) eval(k *Key) bool { return k.EtherType == n.typ }

// l4 is an IP protocol of the given IP versions: "tcp", "ip proto N".
type l4 struct {
	eth   []uint16
	proto uint8
}

func (n l4) eval(k *Key) bool { return slices.Contains(n.eth, k.EtherType) && k.Proto == n.proto }

// vlan is "vlan" (any tag) and "vlan ID".
type vlan struct {
	id  uint16
	any bool
}

func (n vlan) eval(k *Key) bool {
	if n.any {
		return k.VLAN != 0
	}
	return k.VLAN == n.id
}

// addr is "host" and "net": an address or a prefix in the frames of the
// EtherTypes eth.
type addr struct {
	eth    []uint16
	dir    dirQual
	prefix netip.Prefix
}

func (n addr) eval(k *Key) bool {
	if !slices.Contains(n.eth, k.EtherType) {
		return false
	}
	in := func(b [16]byte) bool {
		a := netip.AddrFrom16(b)
		if n.prefix.Addr().Is4() {
			a = netip.AddrFrom4([4]byte(b[:4]))
		}
		return n.prefix.Contains(a)
	}
	return matchDir(n.dir, in(k.Src), in(k.Dst))
}

// ports is "port" and "portrange" of the protocols protos: never a
// non-first fragment, which has no ports, as in tcpdump.
type ports struct {
	protos []uint8
	dir    dirQual
	lo, hi uint16
}

func (n ports) eval(k *Key) bool {
	if (k.EtherType != etherIPv4 && k.EtherType != etherIPv6) || !slices.Contains(n.protos, k.Proto) || k.Fragment {
		return false
	}
	in := func(p uint16) bool { return p >= n.lo && p <= n.hi }
	return matchDir(n.dir, in(k.SrcPort), in(k.DstPort))
}

func matchDir(d dirQual, src, dst bool) bool {
	switch d {
	case dirSrc:
		return src
	case dirDst:
		return dst
	case dirBoth:
		return src && dst
	}
	return src || dst
}
