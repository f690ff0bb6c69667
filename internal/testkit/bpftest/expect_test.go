package bpftest

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// TestCasesOracle checks the oracle against what each frame was built to
// exercise, so that a kernel test comparing with the oracle cannot pass by
// the oracle sharing the parser's mistake. It needs no privileges.
func TestCasesOracle(t *testing.T) {
	names := map[string]bool{}
	for _, c := range Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			if names[c.Name] {
				t.Fatalf("duplicate case name %q", c.Name)
			}
			names[c.Name] = true
			k, err := ExpectedKey(c.Frame)
			if err != nil {
				t.Fatalf("ExpectedKey: %v", err)
			}
			t.Logf("%d bytes: %+v", len(c.Frame), k)
			if k.Flags != c.Flags {
				t.Errorf("flags = %03b, the frame was built for %03b", k.Flags, c.Flags)
			}
			if k.VLAN != c.VLAN {
				t.Errorf("VLAN = %d, the frame was built for %d", k.VLAN, c.VLAN)
			}
			if ports := k.SrcPort != 0 || k.DstPort != 0; ports != c.Ports {
				t.Errorf("ports %d/%d, the frame was built with ports: %v", k.SrcPort, k.DstPort, c.Ports)
			}
			if k.IsIP() && k.Flags&flow.Malformed == 0 {
				if want := map[bool]netip.Addr{
					true:  netip.MustParseAddr("198.18.0.1"),
					false: netip.MustParseAddr("2001:2::1"),
				}[k.EtherType == flow.EtherTypeIPv4]; k.Src != want {
					t.Errorf("source %v, the frame was built from %v", k.Src, want)
				}
			}
			if k.Flags&flow.Malformed != 0 && k.IsIP() && k.Proto != 0 && k.Src.IsUnspecified() {
				t.Errorf("protocol %d without addresses", k.Proto)
			}
			checkL7Construction(t, c)
		})
	}
}

