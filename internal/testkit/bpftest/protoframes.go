package bpftest

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Raw protocol headers that gopacket decodes but cannot serialize, laid out
// byte by byte as their RFCs say. gopacket decodes each of them in
// TestCasesOracle, so a layout mistake here fails there.

// ExtHeader is an IPv6 extension header with the hop-by-hop / destination
// options / routing layout (RFC 8200 4.3-4.6): next header, length in
// 8-octet units not counting the first, then body. For options headers
// the body is one PadN option; for a routing header (typ = routing type,
// e.g. 4 for a segment routing header), the type and segments left 0.
func ExtHeader(nh layers.IPProtocol, units int, routing bool, typ byte) gopacket.Payload {
	h := make(gopacket.Payload, 8*(units+1))
	h[0], h[1] = byte(nh), byte(units)
	if routing {
		h[2], h[3] = typ, 0
	} else {
		h[2], h[3] = 1, byte(len(h)-4) // PadN covering the rest
	}
	return h
}

// AHHeader is an Authentication Header (RFC 4302) with a 12-byte ICV: 24
// bytes, length field 4.
func AHHeader(nh layers.IPProtocol, spi uint32) gopacket.Payload {
	h := make(gopacket.Payload, 24)
	h[0], h[1] = byte(nh), 4
	binary.BigEndian.PutUint32(h[4:], spi)
	binary.BigEndian.PutUint32(h[8:], 1)
	return h
}

// ESPPacket is an ESP packet (RFC 4303): SPI, sequence number and n bytes
// of what would be ciphertext.
func ESPPacket(spi uint32, n int) gopacket.Payload {
	h := make(gopacket.Payload, 8+n)
	binary.BigEndian.PutUint32(h, spi)
	binary.BigEndian.PutUint32(h[4:], 7)
	for i := 8; i < len(h); i++ {
		h[i] = byte(i * 31)
	}
	return h
}

// OSPFv2Hello is an OSPFv2 Hello (RFC 2328 A.3.1, A.3.2) with one neighbor.
func OSPFv2Hello() gopacket.Payload {
	h := make(gopacket.Payload, 48)
	h[0], h[1] = 2, 1 // version, Hello
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)))
	copy(h[4:8], []byte{198, 18, 0, 1}) // router ID
	binary.BigEndian.PutUint32(h[24:], 0xFFFFFF00)
	binary.BigEndian.PutUint16(h[28:], 10) // hello interval
	h[31] = 1                              // priority
	binary.BigEndian.PutUint32(h[32:], 40) // dead interval
	copy(h[44:48], []byte{198, 18, 0, 2})  // neighbor
	return h
}

// OSPFv3Hello is an OSPFv3 Hello (RFC 5340 A.3.1, A.3.2), no neighbors.
func OSPFv3Hello() gopacket.Payload {
	h := make(gopacket.Payload, 36)
	h[0], h[1] = 3, 1
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)))
	copy(h[4:8], []byte{198, 18, 0, 1})
	binary.BigEndian.PutUint32(h[16:], 5) // interface ID
	h[20] = 1
	binary.BigEndian.PutUint16(h[24:], 10)
	binary.BigEndian.PutUint16(h[26:], 40)
	return h
}

// IGMPv2Report is an IGMPv2 membership report (RFC 2236 2).
func IGMPv2Report() gopacket.Payload {
	return gopacket.Payload{0x16, 0, 0, 0, 239, 1, 2, 3}
}

// IGMPv3Report is an IGMPv3 membership report with one record (RFC 3376 4.2).
func IGMPv3Report() gopacket.Payload {
	return gopacket.Payload{0x22, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 239, 1, 2, 3}
}

func ipv4With(p layers.IPProtocol, set func(*layers.IPv4)) *layers.IPv4 {
	ip := IPv4(p)
	set(ip)
	return ip
}

// patch returns a copy of b with the bytes at off replaced by v.
func patch(b []byte, off int, v ...byte) []byte {
	c := clone(b)
	copy(c[off:], v)
	return c
}

