package flow

import (
	"net/netip"
	"testing"
)

func TestL7Names(t *testing.T) {
	want := map[L7]string{L7Unchecked: "", L7Unknown: "", L7HTTP: "HTTP", L7HTTP2: "HTTP2", L7TLS: "TLS",
		L7DTLS: "DTLS", L7QUIC: "QUIC", L7SSH: "SSH", L7RDP: "RDP", L7Postgres: "PostgreSQL", L7MQTT: "MQTT",
		L7WireGuard: "WireGuard", L7Memcached: "memcached", L7DNS: "DNS", 14: "", 255: ""}
	for l, name := range want {
		if got := l.String(); got != name {
			t.Errorf("L7(%d).String() = %q, want %q", l, got, name)
		}
		if l.Known() != (name != "") {
			t.Errorf("L7(%d).Known() = %v", l, l.Known())
		}
	}
	if n := len(L7s()); n != 12 {
		t.Errorf("L7s has %d protocols, want 12", n)
	}
}

func TestMergeL7(t *testing.T) {
	for _, tc := range []struct{ a, b, want L7 }{
		{L7Unchecked, L7Unchecked, L7Unchecked},
		{L7Unchecked, L7Unknown, L7Unknown},
		{L7Unknown, L7TLS, L7TLS},
		{L7TLS, L7Unknown, L7TLS},
		{L7TLS, L7Unchecked, L7TLS},
		{L7TLS, L7HTTP, L7TLS}, // the first one found stays
	} {
		if got := MergeL7(tc.a, tc.b); got != tc.want {
			t.Errorf("MergeL7(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestShareL7(t *testing.T) {
	a, b, c := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	pg := Flow{Key: tcp4(a, b, 40000, 5432), L7: L7Postgres}
	reply := Flow{Key: tcp4(b, a, 5432, 40000), L7: L7Unknown}
	reply.Dir = Out // any direction: a router sees both ways on one side
	other := Flow{Key: tcp4(b, c, 5432, 40000), L7: L7Unknown}
	labeled := Flow{Key: tcp4(b, a, 443, 40001), L7: L7TLS}
	tlsOut := Flow{Key: tcp4(a, b, 40001, 443), L7: L7HTTP} // has its own: kept
	udp := Flow{Key: Key{EtherType: EtherTypeIPv4, Proto: ProtoUDP, Src: b, Dst: a, SrcPort: 5432, DstPort: 40000}}
	frag := reply
	frag.Flags = Fragment
	rows := []Flow{pg, reply, other, labeled, tlsOut, udp, frag}
	ShareL7(rows)
	want := []L7{L7Postgres, L7Postgres, L7Unknown, L7TLS, L7HTTP, L7Unchecked, L7Unknown}
	for i, r := range rows {
		if r.L7 != want[i] {
			t.Errorf("row %d (%v:%d -> %v:%d %s): L7 %v, want %v", i, r.Src, r.SrcPort, r.Dst, r.DstPort, r.ProtoName(), r.L7, want[i])
		}
	}
}

func TestProtoFields(t *testing.T) {
	ip4 := func(p uint8, s, d uint16) Key {
		return Key{EtherType: EtherTypeIPv4, Proto: p, Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: s, DstPort: d}
	}
	if spi, ok := ip4(ProtoESP, 0x0102, 0x0304).SPI(); !ok || spi != 0x01020304 {
		t.Errorf("ESP SPI = %#x, %v", spi, ok)
	}
	if spi, ok := ip4(ProtoAH, 0xffff, 0xfffe).SPI(); !ok || spi != 0xfffffffe {
		t.Errorf("AH SPI = %#x, %v", spi, ok)
	}
	bad := ip4(ProtoESP, 1, 2)
	bad.Flags = Malformed
	if _, ok := bad.SPI(); ok {
		t.Error("a malformed ESP row has an SPI")
	}
	if in, fl, ok := ip4(ProtoGRE, 0x86DD, 0x3000).GRE(); !ok || in != 0x86DD || fl != 0x3000 {
		t.Errorf("GRE = %#x %#x %v", in, fl, ok)
	}
	if typ, v, ok := ip4(ProtoOSPF, 4, 2).OSPF(); !ok || typ != 4 || v != 2 {
		t.Errorf("OSPF = %d %d %v", typ, v, ok)
	}
	if typ, ok := ip4(ProtoIGMP, 0x16, 0).IGMPType(); !ok || typ != 0x16 {
		t.Errorf("IGMP = %#x %v", typ, ok)
	}
	if _, ok := ip4(ProtoTCP, 1, 2).SPI(); ok {
		t.Error("TCP has an SPI")
	}
	arp := Key{EtherType: EtherTypeARP, Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: 2}
	if op, ok := arp.ARPOp(); !ok || op != 2 || ARPOpName(op) != "reply" {
		t.Errorf("ARP op = %d %v", op, ok)
	}
	noARP := Key{EtherType: EtherTypeARP, Src: netip.IPv4Unspecified(), Dst: netip.IPv4Unspecified()}
	if _, ok := noARP.ARPOp(); ok {
		t.Error("the --no-arp row has an opcode")
	}
	for v, name := range map[string]string{GREInnerName(0x6558): "TransEth", GREInnerName(0x1234): "0x1234",
		OSPFTypeName(1): "Hello", OSPFTypeName(5): "LSAck", OSPFTypeName(9): "9",
		IGMPTypeName(0x11): "query", IGMPTypeName(0x22): "v3-report", IGMPTypeName(7): "7",
		ARPOpName(1): "request", ARPOpName(9): "9"} {
		if v != name {
			t.Errorf("name %q, want %q", v, name)
		}
	}
}
