// Package filter turns a tcpdump-style filter expression (a subset of
// pcap-filter(7)) into eBPF instructions that test one flow key in the
// kernel (bpf/include/filter.h), and evaluates it in Go for the tests.
// The grammar, its semantics on the flow key and how they differ from
// tcpdump's: docs/usage.md#filters.
package filter

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// EtherTypes the primitives test, as the flow key holds them (host order).
const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherARP  = 0x0806
)

// IP protocol numbers.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// Filter is a parsed expression.
type Filter struct {
	text string
	root node
}

// String is the expression as the user gave it, its words joined by spaces.
func (f *Filter) String() string { return f.text }

// Parse parses the words of an expression, joined by spaces as tcpdump
// joins its trailing arguments. No words (or only spaces) is no filter:
// nil and no error. An error names the part that is not supported or not
// understood.
func Parse(words []string) (*Filter, error) {
	text := strings.Join(words, " ")
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	toks, err := lex(text)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", text, err)
	}
	p := &parser{toks: toks}
	root, err := p.expr()
	if err == nil && p.pos < len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", text, err)
	}
	return &Filter{text: text, root: root}, nil
}

// lex splits an expression into words and the operators ( ) ! && ||.
func lex(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')' || c == '!':
			toks = append(toks, string(c))
			i++
		case strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			toks = append(toks, s[i:i+2])
			i += 2
		case strings.ContainsRune("&|[]<>=+*%^~", rune(c)):
			return nil, fmt.Errorf("%q is not supported: byte offsets, arithmetic and comparisons are not part of the supported grammar", string(c))
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n()!&|[]<>=+*%^~", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

// dirQual is a primitive's src/dst qualifier.
type dirQual uint8

const (
	dirAny  dirQual = iota // src or dst (also the default)
	dirSrc                 // src
	dirDst                 // dst
	dirBoth                // src and dst
)

// quals are the qualifiers of an id primitive, which a following bare id
// inherits ("host 198.18.0.1 or 198.18.0.2").
type quals struct {
	proto string // "", ip, ip6, arp, tcp, udp, sctp
	dir   dirQual
	typ   string // host, net, port, portrange
}

type parser struct {
	toks []string
	pos  int
	last *quals // the qualifiers of the previous id primitive
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	p.pos++
	return t
}

var errEnd = errors.New("unexpected end of expression")

// expr parses a sequence of terms joined by and/or, which have equal
// precedence and associate to the left, as in pcap-filter(7).
func (p *parser) expr() (node, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		switch p.peek() {
		case "and", "&&":
			p.next()
			right, err := p.unary()
			if err != nil {
				return nil, err
			}
			left = and{left, right}
		case "or", "||":
			p.next()
			right, err := p.unary()
			if err != nil {
				return nil, err
			}
			left = or{left, right}
		default:
			return left, nil
		}
	}
}

func (p *parser) unary() (node, error) {
	switch t := p.peek(); t {
	case "":
		return nil, errEnd
	case "not", "!":
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return not{n}, nil
	case "(":
		p.next()
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, errors.New("missing \")\"")
		}
		return n, nil
	case ")":
		return nil, errors.New("unexpected \")\"")
	}
	return p.primitive()
}

// unsupported are pcap-filter keywords outside the supported grammar, so
// that the error says so rather than that the word is not understood.
var unsupported = map[string]bool{
	"ether": true, "fddi": true, "tr": true, "wlan": true, "gateway": true, "broadcast": true,
	"multicast": true, "less": true, "greater": true, "len": true, "inbound": true, "outbound": true,
	"ifname": true, "on": true, "rnr": true, "rulenum": true, "reason": true, "rset": true,
	"ruleset": true, "srnr": true, "subrulenum": true, "subrule": true, "action": true, "mpls": true,
	"pppoed": true, "pppoes": true, "geneve": true, "vxlan": true, "atalk": true, "aarp": true,
	"decnet": true, "iso": true, "stp": true, "ipx": true, "netbeui": true, "lat": true,
	"moprc": true, "mopdl": true, "esis": true, "es-is": true, "isis": true, "is-is": true,
	"clnp": true, "rarp": true, "ah": true, "esp": true, "pim": true, "vrrp": true, "carp": true,
	"igmp": true, "igrp": true, "llc": true, "type": true, "subtype": true, "dir": true,
	"protochain": true, "ra": true, "ta": true, "addr1": true, "addr2": true, "addr3": true,
	"addr4": true, "icmp6type": true, "icmptype": true, "tcpflags": true, "link": true,
	"slip": true, "ppp": true, "radio": true, "hdlc": true, "ipv6": false, "l1": true, "l2": true,
	"iih": true, "lsp": true, "snp": true, "csnp": true, "psnp": true, "lane": true, "oamf4": true,
	"oamf4ec": true, "oamf4sc": true, "oam": true, "vpi": true, "vci": true, "connectmsg": true,
	"metaconnect": true, "sio": true, "opc": true, "dpc": true, "sls": true, "hsio": true,
	"hopc": true, "hdpc": true, "hsls": true, "ip6multicast": true, "ipmulticast": true,
}