// protoCases are the frames of the protocols with fields of their own, of
// IPv6 extension chains, and of headers that lie about their lengths.
func protoCases(tb testing.TB) []Case {
	tb.Helper()
	f := func(ls ...gopacket.SerializableLayer) []byte { return Frame(tb, ls...) }
	const (
		ethLen  = 14
		vlanLen = 4
		ip4Len  = 20
		ip6Len  = 40
	)
	eth4 := func() *layers.Ethernet { return Eth(layers.EthernetTypeIPv4) }
	eth6 := func() *layers.Ethernet { return Eth(layers.EthernetTypeIPv6) }
	vlan := func(t layers.EthernetType) []gopacket.SerializableLayer {
		return sl{Eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: t}}
	}
	gre := func(inner layers.EthernetType, key bool) *layers.GRE {
		return &layers.GRE{Protocol: inner, KeyPresent: key, Key: 0xABCD, SeqPresent: key, Seq: 9}
	}

	cases := []Case{
		// IPsec: the SPI, high half in SrcPort.
		{Name: "ipv4-esp", Ports: true, Frame: f(eth4(), IPv4(layers.IPProtocolESP), ESPPacket(0x01020304, 40))},
		{Name: "ipv6-esp", Ports: true, Frame: f(eth6(), IPv6(layers.IPProtocolESP), ESPPacket(0xCAFE0001, 40))},
		{Name: "ipv4-ah-tcp", Ports: true, Frame: f(eth4(), IPv4(layers.IPProtocolAH), AHHeader(layers.IPProtocolTCP, 0xDEADBEEF), TCP(), Payload(10))},
		// In IPv6, AH is one more extension header: the row is the TCP flow.
		{Name: "ipv6-ah-tcp", Ports: true, Frame: f(eth6(), IPv6(layers.IPProtocolAH), AHHeader(layers.IPProtocolTCP, 0xDEADBEEF), TCP(), Payload(10))},
		{Name: "ipv4-frag-nonfirst-esp", Flags: flow.Fragment, Frame: f(eth4(), ipv4With(layers.IPProtocolESP, func(ip *layers.IPv4) { ip.FragOffset = 100 }), garbagePorts())},

		// Tunnels: GRE's protocol type and flags; IP in IP has no fields.
		{Name: "ipv4-gre-ipv4", Ports: true, Frame: f(eth4(), IPv4(layers.IPProtocolGRE), gre(layers.EthernetTypeIPv4, false),
			ipv4With(layers.IPProtocolUDP, func(*layers.IPv4) {}), UDP(), Payload(8))},
		{Name: "ipv4-gre-key-seq-teb", Ports: true, Frame: f(eth4(), IPv4(layers.IPProtocolGRE), gre(layers.EthernetTypeTransparentEthernetBridging, true),
			Eth(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolUDP), UDP(), Payload(8))},
		{Name: "ipv6-gre-ipv6", Ports: true, Frame: f(eth6(), IPv6(layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeIPv6, ChecksumPresent: true},
			IPv6(layers.IPProtocolUDP), UDP(), Payload(8))},
		{Name: "ipv4-gre-routing", Flags: flow.Malformed, Frame: f(eth4(), IPv4(layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeIPv4, RoutingPresent: true,
			GRERouting: &layers.GRERouting{AddressFamily: 0x0800, SRELength: 4, RoutingInformation: []byte{1, 2, 3, 4}}}, Payload(20))},
		{Name: "ipv4-ipip", Frame: f(eth4(), IPv4(layers.IPProtocolIPv4), IPv4(layers.IPProtocolUDP), UDP(), Payload(8))},
		{Name: "ipv4-6in4", Frame: f(eth4(), IPv4(layers.IPProtocolIPv6), IPv6(layers.IPProtocolUDP), UDP(), Payload(8))},

		// Routing protocols.
		{Name: "ipv4-ospfv2-hello", Ports: true, Frame: f(eth4(), IPv4(layers.IPProtocolOSPF), OSPFv2Hello())},
		{Name: "ipv6-ospfv3-hello", Ports: true, Frame: f(eth6(), IPv6(layers.IPProtocolOSPF), OSPFv3Hello())},
		{Name: "ipv4-igmpv2-report", Ports: true, Frame: f(eth4(), IPv4(layers.IPProtocolIGMP), IGMPv2Report())},
		{Name: "ipv4-igmpv3-report", Ports: true, Frame: f(eth4(), IPv4(layers.IPProtocolIGMP), IGMPv3Report())},

		// ARP: opcode, and the IPv4 addresses of sender and target.
		{Name: "arp-reply", Ports: true, Frame: f(Eth(layers.EthernetTypeARP), func() *layers.ARP {
			a := arp()
			a.Operation, a.SourceProtAddress, a.DstProtAddress = layers.ARPReply, net.IP{198, 19, 0, 2}, net.IP{198, 18, 0, 1}
			return a
		}())},
		// Another protocol's ARP: the opcode, no addresses.
		{Name: "arp-ipv6-ptype", Ports: true, Frame: f(Eth(layers.EthernetTypeARP), &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv6, HwAddressSize: 6, ProtAddressSize: 16,
			Operation: layers.ARPRequest, SourceHwAddress: srcMAC, SourceProtAddress: src6(),
			DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: dst6()})},
		// 8-byte hardware addresses move the protocol addresses.
		{Name: "arp-hlen8", Ports: true, Frame: f(Eth(layers.EthernetTypeARP), &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 8, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: make([]byte, 8), SourceProtAddress: src4(),
			DstHwAddress: make([]byte, 8), DstProtAddress: dst4()})},
		{Name: "qinq-arp", VLAN: 300, Ports: true, Frame: f(Eth(layers.EthernetTypeQinQ),
			&layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeARP}, arp())},

		// IPv6 extension chains: every kind, six deep, before UDP. The
		// routing header is a segment routing header (type 4), which
		// gopacket does not decode as such.
		{Name: "ipv6-ext6-mixed-udp", Ports: true, Frame: f(eth6(), IPv6(layers.IPProtocolIPv6HopByHop),
			ExtHeader(layers.IPProtocolIPv6Routing, 0, false, 0),
			ExtHeader(layers.IPProtocolIPv6Destination, 2, true, 4),
			ExtHeader(layers.IPProtocolAH, 1, false, 0),
			AHHeader(layers.IPProtocolIPv6Fragment, 0x1234),
			&IPv6Fragment{NextHeader: layers.IPProtocolIPv6Destination, More: true, ID: 5},
			ExtHeader(layers.IPProtocolUDP, 0, false, 0),
			UDP(), Payload(16))},
		{Name: "ipv6-ext7-tcp", Ports: true, Frame: f(cat(sl{eth6(), IPv6(layers.IPProtocolIPv6Destination)},
			dstChain(7, layers.IPProtocolTCP), sl{TCP(), Payload(8)})...)},
		// A later fragment behind a chain: the fragment header names UDP.
		{Name: "ipv6-ext-frag-nonfirst", Flags: flow.Fragment, Frame: f(eth6(), IPv6(layers.IPProtocolIPv6HopByHop),
			ExtHeader(layers.IPProtocolIPv6Fragment, 0, false, 0),
			&IPv6Fragment{NextHeader: layers.IPProtocolUDP, Offset: 10, ID: 5}, garbagePorts())},
		// Hop-by-hop options that overrun their header: the parser does not
		// read options, gopacket's hop-by-hop decoder rejects them.
		{Name: "ipv6-hbh-bad-option-tcp", Ports: true, Frame: f(eth6(), IPv6(layers.IPProtocolIPv6HopByHop),
			gopacket.Payload{byte(layers.IPProtocolTCP), 0, 0x1E, 200, 0, 0, 0, 0}, TCP(), Payload(8))},
		{Name: "ipv6-ext-deep-esp", Flags: flow.DeepChain, Frame: f(cat(sl{eth6(), IPv6(layers.IPProtocolIPv6HopByHop)},
			sl{ExtHeader(layers.IPProtocolAH, 0, false, 0)}, sl{AHHeader(layers.IPProtocolIPv6Destination, 1)},
			dstChain(7, layers.IPProtocolESP), sl{ESPPacket(1, 8)})...)},

		// Options the parser does not read, and gopacket refuses.
		// (gopacket fixes option lengths when it serializes: they are
		// broken in the bytes afterwards.)
		{Name: "ipv4-bad-option-udp", Ports: true, Frame: patch(f(eth4(), ipv4With(layers.IPProtocolUDP, func(ip *layers.IPv4) {
			ip.Options = []layers.IPv4Option{{OptionType: 0x44, OptionLength: 4, OptionData: []byte{0, 0}}}
		}), UDP(), Payload(18)), ethLen+ip4Len+1, 0)},
		{Name: "tcp-bad-option", Ports: true, Frame: patch(f(eth4(), IPv4(layers.IPProtocolTCP), &layers.TCP{SrcPort: sport, DstPort: dport, ACK: true,
			Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}, Payload(10)),
			ethLen+ip4Len+20+1, 1)},
	}

	// Lengths that lie. Header fields at fixed offsets from the frame start.
	udp4 := f(eth4(), IPv4(layers.IPProtocolUDP), UDP(), Payload(18))
	tcp4 := f(eth4(), IPv4(layers.IPProtocolTCP), TCP(), Payload(100))
	tcp6 := f(eth6(), IPv6(layers.IPProtocolTCP), TCP(), Payload(100))
	totLen := func(b []byte, n uint16) []byte {
		c := clone(b)
		binary.BigEndian.PutUint16(c[ethLen+2:], n)
		return c
	}
	payLen := func(b []byte, n uint16) []byte {
		c := clone(b)
		binary.BigEndian.PutUint16(c[ethLen+4:], n)
		return c
	}
	esp4 := f(eth4(), IPv4(layers.IPProtocolESP), ESPPacket(1, 0))
	gre4 := f(eth4(), IPv4(layers.IPProtocolGRE), gre(layers.EthernetTypeIPv4, true))
	ospf4 := f(eth4(), IPv4(layers.IPProtocolOSPF), OSPFv2Hello())
	igmp4 := f(eth4(), IPv4(layers.IPProtocolIGMP), IGMPv2Report())
	ah4 := f(eth4(), IPv4(layers.IPProtocolAH), AHHeader(layers.IPProtocolTCP, 5), TCP())
	arpF := f(Eth(layers.EthernetTypeARP), arp())
	chain := f(cat(sl{eth6(), IPv6(layers.IPProtocolIPv6Destination)}, dstChain(3, layers.IPProtocolUDP), sl{UDP(), Payload(8)})...)
	cases = append(cases,
		// The TCP header lies beyond the IP packet's declared end.
		Case{Name: "ipv4-totlen-short-tcp", Flags: flow.Malformed, Frame: totLen(tcp4, ip4Len+10)},
		Case{Name: "ipv4-totlen-below-ihl", Flags: flow.Malformed, Frame: totLen(tcp4, 12)},
		// TSO and BIG TCP packets carry 0: the packet is the frame.
		Case{Name: "ipv4-totlen-zero-tcp", Ports: true, Frame: totLen(tcp4, 0)},
		Case{Name: "ipv4-ihl-beyond-frame", VLAN: 100, Flags: flow.Malformed, Frame: patch(f(cat(vlan(layers.EthernetTypeIPv4),
			sl{IPv4(layers.IPProtocolUDP), UDP()})...), ethLen+vlanLen, 0x4F)},
		Case{Name: "ipv6-paylen-short-tcp", Flags: flow.Malformed, Frame: payLen(tcp6, 10)},
		Case{Name: "ipv6-paylen-zero-tcp", Ports: true, Frame: payLen(tcp6, 0)},
		// The chain's second header runs past payload_len.
		Case{Name: "ipv6-paylen-inside-chain", Flags: flow.Malformed, Frame: payLen(chain, 12)},
		Case{Name: "ipv6-ext-len-beyond-frame", Flags: flow.Malformed, Frame: patch(chain, ethLen+ip6Len+8+1, 200)},
		Case{Name: "ipv6-ah-len0", Flags: flow.Malformed, Frame: patch(f(eth6(), IPv6(layers.IPProtocolAH), AHHeader(layers.IPProtocolTCP, 1), TCP()), ethLen+ip6Len+1, 0)},
		Case{Name: "udp-len-below-header", Flags: flow.Malformed, Frame: patch(udp4, ethLen+ip4Len+4, 0, 5)},
		// UDP length 0: a jumbogram's, the payload runs to the IP end.
		Case{Name: "udp-len-zero", Ports: true, Frame: patch(udp4, ethLen+ip4Len+4, 0, 0)},
		Case{Name: "trunc-esp", Flags: flow.Malformed, Frame: totLen(esp4, ip4Len+6)},
		Case{Name: "trunc-ah", Flags: flow.Malformed, Frame: totLen(ah4, ip4Len+20)},
		Case{Name: "ipv4-ah-len1-short", Flags: flow.Malformed, Frame: patch(ah4, ethLen+ip4Len+1, 0)},
		Case{Name: "trunc-gre-key", Flags: flow.Malformed, Frame: totLen(gre4, ip4Len+6)},
		Case{Name: "trunc-ospfv2-header", Flags: flow.Malformed, Frame: totLen(ospf4, ip4Len+20)},
		Case{Name: "ospf-version-7", Flags: flow.Malformed, Frame: patch(ospf4, ethLen+ip4Len, 7)},
		Case{Name: "trunc-igmp", Flags: flow.Malformed, Frame: totLen(igmp4, ip4Len+6)},
		Case{Name: "trunc-arp-addresses", Flags: flow.Malformed, Frame: arpF[:ethLen+20]},
		Case{Name: "trunc-arp-fixed", Flags: flow.Malformed, Frame: arpF[:ethLen+5]},
		// Tiny: an Ethernet header and nothing else; 15 bytes of 802.3.
		Case{Name: "tiny-ethernet-only", Frame: f(Eth(0x88B5))[:ethLen]},
		Case{Name: "tiny-802.3", Frame: f(Eth(layers.EthernetTypeLLC), gopacket.Payload{0x42})[:ethLen+1]},
	)
	return cases
}
