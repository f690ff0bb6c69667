package flow

import "testing"

func TestProtoName(t *testing.T) {
	ip4 := func(p uint8) Key { return Key{EtherType: EtherTypeIPv4, Proto: p, Src: v4a, Dst: v4b} }
	ip6 := func(p uint8) Key { return Key{EtherType: EtherTypeIPv6, Proto: p, Src: v6a, Dst: v6b} }
	tests := []struct {
		k    Key
		want string
	}{
		{ip4(6), "TCP"},
		{ip6(6), "TCP"},
		{ip4(17), "UDP"},
		{ip6(17), "UDP"},
		{ip4(1), "ICMPv4"},
		{ip6(58), "IPv6-ICMP"},
		{ip4(2), "IGMP"},
		{ip4(47), "GRE"},
		{ip6(47), "GRE"},
		{ip4(50), "IPSEC-ESP"},
		{ip4(51), "IPSEC-AH"},
		{ip4(89), "OSPFIGP"},
		{ip4(132), "SCTP"},
		{ip6(132), "SCTP"},
		{ip6(44), "IPv6-Frag"},
		{ip4(0), "HOPOPT"},
		// Unassigned or unnamed numbers are shown in decimal.
		{ip4(99), "99"},
		{ip6(99), "99"},
		{ip4(253), "253"},
		{ip4(255), "255"},
		// Flags do not change the name.
		{Key{EtherType: EtherTypeIPv4, Proto: 6, Flags: Fragment | Malformed}, "TCP"},
		// Non-IP frames are named by their EtherType; Proto is ignored.
		{Key{EtherType: 0x0806}, "ARP"},
		{Key{EtherType: 0x0806, Proto: 6}, "ARP"},
		{Key{EtherType: 0x0000}, "LLC"},
		{Key{EtherType: 0x88CC}, "LLDP"},
		{Key{EtherType: 0x888E}, "EAPOL"},
		{Key{EtherType: 0x88b5}, "0x88b5"},
		{Key{EtherType: 0x0001}, "0x0001"},
		{Key{EtherType: 0xFFFF}, "0xffff"},
	}
	for _, tt := range tests {
		if got := tt.k.ProtoName(); got != tt.want {
			t.Errorf("Key{EtherType: %#04x, Proto: %d}.ProtoName() = %q, want %q", tt.k.EtherType, tt.k.Proto, got, tt.want)
		}
	}
}

func TestKeyKind(t *testing.T) {
	k := func(et uint16, p uint8, f Flags) Key {
		return Key{EtherType: et, Proto: p, Src: v4a, Dst: v4b, SrcPort: 1234, DstPort: 80, Flags: f}
	}
	const v4, v6 = EtherTypeIPv4, EtherTypeIPv6
	tests := []struct {
		name                   string
		k                      Key
		isIP, hasPorts, isICMP bool
	}{
		{"IPv4 TCP", k(v4, ProtoTCP, 0), true, true, false},
		{"IPv6 TCP", k(v6, ProtoTCP, 0), true, true, false},
		{"IPv4 UDP", k(v4, ProtoUDP, 0), true, true, false},
		{"IPv6 UDP", k(v6, ProtoUDP, 0), true, true, false},
		{"IPv4 SCTP", k(v4, ProtoSCTP, 0), true, true, false},
		{"IPv4 ICMP", k(v4, ProtoICMP, 0), true, false, true},
		{"IPv6 ICMP", k(v6, ProtoICMPv6, 0), true, false, true},
		{"IPv4 GRE", k(v4, 47, 0), true, false, false},
		{"IPv4 ESP", k(v4, 50, 0), true, false, false},
		{"IPv4 proto 99", k(v4, 99, 0), true, false, false},
		// A non-first fragment has no L4 header: its "ports" mean nothing.
		{"IPv4 TCP fragment", k(v4, ProtoTCP, Fragment), true, false, false},
		{"IPv6 UDP fragment", k(v6, ProtoUDP, Fragment), true, false, false},
		{"IPv4 ICMP fragment", k(v4, ProtoICMP, Fragment), true, false, false},
		{"IPv4 TCP malformed", k(v4, ProtoTCP, Malformed), true, false, false},
		{"IPv6 ICMP malformed", k(v6, ProtoICMPv6, Malformed), true, false, false},
		{"IPv6 UDP deep chain", k(v6, ProtoUDP, DeepChain), true, false, false},
		{"ARP", Key{EtherType: 0x0806}, false, false, false},
		// Non-IP frames never have ports, whatever Proto holds.
		{"ARP with stray proto", Key{EtherType: 0x0806, Proto: ProtoTCP, SrcPort: 1}, false, false, false},
		{"LLC with ICMP number", Key{EtherType: 0x0000, Proto: ProtoICMP}, false, false, false},
	}
	for _, tt := range tests {
		if got := tt.k.IsIP(); got != tt.isIP {
			t.Errorf("%s: IsIP() = %v, want %v", tt.name, got, tt.isIP)
		}
		if got := tt.k.HasPorts(); got != tt.hasPorts {
			t.Errorf("%s: HasPorts() = %v, want %v", tt.name, got, tt.hasPorts)
		}
		if got := tt.k.IsICMP(); got != tt.isICMP {
			t.Errorf("%s: IsICMP() = %v, want %v", tt.name, got, tt.isICMP)
		}
	}
}
