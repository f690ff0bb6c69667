package filter

import (
	"net/netip"
	"strings"
	"testing"
)

// key4 is an IPv4 key of protocol proto.
func key4(src, dst string, proto uint8, sport, dport uint16) Key {
	k := Key{EtherType: etherIPv4, Proto: proto, SrcPort: sport, DstPort: dport}
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(k.Src[:], s[:])
	copy(k.Dst[:], d[:])
	return k
}

func key6(src, dst string, proto uint8, sport, dport uint16) Key {
	return Key{EtherType: etherIPv6, Proto: proto, SrcPort: sport, DstPort: dport,
		Src: netip.MustParseAddr(src).As16(), Dst: netip.MustParseAddr(dst).As16()}
}

func TestParseAndMatch(t *testing.T) {
	udp53 := key4("198.18.0.1", "198.19.0.2", protoUDP, 40000, 53)
	tcp80v6 := key6("2001:2::1", "2001:2:0:1::2", protoTCP, 80, 50000)
	arpKey := key4("198.18.0.7", "198.18.0.9", 0, 1, 0)
	arpKey.EtherType, arpKey.Proto = etherARP, 0
	frag := udp53
	frag.Fragment = true
	tagged := udp53
	tagged.VLAN = 100
	icmp := key4("198.18.0.1", "198.18.0.2", protoICMP, 8, 0)
	for _, c := range []struct {
		expr string
		key  Key
		want bool
	}{
		{"udp and dst port 53", udp53, true},
		{"udp && dst port 53", udp53, true},
		{"udp and src port 53", udp53, false},
		{"tcp", udp53, false},
		{"not tcp", udp53, true},
		{"! tcp", udp53, true},
		{"port 53", frag, false},          // a non-first fragment has no ports
		{"udp", frag, true},               // but is UDP
		{"host 198.18.0.7", arpKey, true}, // tcpdump's host includes ARP
		{"ip host 198.18.0.7", arpKey, false},
		{"arp src host 198.18.0.7", arpKey, true},
		{"arp dst host 198.18.0.7", arpKey, false},
		{"src or dst host 198.19.0.2", udp53, true},
		{"src and dst host 198.19.0.2", udp53, false},
		{"src and dst net 198.18.0.0/15", udp53, true},
		{"net 198.18", udp53, true},
		{"dst net 198.18", udp53, false},
		{"net 198.19.0.0 mask 255.255.0.0", udp53, true},
		{"net 198.18.0.0/16 and not net 198.18.0.0/24", udp53, false},
		{"host 198.18.0.2 or 198.18.0.1", udp53, true}, // the bare id inherits host
		{"port 1 or 53", udp53, true},
		{"ip6 and tcp src port 80", tcp80v6, true},
		{"net 2001:2::/48", tcp80v6, true},
		{"ip6 dst net 2001:2:0:1::/64", tcp80v6, true},
		{"ip6 src net 2001:2:0:1::/64", tcp80v6, false},
		{"host 2001:2::1", tcp80v6, true},
		{"host ::ffff:198.18.0.1", udp53, false}, // IPv6, as in tcpdump
		{"host ::ffff:198.18.0.1", key6("::ffff:198.18.0.1", "2001:2::1", protoUDP, 1, 2), true},
		{"portrange 40000-40010", udp53, true},
		{"portrange 54-40000", udp53, true},
		{"tcp portrange 1-100", udp53, false},
		{"proto 17", udp53, true},
		{"ip proto \\udp", udp53, true},
		{"ip6 proto 17", udp53, false},
		{"icmp", icmp, true},
		{"icmp6", icmp, false},
		{"vlan", udp53, false},
		{"vlan", tagged, true},
		{"vlan 100 and udp", tagged, true},
		{"vlan 200", tagged, false},
		{"tcp or udp and port 80", udp53, false}, // and/or associate left: (tcp or udp) and port 80
		{"tcp or (udp and port 53)", udp53, true},
		{"not host 198.18.0.9 and 198.18.0.1", udp53, true}, // "not host a and host b"
		{"sctp", key4("198.18.0.1", "198.18.0.2", protoSCTP, 1, 2), true},
		{"arp", arpKey, true},
		{"ip", arpKey, false},
	} {
		f, err := Parse(strings.Fields(c.expr))
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got := f.Match(&c.key); got != c.want {
			t.Errorf("%s on %+v: %v, want %v", c.expr, c.key, got, c.want)
		}
		if f.String() != c.expr {
			t.Errorf("String() %q, want %q", f.String(), c.expr)
		}
		if _, err := f.Instructions(); err != nil {
			t.Errorf("%s: %v", c.expr, err)
		}
	}
}