func errUnsupported(what string) error {
	return fmt.Errorf("%q is not supported (supported: host, net, port, portrange, src, dst, ip, ip6, tcp, udp, icmp, icmp6, sctp, arp, proto, vlan, and, or, not)", what)
}

// primitive parses one primitive.
func (p *parser) primitive() (node, error) {
	t := p.peek()
	switch t {
	case "vlan":
		p.next()
		if id, err := strconv.ParseUint(p.peek(), 10, 16); err == nil && !isOperator(p.peek()) {
			p.next()
			if id > 4095 {
				return nil, fmt.Errorf("VLAN ID %d is larger than 4095", id)
			}
			return vlan{id: uint16(id), any: false}, nil
		}
		return vlan{any: true}, nil
	case "proto":
		p.next()
		return p.protoNumber("")
	case "icmp":
		p.next()
		return l4{eth: []uint16{etherIPv4}, proto: protoICMP}, nil
	case "icmp6":
		p.next()
		return l4{eth: []uint16{etherIPv6}, proto: protoICMPv6}, nil
	}
	if unsupported[t] {
		return nil, errUnsupported(t)
	}
	var q quals
	explicit := false
	switch t {
	case "ip", "ip6", "arp", "tcp", "udp", "sctp":
		q.proto = t
		explicit = true
		p.next()
		if t == "ip" || t == "ip6" {
			switch nt := p.peek(); {
			case nt == "proto":
				p.next()
				return p.protoNumber(t)
			case unsupported[nt] || nt == "multicast" || nt == "broadcast":
				return nil, errUnsupported(t + " " + nt)
			}
		}
		if !p.qualifierFollows() {
			return protoPrim(t), nil
		}
	}
	switch p.peek() {
	case "src", "dst":
		explicit = true
		q.dir = dirSrc
		if p.next() == "dst" {
			q.dir = dirDst
		}
		// "src or dst" and "src and dst" qualify one primitive.
		if (p.peek() == "or" || p.peek() == "and") && p.pos+1 < len(p.toks) && p.toks[p.pos+1] == "dst" && q.dir == dirSrc {
			if p.next() == "or" {
				q.dir = dirAny
			} else {
				q.dir = dirBoth
			}
			p.next()
		}
	}
	switch nt := p.peek(); nt {
	case "host", "net", "port", "portrange":
		explicit = true
		q.typ = nt
		p.next()
	default:
		if unsupported[nt] {
			return nil, errUnsupported(nt)
		}
	}
	if !explicit {
		// A bare id takes the previous primitive's qualifiers.
		if p.last == nil {
			return nil, fmt.Errorf("%q is not a supported primitive (supported: host, net, port, portrange, src, dst, ip, ip6, tcp, udp, icmp, icmp6, sctp, arp, proto, vlan, and, or, not)", t)
		}
		q = *p.last
	}
	if q.typ == "" {
		q.typ = "host"
	}
	val := p.next()
	if val == "" {
		return nil, errEnd
	}
	if isOperator(val) || val == "(" || val == ")" || isKeyword(val) {
		return nil, fmt.Errorf("%s needs a value, not %q", describe(q), val)
	}
	p.last = &q
	return q.build(val, p)
}

// qualifierFollows reports whether the next word continues a primitive
// that began with a protocol qualifier.
func (p *parser) qualifierFollows() bool {
	switch p.peek() {
	case "src", "dst", "host", "net", "port", "portrange":
		return true
	}
	return false
}

func isOperator(t string) bool {
	switch t {
	case "and", "or", "not", "&&", "||", "!":
		return true
	}
	return false
}

func isKeyword(t string) bool {
	switch t {
	case "host", "net", "port", "portrange", "src", "dst", "proto", "vlan", "ip", "ip6", "arp", "tcp", "udp", "sctp", "icmp", "icmp6", "mask":
		return true
	}
	return unsupported[t]
}