// TestExpectedKeyKnownFrames pins the oracle's reading of a few frames,
// field by field, against values written out by hand.
func TestExpectedKeyKnownFrames(t *testing.T) {
	byName := map[string]Case{}
	for _, c := range Cases(t) {
		byName[c.Name] = c
	}
	v4 := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for name, want := range map[string]flow.Key{
		"ipv4-tcp": {EtherType: 0x0800, Proto: 6, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"), SrcPort: 40001, DstPort: 5201},
		"qinq-ipv4-tcp": {EtherType: 0x0800, Proto: 6, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"),
			SrcPort: 40001, DstPort: 5201, VLAN: 300},
		"ipv6-icmpv6": {EtherType: 0x86DD, Proto: 58, Src: v4("2001:2::1"), Dst: v4("2001:2::2"), SrcPort: 1, DstPort: 4},
		"ipv6-frag-nonfirst": {EtherType: 0x86DD, Proto: 17, Src: v4("2001:2::1"), Dst: v4("2001:2::2"),
			Flags: flow.Fragment},
		"ipv6-ext9-deep": {EtherType: 0x86DD, Proto: 60, Src: v4("2001:2::1"), Dst: v4("2001:2::2"),
			Flags: flow.DeepChain},
		"llc-802.3":           {EtherType: 0},
		"arp":                 {EtherType: 0x0806, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"), SrcPort: 1},
		"arp-reply":           {EtherType: 0x0806, Src: v4("198.19.0.2"), Dst: v4("198.18.0.1"), SrcPort: 2},
		"arp-ipv6-ptype":      {EtherType: 0x0806, Src: v4("0.0.0.0"), Dst: v4("0.0.0.0"), SrcPort: 1},
		"arp-hlen8":           {EtherType: 0x0806, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"), SrcPort: 1},
		"trunc-arp-addresses": {EtherType: 0x0806, Src: v4("0.0.0.0"), Dst: v4("0.0.0.0"), Flags: flow.Malformed},
		"ipv4-esp":            {EtherType: 0x0800, Proto: 50, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"), SrcPort: 0x0102, DstPort: 0x0304},
		"ipv4-ah-tcp":         {EtherType: 0x0800, Proto: 51, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"), SrcPort: 0xDEAD, DstPort: 0xBEEF},
		"ipv6-ah-tcp":         {EtherType: 0x86DD, Proto: 6, Src: v4("2001:2::1"), Dst: v4("2001:2::2"), SrcPort: 40001, DstPort: 5201},
		// K and S set; protocol: transparent Ethernet bridging.
		"ipv4-gre-key-seq-teb":  {EtherType: 0x0800, Proto: 47, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"), SrcPort: 0x6558, DstPort: 0x3000},
		"ipv6-gre-ipv6":         {EtherType: 0x86DD, Proto: 47, Src: v4("2001:2::1"), Dst: v4("2001:2::2"), SrcPort: 0x86DD, DstPort: 0x8000},
		"ipv4-ospfv2-hello":     {EtherType: 0x0800, Proto: 89, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"), SrcPort: 1, DstPort: 2},
		"ipv6-ospfv3-hello":     {EtherType: 0x86DD, Proto: 89, Src: v4("2001:2::1"), Dst: v4("2001:2::2"), SrcPort: 1, DstPort: 3},
		"ipv4-igmpv3-report":    {EtherType: 0x0800, Proto: 2, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"), SrcPort: 0x22},
		"ipv6-ext6-mixed-udp":   {EtherType: 0x86DD, Proto: 17, Src: v4("2001:2::1"), Dst: v4("2001:2::2"), SrcPort: 40001, DstPort: 5201},
		"ipv4-totlen-short-tcp": {EtherType: 0x0800, Proto: 6, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"), Flags: flow.Malformed},
		"trunc-ipv4-header":     {EtherType: 0x0800, Src: v4("0.0.0.0"), Dst: v4("0.0.0.0"), VLAN: 100, Flags: flow.Malformed},
		"trunc-tcp-header": {EtherType: 0x0800, Proto: 6, Src: v4("198.18.0.1"), Dst: v4("198.19.0.2"),
			Flags: flow.Malformed},
		"trunc-qinq-inner-tag": {EtherType: 0x8100, VLAN: 300, Flags: flow.Malformed},
	} {
		c, ok := byName[name]
		if !ok {
			t.Fatalf("no case %q", name)
		}
		got, err := ExpectedKey(c.Frame)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want.Ifindex = TestRunIfindex
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

// checkL7Construction has gopacket confirm what an L7 case's payload was
// built as, where gopacket decodes the protocol (DNS, TLS), and checks
// that every L7 case is a TCP or UDP flow with a payload.
func checkL7Construction(t *testing.T, c Case) {
	t.Helper()
	if c.L7 == 0 {
		return
	}
	x, err := Expect(c.Frame, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !x.HasL4Payload || len(x.Payload) == 0 {
		t.Fatalf("L7 case without a TCP or UDP payload")
	}
	p := x.Payload
	switch c.L7 {
	case flow.L7DNS:
		if x.Key.Proto == flow.ProtoTCP {
			p = p[2:]
		}
		var d layers.DNS
		if err := d.DecodeFromBytes(p, gopacket.NilDecodeFeedback); err != nil || len(d.Questions) != 1 {
			t.Errorf("gopacket does not decode the payload as DNS: %v", err)
		}
	case flow.L7TLS:
		var tl layers.TLS
		// The first segment of a long ClientHello holds only part of the
		// record, which gopacket refuses; its header is checked instead.
		if err := tl.DecodeFromBytes(p, gopacket.NilDecodeFeedback); err != nil && len(p) < 1400 {
			t.Errorf("gopacket does not decode the payload as TLS: %v", err)
		} else if err == nil && len(tl.Handshake) != 1 {
			t.Errorf("gopacket finds %d handshake records, want 1", len(tl.Handshake))
		}
	}
}