func TestParseNone(t *testing.T) {
	for _, words := range [][]string{nil, {}, {" ", ""}} {
		if f, err := Parse(words); f != nil || err != nil {
			t.Errorf("Parse(%q) = %v, %v; want no filter", words, f, err)
		}
	}
}

// TestParseErrors checks that what is not supported is refused, and that
// the error names the part.
func TestParseErrors(t *testing.T) {
	const list = " (supported: host, net, port, portrange, src, dst, ip, ip6, tcp, udp, icmp, icmp6, sctp, arp, proto, vlan, and, or, not)"
	for _, c := range []struct{ expr, want string }{
		{"ether host 00:11:22:33:44:55", `filter "ether host 00:11:22:33:44:55": "ether" is not supported` + list},
		{"udp and greater 100", `filter "udp and greater 100": "greater" is not supported` + list},
		{"tcp[13] & 2 != 0", `filter "tcp[13] & 2 != 0": "[" is not supported: byte offsets, arithmetic and comparisons are not part of the supported grammar`},
		{"ip multicast", `filter "ip multicast": "ip multicast" is not supported` + list},
		{"ip broadcast", `filter "ip broadcast": "ip broadcast" is not supported` + list},
		{"gateway 198.18.0.1", `filter "gateway 198.18.0.1": "gateway" is not supported` + list},
		{"rarp", `filter "rarp": "rarp" is not supported` + list},
		{"eth0", `filter "eth0": "eth0" is not a supported primitive` + list},
		{"port http", `filter "port http": port needs a port number (0-65535), not "http" (port names are not supported)`},
		{"port 70000", `filter "port 70000": port needs a port number (0-65535), not "70000" (port names are not supported)`},
		{"host example.com", `filter "host example.com": host needs an IPv4 or IPv6 address, not "example.com" (host names are not supported)`},
		{"host 198.18.0.300", `filter "host 198.18.0.300": host needs an IPv4 or IPv6 address, not "198.18.0.300"`},
		{"net 198.18.0.1/16", `filter "net 198.18.0.1/16": net "198.18.0.1/16": non-network bits set`},
		{"net 198.18.0.0/33", `filter "net 198.18.0.0/33": net "198.18.0.0/33": invalid prefix length "33"`},
		{"net 198.18.0.0 mask 255.0.255.0", `filter "net 198.18.0.0 mask 255.0.255.0": net 198.18.0.0 mask 255.0.255.0: the mask is not contiguous`},
		{"net 2001:2:: mask ffff::", `filter "net 2001:2:: mask ffff::": net "2001:2::" mask: the mask form takes an IPv4 network`},
		{"ip6 host 198.18.0.1", `filter "ip6 host 198.18.0.1": "198.18.0.1": ip6 host does not apply to this address family`},
		{"arp host 2001:2::1", `filter "arp host 2001:2::1": "2001:2::1": arp host does not apply to this address family`},
		{"tcp host 198.18.0.1", `filter "tcp host 198.18.0.1": "tcp" does not apply to host (tcpdump refuses it too)`},
		{"ip port 80", `filter "ip port 80": "ip" does not apply to port: use tcp, udp or sctp`},
		{"portrange 10", `filter "portrange 10": portrange needs FIRST-LAST, not "10"`},
		{"proto foo", `filter "proto foo": proto needs a protocol number (0-255) or name, not "foo"`},
		{"vlan 5000", `filter "vlan 5000": VLAN ID 5000 is larger than 4095`},
		{"tcp and", `filter "tcp and": unexpected end of expression`},
		{"(tcp", `filter "(tcp": missing ")"`},
		{"tcp)", `filter "tcp)": unexpected ")"`},
		{"host", `filter "host": unexpected end of expression`},
		{"host and tcp", `filter "host and tcp": host needs a value, not "and"`},
		{"not", `filter "not": unexpected end of expression`},
		{"tcp udp", `filter "tcp udp": unexpected "udp"`},
		{"udp & 1", `filter "udp & 1": "&" is not supported: byte offsets, arithmetic and comparisons are not part of the supported grammar`},
	} {
		_, err := Parse([]string{c.expr})
		if err == nil {
			t.Errorf("%s: accepted", c.expr)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.expr, err, c.want)
		}
	}
}

// TestInstructionsShape checks what the verifier relies on: forward
// jumps only, only R0-R2 written, and an exit at the end of every path.
func TestInstructionsShape(t *testing.T) {
	f, err := Parse([]string{"(tcp or udp) and not (host 198.18.0.1 or net 2001:2::/48) and portrange 1000-2000 or vlan 7 or icmp6"})
	if err != nil {
		t.Fatal(err)
	}
	insns, err := f.Instructions()
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, insns)
}
