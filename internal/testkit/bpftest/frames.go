package bpftest

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Test addresses, from the benchmarking ranges 198.18.0.0/15 and 2001:2::/48.
var (
	srcMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	dstMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
)

// IPv4 and IPv6 test endpoints; fresh slices on every call, because
// gopacket keeps references to them.
func src4() net.IP { return net.IP{198, 18, 0, 1} }
func dst4() net.IP { return net.IP{198, 19, 0, 2} }
func src6() net.IP { return net.ParseIP("2001:2::1") }
func dst6() net.IP { return net.ParseIP("2001:2::2") }

// Frame serializes ls with lengths and checksums fixed, as a NIC would put
// it on the wire (gopacket pads Ethernet frames to 60 bytes). TCP, UDP and
// ICMPv6 checksums cover the nearest preceding IP layer.
func Frame(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	var network gopacket.NetworkLayer
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.IPv4:
			network = l
		case *layers.IPv6:
			network = l
		case *layers.TCP:
			setChecksumNetwork(tb, l.SetNetworkLayerForChecksum, network)
		case *layers.UDP:
			setChecksumNetwork(tb, l.SetNetworkLayerForChecksum, network)
		case *layers.ICMPv6:
			setChecksumNetwork(tb, l.SetNetworkLayerForChecksum, network)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize frame: %v", err)
	}
	return buf.Bytes()
}

func setChecksumNetwork(tb testing.TB, set func(gopacket.NetworkLayer) error, network gopacket.NetworkLayer) {
	tb.Helper()
	if network == nil {
		return
	}
	if err := set(network); err != nil {
		tb.Fatalf("set checksum network layer: %v", err)
	}
}

// IPv6Fragment is the IPv6 fragment extension header (RFC 8200, 4.5), which
// gopacket decodes but cannot serialize.
type IPv6Fragment struct {
	NextHeader layers.IPProtocol
	Offset     uint16 // in 8-octet units
	More       bool
	ID         uint32
}

// LayerType implements gopacket.SerializableLayer.
func (f *IPv6Fragment) LayerType() gopacket.LayerType { return layers.LayerTypeIPv6Fragment }

// SerializeTo implements gopacket.SerializableLayer.
func (f *IPv6Fragment) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	h, err := b.PrependBytes(8)
	if err != nil {
		return err
	}
	h[0] = uint8(f.NextHeader)
	h[1] = 0
	offMore := f.Offset << 3
	if f.More {
		offMore |= 1
	}
	binary.BigEndian.PutUint16(h[2:4], offMore)
	binary.BigEndian.PutUint32(h[4:8], f.ID)
	return nil
}

// Case is one frame of the parser table. Flags, VLAN and Ports state what
// the frame was built to exercise; the oracle's key must show them too
// (TestCasesOracle), which guards the oracle against agreeing with a bug.
type Case struct {
	Name  string
	Frame []byte
	Flags flow.Flags // flags the frame's row must carry
	VLAN  uint16     // VLAN ID the row must carry
	// Ports: the row has non-zero protocol fields (ports, ICMP type and
	// code, SPI, GRE, OSPF or IGMP fields, ARP opcode).
	Ports bool
	// L7 is the application protocol the frame's payload was built with,
	// or L7Unknown for a payload that must not be recognised; 0 leaves
	// the verdict to Expectation.CheckL7's rules.
	L7 flow.L7
}

// Ports of the test flows: outside every port gopacket decodes an
// application layer for, so that gopacket stops at the transport header.
const (
	sport = 40001
	dport = 5201
)

// garbagePorts is a payload that reads as ports 0xDEAD/0xBEEF to a parser
// that wrongly looks for an L4 header in it.
func garbagePorts() gopacket.Payload {
	p := make(gopacket.Payload, 32)
	copy(p, []byte{0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x18, 0x00, 0x00})
	return p
}

// Payload is n bytes of counting data.
func Payload(n int) gopacket.Payload {
	p := make(gopacket.Payload, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// Eth is an Ethernet header of type t between the test MACs.
func Eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: t}
}

// IPv4 is an IPv4 header from 198.18.0.1 to 198.19.0.2 carrying p.
func IPv4(p layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: p, SrcIP: src4(), DstIP: dst4()}
}

// IPv6 is an IPv6 header from 2001:2::1 to 2001:2::2 with next header nh.
func IPv6(nh layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh, SrcIP: src6(), DstIP: dst6()}
}