func describe(q quals) string {
	s := []string{}
	if q.proto != "" {
		s = append(s, q.proto)
	}
	switch q.dir {
	case dirSrc:
		s = append(s, "src")
	case dirDst:
		s = append(s, "dst")
	case dirBoth:
		s = append(s, "src and dst")
	}
	s = append(s, q.typ)
	return strings.Join(s, " ")
}

// protoPrim is a protocol primitive without further qualifiers.
func protoPrim(name string) node {
	switch name {
	case "ip":
		return ether{etherIPv4}
	case "ip6":
		return ether{etherIPv6}
	case "arp":
		return ether{etherARP}
	case "tcp":
		return l4{eth: []uint16{etherIPv4, etherIPv6}, proto: protoTCP}
	case "udp":
		return l4{eth: []uint16{etherIPv4, etherIPv6}, proto: protoUDP}
	default: // sctp
		return l4{eth: []uint16{etherIPv4, etherIPv6}, proto: protoSCTP}
	}
}

// protoNames are the protocol names "proto" takes, with or without
// tcpdump's backslash (ip proto \tcp).
var protoNames = map[string]uint8{
	"icmp": protoICMP, "tcp": protoTCP, "udp": protoUDP, "icmp6": protoICMPv6, "sctp": protoSCTP,
	"igmp": 2, "ipip": 4, "gre": 47, "esp": 50, "ah": 51, "ospf": 89, "pim": 103, "vrrp": 112,
}