// TCP is a TCP header with options (MSS, SACK permitted, timestamps), so
// that its data offset is 32 bytes rather than 20.
func TCP() *layers.TCP {
	ts := make([]byte, 8)
	binary.BigEndian.PutUint32(ts, 123456)
	return &layers.TCP{
		SrcPort: sport, DstPort: dport, Seq: 1000, Ack: 2000, ACK: true, PSH: true, Window: 502,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: ts},
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindNop},
		},
	}
}

// UDP is a UDP header with the test ports.
func UDP() *layers.UDP { return &layers.UDP{SrcPort: sport, DstPort: dport} }

func sctpHdr() *layers.SCTP {
	return &layers.SCTP{SrcPort: sport, DstPort: dport, VerificationTag: 0x01020304}
}

func sctpData() *layers.SCTPData {
	return &layers.SCTPData{
		SCTPChunk:       layers.SCTPChunk{Type: layers.SCTPChunkTypeData, Flags: 3, Length: 16 + 8, ActualLength: 16 + 8},
		BeginFragment:   true,
		EndFragment:     true,
		TSN:             1,
		StreamId:        0,
		StreamSequence:  0,
		PayloadProtocol: 0,
	}
}

func dstOpts(nh layers.IPProtocol, dataLen int) *layers.IPv6Destination {
	d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{
		// Type 0x1E: experimental (RFC 4727), "skip if unknown".
		{OptionType: 0x1E, OptionData: make([]byte, dataLen)},
	}}
	d.NextHeader = nh
	return d
}

func hopByHop(nh layers.IPProtocol) *layers.IPv6HopByHop {
	h := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{
		{OptionType: 0x1E, OptionData: make([]byte, 4)},
	}}
	h.NextHeader = nh
	return h
}

// dstChain is n destination-options headers, the last followed by nh.
func dstChain(n int, nh layers.IPProtocol) []gopacket.SerializableLayer {
	ls := make([]gopacket.SerializableLayer, n)
	for i := range n {
		next := layers.IPProtocolIPv6Destination
		if i == n-1 {
			next = nh
		}
		ls[i] = dstOpts(next, 4)
	}
	return ls
}

// bigDstChain is n destination-options headers, each of opts options of
// size bytes (a header takes 2 + opts * (2 + size) bytes, which must be a
// multiple of 8), the last followed by nh.
func bigDstChain(n, opts, size int, nh layers.IPProtocol) []gopacket.SerializableLayer {
	ls := make([]gopacket.SerializableLayer, n)
	for i := range n {
		d := &layers.IPv6Destination{}
		for range opts {
			d.Options = append(d.Options, &layers.IPv6DestinationOption{OptionType: 0x1E, OptionData: make([]byte, size)})
		}
		d.NextHeader = layers.IPProtocolIPv6Destination
		if i == n-1 {
			d.NextHeader = nh
		}
		ls[i] = d
	}
	return ls
}

func cat(groups ...[]gopacket.SerializableLayer) []gopacket.SerializableLayer {
	var all []gopacket.SerializableLayer
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

type sl = []gopacket.SerializableLayer

// Cases returns the parser table: one frame of every shape the parser
// handles, including the broken ones it must count without trusting.
func Cases(tb testing.TB) []Case {
	tb.Helper()
	f := func(ls ...gopacket.SerializableLayer) []byte { return Frame(tb, ls...) }
	const (
		ethLen  = 14
		ip4Len  = 20
		ip6Len  = 40
		vlanLen = 4
	)

	cases := []Case{
		{Name: "ipv4-tcp", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolTCP), TCP(), Payload(100))},
		{Name: "ipv4-udp", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolUDP), UDP(), Payload(18))},
		{Name: "ipv4-icmp", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort)}, Payload(28))},
		{Name: "ipv4-sctp", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolSCTP), sctpHdr(), sctpData(), Payload(8))},
		{Name: "ipv4-options-udp", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv4), func() *layers.IPv4 {
			ip := IPv4(layers.IPProtocolUDP)
			// Router Alert (RFC 2113): IHL becomes 6.
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
			return ip
		}(), UDP(), Payload(18))},
		{Name: "ipv4-unknown-proto", Frame: f(Eth(layers.EthernetTypeIPv4), IPv4(253), garbagePorts())},
		{Name: "ipv6-tcp", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolTCP), TCP(), Payload(100))},
		{Name: "ipv6-udp", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolUDP), UDP(), Payload(18))},
		{Name: "ipv6-icmpv6", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeDestinationUnreachable, layers.ICMPv6CodePortUnreachable)}, Payload(48))},
		{Name: "ipv6-sctp", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolSCTP), sctpHdr(), sctpData(), Payload(8))},

		{Name: "vlan-ipv4-udp", VLAN: 100, Ports: true, Frame: f(Eth(layers.EthernetTypeDot1Q),
			&layers.Dot1Q{VLANIdentifier: 100, Priority: 3, Type: layers.EthernetTypeIPv4}, IPv4(layers.IPProtocolUDP), UDP(), Payload(18))},
		{Name: "vlan-ipv6-tcp", VLAN: 4094, Ports: true, Frame: f(Eth(layers.EthernetTypeDot1Q),
			&layers.Dot1Q{VLANIdentifier: 4094, Type: layers.EthernetTypeIPv6}, IPv6(layers.IPProtocolTCP), TCP(), Payload(10))},
		// QinQ: the S-tag (802.1ad) names the row's VLAN, not the C-tag.
		{Name: "qinq-ipv4-tcp", VLAN: 300, Ports: true, Frame: f(Eth(layers.EthernetTypeQinQ),
			&layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, IPv4(layers.IPProtocolTCP), TCP(), Payload(10))},
		{Name: "qinq-ipv6-udp", VLAN: 7, Ports: true, Frame: f(Eth(layers.EthernetTypeQinQ),
			&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 8, Type: layers.EthernetTypeIPv6}, IPv6(layers.IPProtocolUDP), UDP(), Payload(10))},

		{Name: "arp", Ports: true, Frame: f(Eth(layers.EthernetTypeARP), arp())},
		{Name: "vlan-arp", VLAN: 42, Ports: true, Frame: f(Eth(layers.EthernetTypeDot1Q),
			&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeARP}, arp())},
		{Name: "ethertype-0x88b5", Frame: f(Eth(0x88B5), garbagePorts())},
		// 802.3: the type field holds the length; LLC follows.
		{Name: "llc-802.3", Frame: f(Eth(layers.EthernetTypeLLC),
			&layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 0x03}, Payload(38))},

		// IPv4 fragments: the first carries the UDP header; a later one
		// carries payload that only looks like one.
		{Name: "ipv4-frag-first", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv4), func() *layers.IPv4 {
			ip := IPv4(layers.IPProtocolUDP)
			ip.Id, ip.Flags = 0x1234, layers.IPv4MoreFragments
			return ip
		}(), UDP(), Payload(1472))},
		{Name: "ipv4-frag-nonfirst", Flags: flow.Fragment, Frame: f(Eth(layers.EthernetTypeIPv4), func() *layers.IPv4 {
			ip := IPv4(layers.IPProtocolUDP)
			ip.Id, ip.FragOffset = 0x1234, 185 // 1480 bytes in; the last fragment
			return ip
		}(), garbagePorts())},

		// IPv6: extension headers before UDP, the fragment header among them
		// (offset 0: the first fragment, which carries the UDP header).
		{Name: "ipv6-hbh-dst-frag-udp", Ports: true, Frame: f(Eth(layers.EthernetTypeIPv6),
			IPv6(layers.IPProtocolIPv6HopByHop),
			hopByHop(layers.IPProtocolIPv6Destination),
			dstOpts(layers.IPProtocolIPv6Fragment, 12), // 16 bytes: two 8-octet units
			&IPv6Fragment{NextHeader: layers.IPProtocolUDP, More: true, ID: 77},
			UDP(), Payload(64))},
		{Name: "ipv6-frag-nonfirst", Flags: flow.Fragment, Frame: f(Eth(layers.EthernetTypeIPv6),
			IPv6(layers.IPProtocolIPv6Fragment),
			&IPv6Fragment{NextHeader: layers.IPProtocolUDP, Offset: 181, More: true, ID: 77},
			garbagePorts())},
		// The parser follows up to 8 extension headers (MAX_IPV6_EXT).
		{Name: "ipv6-ext8-udp", Ports: true, Frame: f(cat(
			sl{Eth(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolIPv6Destination)},
			dstChain(8, layers.IPProtocolUDP),
			sl{UDP(), Payload(8)})...)},
		{Name: "ipv6-ext9-deep", Flags: flow.DeepChain, Frame: f(cat(
			sl{Eth(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolIPv6Destination)},
			dstChain(9, layers.IPProtocolUDP),
			sl{UDP(), Payload(8)})...)},
		// Nor does it read a header that starts past byte 2048 of the frame
		// (MAX_HDR_OFF): the chain is too deep to follow, in bytes. Here the
		// UDP header at byte 2102, after 8 headers of 256 bytes; and the
		// fourth of four headers of 752 bytes, at byte 2310.
		{Name: "ipv6-ext8-udp-past-reach", Flags: flow.DeepChain, Frame: f(cat(
			sl{Eth(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolIPv6Destination)},
			bigDstChain(8, 1, 252, layers.IPProtocolUDP),
			sl{UDP(), Payload(8)})...)},
		{Name: "ipv6-ext4-past-reach", Flags: flow.DeepChain, Frame: f(cat(
			sl{Eth(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolIPv6Destination)},
			bigDstChain(4, 3, 248, layers.IPProtocolUDP),
			sl{UDP(), Payload(8)})...)},
	}

	// Broken frames: cut short, or declaring impossible lengths.
	tcp4 := f(Eth(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolTCP), TCP(), Payload(100))
	udp4 := f(Eth(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolUDP), UDP(), Payload(18))
	tcp6 := f(Eth(layers.EthernetTypeIPv6), IPv6(layers.IPProtocolTCP), TCP(), Payload(100))
	vlan4 := f(Eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4},
		IPv4(layers.IPProtocolUDP), UDP(), Payload(18))
	qinq4 := f(Eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, IPv4(layers.IPProtocolUDP), UDP(), Payload(18))

	bogusIHL := clone(udp4)
	bogusIHL[ethLen] = 0x44 // version 4, IHL 4: 16 bytes, shorter than the fixed header
	badVersion := clone(udp4)
	badVersion[ethLen] = 0x65 // version 6 under EtherType IPv4
	bogusDoff := clone(tcp4)
	bogusDoff[ethLen+ip4Len+12] = 0x30 // data offset 3: 12 bytes, shorter than the fixed header

	// BPF_PROG_TEST_RUN for skb programs refuses (EINVAL) a frame whose
	// EtherType is IPv4 or IPv6 but whose linear data is shorter than that
	// IP header (net/bpf/test_run.c, since 2026 stable kernels). Behind a
	// VLAN tag the kernel does not look, and the parser takes the same path.
	vlanTCP4 := f(Eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4},
		IPv4(layers.IPProtocolTCP), TCP(), Payload(100))
	vlanTCP6 := f(Eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv6},
		IPv6(layers.IPProtocolTCP), TCP(), Payload(100))

	cases = append(cases,
		Case{Name: "trunc-ipv4-header", VLAN: 100, Flags: flow.Malformed, Frame: vlanTCP4[:ethLen+vlanLen+10]},
		Case{Name: "trunc-tcp-header", Flags: flow.Malformed, Frame: tcp4[:ethLen+ip4Len+10]},
		// The fixed 20 bytes are there, the options are not.
		Case{Name: "trunc-tcp-options", Flags: flow.Malformed, Frame: tcp4[:ethLen+ip4Len+24]},
		Case{Name: "trunc-udp-header", Flags: flow.Malformed, Frame: udp4[:ethLen+ip4Len+4]},
		Case{Name: "trunc-ipv6-header", VLAN: 100, Flags: flow.Malformed, Frame: vlanTCP6[:ethLen+vlanLen+30]},
		Case{Name: "trunc-ipv6-tcp-header", Flags: flow.Malformed, Frame: tcp6[:ethLen+ip6Len+19]},
		Case{Name: "trunc-vlan-tag", Flags: flow.Malformed, Frame: vlan4[:ethLen+2]},
		Case{Name: "trunc-qinq-inner-tag", VLAN: 300, Flags: flow.Malformed, Frame: qinq4[:ethLen+vlanLen+3]},
		Case{Name: "ipv4-bogus-ihl", Flags: flow.Malformed, Frame: bogusIHL},
		Case{Name: "ipv4-bad-version", Flags: flow.Malformed, Frame: badVersion},
		Case{Name: "tcp-bogus-doff", Flags: flow.Malformed, Frame: bogusDoff},
	)
	cases = append(cases, protoCases(tb)...)
	return append(cases, L7Cases(tb)...)
}

func arp() *layers.ARP {
	return &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: srcMAC, SourceProtAddress: src4(),
		DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: dst4(),
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