// protoNumber parses the N of "proto N" after family ("", ip or ip6).
func (p *parser) protoNumber(family string) (node, error) {
	v := p.next()
	if v == "" {
		return nil, errEnd
	}
	var n uint8
	if named, ok := protoNames[strings.TrimPrefix(v, `\`)]; ok {
		n = named
	} else {
		u, err := strconv.ParseUint(v, 0, 8)
		if err != nil {
			return nil, fmt.Errorf("proto needs a protocol number (0-255) or name, not %q", v)
		}
		n = uint8(u)
	}
	switch family {
	case "ip":
		return l4{eth: []uint16{etherIPv4}, proto: n}, nil
	case "ip6":
		return l4{eth: []uint16{etherIPv6}, proto: n}, nil
	}
	return l4{eth: []uint16{etherIPv4, etherIPv6}, proto: n}, nil
}

// build makes the primitive q names with value val.
func (q quals) build(val string, p *parser) (node, error) {
	switch q.typ {
	case "port", "portrange":
		return q.port(val)
	case "net":
		return q.net(val, p)
	}
	return q.host(val)
}

// families are the EtherTypes a host or net primitive of this address
// family applies to, by its protocol qualifier.
func (q quals) families(v6 bool, val string) ([]uint16, error) {
	switch {
	case q.proto == "" && v6:
		return []uint16{etherIPv6}, nil
	case q.proto == "":
		// tcpdump's "host X" is "ip host X or arp host X or rarp host X".
		return []uint16{etherIPv4, etherARP}, nil
	case q.proto == "ip" && !v6:
		return []uint16{etherIPv4}, nil
	case q.proto == "ip6" && v6:
		return []uint16{etherIPv6}, nil
	case q.proto == "arp" && !v6:
		return []uint16{etherARP}, nil
	case q.proto == "ip" || q.proto == "ip6" || q.proto == "arp":
		return nil, fmt.Errorf("%q: %s does not apply to this address family", val, describe(q))
	}
	return nil, fmt.Errorf("%q does not apply to %s (tcpdump refuses it too)", q.proto, q.typ)
}

func (q quals) host(val string) (node, error) {
	a, err := netip.ParseAddr(val)
	if err != nil || a.Zone() != "" {
		if strings.Count(val, ".") < 3 && strings.Count(val, ":") == 0 {
			return nil, fmt.Errorf("%s needs an IPv4 or IPv6 address, not %q (host names are not supported)", describe(q), val)
		}
		return nil, fmt.Errorf("%s needs an IPv4 or IPv6 address, not %q", describe(q), val)
	}
	// An IPv4-mapped IPv6 address (::ffff:198.18.0.1) stays IPv6, as in
	// tcpdump: it matches IPv6 packets that carry it.
	eth, err := q.families(a.Is6(), val)
	if err != nil {
		return nil, err
	}
	return addr{eth: eth, dir: q.dir, prefix: netip.PrefixFrom(a, a.BitLen())}, nil
}

func (q quals) net(val string, p *parser) (node, error) {
	var (
		pfx netip.Prefix
		err error
	)
	if p.peek() == "mask" {
		p.next()
		m := p.next()
		pfx, err = maskedNet(val, m)
		if err != nil {
			return nil, err
		}
	} else {
		pfx, err = cidr(val)
		if err != nil {
			return nil, err
		}
	}
	eth, err := q.families(pfx.Addr().Is6(), val)
	if err != nil {
		return nil, err
	}
	return addr{eth: eth, dir: q.dir, prefix: pfx}, nil
}

// partialV4 parses tcpdump's network numbers: one to four dotted decimal
// parts, the missing ones zero; bits is 8 per part given.
func partialV4(s string) (a netip.Addr, bits int, ok bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return a, 0, false
	}
	var b [4]byte
	for i, part := range parts {
		n, err := strconv.ParseUint(part, 10, 8)
		if err != nil {
			return a, 0, false
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), 8 * len(parts), true
}

// cidr parses net's value: ADDR/LEN, an IPv6 address, or an IPv4 network
// number of one to four parts.
func cidr(val string) (netip.Prefix, error) {
	s, lenText, hasLen := strings.Cut(val, "/")
	var (
		a    netip.Addr
		bits int
	)
	if strings.Contains(s, ":") {
		var err error
		if a, err = netip.ParseAddr(s); err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("net needs a network, not %q", val)
		}
		bits = 128
	} else {
		var ok bool
		if a, bits, ok = partialV4(s); !ok {
			return netip.Prefix{}, fmt.Errorf("net needs a network, not %q (network names are not supported)", val)
		}
	}
	if hasLen {
		n, err := strconv.Atoi(lenText)
		if err != nil || n < 0 || n > a.BitLen() {
			return netip.Prefix{}, fmt.Errorf("net %q: invalid prefix length %q", val, lenText)
		}
		bits = n
	}
	pfx := netip.PrefixFrom(a, bits)
	if pfx.Masked() != pfx {
		return netip.Prefix{}, fmt.Errorf("net %q: non-network bits set", val)
	}
	return pfx, nil
}

// maskedNet parses "net N mask M", IPv4 only, as tcpdump.
func maskedNet(val, mask string) (netip.Prefix, error) {
	a, _, ok := partialV4(val)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("net %q mask: the mask form takes an IPv4 network", val)
	}
	m, err := netip.ParseAddr(mask)
	if err != nil || !m.Is4() {
		return netip.Prefix{}, fmt.Errorf("net %s mask needs an IPv4 mask, not %q", val, mask)
	}
	mb := m.As4()
	mv := uint32(mb[0])<<24 | uint32(mb[1])<<16 | uint32(mb[2])<<8 | uint32(mb[3])
	ones := 0
	for ones < 32 && mv&(1<<(31-ones)) != 0 {
		ones++
	}
	if ones < 32 && mv<<ones != 0 {
		return netip.Prefix{}, fmt.Errorf("net %s mask %s: the mask is not contiguous", val, mask)
	}
	pfx := netip.PrefixFrom(a, ones)
	if pfx.Masked() != pfx {
		return netip.Prefix{}, fmt.Errorf("net %q mask %s: non-network bits set", val, mask)
	}
	return pfx, nil
}

func (q quals) port(val string) (node, error) {
	var protos []uint8
	switch q.proto {
	case "":
		protos = []uint8{protoTCP, protoUDP, protoSCTP}
	case "tcp":
		protos = []uint8{protoTCP}
	case "udp":
		protos = []uint8{protoUDP}
	case "sctp":
		protos = []uint8{protoSCTP}
	default:
		return nil, fmt.Errorf("%q does not apply to %s: use tcp, udp or sctp", q.proto, q.typ)
	}
	num := func(s string) (uint16, error) {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%s needs a port number (0-65535), not %q (port names are not supported)", describe(q), s)
		}
		return uint16(n), nil
	}
	if q.typ == "port" {
		n, err := num(val)
		if err != nil {
			return nil, err
		}
		return ports{protos: protos, dir: q.dir, lo: n, hi: n}, nil
	}
	los, his, ok := strings.Cut(val, "-")
	if !ok {
		return nil, fmt.Errorf("portrange needs FIRST-LAST, not %q", val)
	}
	lo, err := num(los)
	if err != nil {
		return nil, err
	}
	hi, err := num(his)
	if err != nil {
		return nil, err
	}
	if lo > hi {
		lo, hi = hi, lo // as tcpdump
	}
	return ports{protos: protos, dir: q.dir, lo: lo, hi: hi}, nil
}
