package report

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// protoReport has one row per protocol with fields of its own, and rows
// with application protocols. Counters differ so that the order is fixed.
func protoReport() Report {
	espFrag := ip4(flow.ProtoESP, "198.18.0.9", "198.18.0.10", 0, 0)
	espFrag.Flags = flow.Fragment
	arpBad := flow.Key{EtherType: flow.EtherTypeARP, Src: netip.IPv4Unspecified(), Dst: netip.IPv4Unspecified(), Flags: flow.Malformed}
	rows := []flow.Flow{
		{Key: ip4(flow.ProtoTCP, "198.18.0.1", "198.18.0.2", 41000, 443), Counters: flow.Counters{Packets: 1400, Bytes: 1_400_000}, L7: flow.L7TLS},
		{Key: ip6(flow.ProtoUDP, "2001:2::1", "2001:2::2", 50000, 8443), Counters: flow.Counters{Packets: 1300, Bytes: 1_300_000}, L7: flow.L7QUIC},
		{Key: ip4(flow.ProtoESP, "198.18.0.1", "198.18.0.2", 0x0001, 0x0203), Counters: flow.Counters{Packets: 1200, Bytes: 1_200_000}},
		{Key: ip4(flow.ProtoAH, "198.18.0.3", "198.18.0.4", 0xdead, 0xbeef), Counters: flow.Counters{Packets: 1100, Bytes: 1_100_000}},
		{Key: ip4(flow.ProtoGRE, "198.18.0.5", "198.18.0.6", 0x0800, 0x2000), Counters: flow.Counters{Packets: 1000, Bytes: 1_000_000}},
		{Key: ip6(flow.ProtoGRE, "2001:2::5", "2001:2::6", 0x1234, 0x0001), Counters: flow.Counters{Packets: 900, Bytes: 900_000}},
		{Key: ip4(flow.ProtoOSPF, "198.18.0.7", "224.0.0.5", 1, 2), Counters: flow.Counters{Packets: 800, Bytes: 800_000}},
		{Key: ip6(flow.ProtoOSPF, "2001:2::7", "2001:2::8", 9, 3), Counters: flow.Counters{Packets: 700, Bytes: 700_000}},
		{Key: ip4(flow.ProtoIGMP, "198.18.0.8", "224.0.0.22", 0x22, 0), Counters: flow.Counters{Packets: 600, Bytes: 600_000}},
		{Key: flow.Key{EtherType: flow.EtherTypeARP, Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: 1, VLAN: 7},
			Counters: flow.Counters{Packets: 500, Bytes: 500_000}},
		// --no-arp: every ARP frame in one row, without opcode or addresses.
		{Key: flow.Key{EtherType: flow.EtherTypeARP, Src: netip.IPv4Unspecified(), Dst: netip.IPv4Unspecified()}, Counters: flow.Counters{Packets: 400, Bytes: 400_000}},
		{Key: arpBad, Counters: flow.Counters{Packets: 300, Bytes: 300_000}},
		{Key: espFrag, Counters: flow.Counters{Packets: 200, Bytes: 200_000}},
		{Key: ip4(flow.ProtoUDP, "198.18.0.2", "198.18.0.1", 53, 40000), Counters: flow.Counters{Packets: 100, Bytes: 100_000}, L7: flow.L7DNS},
		// Checked, nothing found: no l7 field.
		{Key: ip4(flow.ProtoUDP, "198.18.0.2", "198.18.0.1", 9999, 40001), Counters: flow.Counters{Packets: 50, Bytes: 50_000}, L7: flow.L7Unknown},
	}
	d := 10 * time.Second
	return Report{Flows: flow.RankRows(rows, d), Duration: d}
}

func TestWritePlainProtoRows(t *testing.T) {
	buf := writeGolden(t, WritePlain, protoReport(), "proto.plain.golden")
	lines := strings.Split(buf.String(), "\n")
	tails := []string{
		"proto: TCP, l7: TLS, src: 198.18.0.1:41000, dst: 198.18.0.2:443",
		"proto: UDP, l7: QUIC, src: [2001:2::1]:50000, dst: [2001:2::2]:8443",
		"proto: IPSEC-ESP, src: 198.18.0.1, dst: 198.18.0.2, spi: 0x10203",
		"proto: IPSEC-AH, src: 198.18.0.3, dst: 198.18.0.4, spi: 0xdeadbeef",
		"proto: GRE, src: 198.18.0.5, dst: 198.18.0.6, inner: IPv4, flags: 0x2000",
		"proto: GRE, src: 2001:2::5, dst: 2001:2::6, inner: 0x1234, flags: 0x0001",
		"proto: OSPFIGP, src: 198.18.0.7, dst: 224.0.0.5, type: Hello, v2",
		"proto: OSPFIGP, src: 2001:2::7, dst: 2001:2::8, type: 9, v3",
		"proto: IGMP, src: 198.18.0.8, dst: 224.0.0.22, type: v3-report",
		"proto: ARP, src: 198.18.0.1, dst: 198.18.0.2, op: request, vlan: 7",
		"proto: ARP",
		"proto: ARP, malformed",
		"proto: IPSEC-ESP, src: 198.18.0.9:0, dst: 198.18.0.10:0, fragment",
		"proto: UDP, l7: DNS, src: 198.18.0.2:53, dst: 198.18.0.1:40000",
		"proto: UDP, src: 198.18.0.2:9999, dst: 198.18.0.1:40001",
	}
	for i, tail := range tails {
		if !strings.HasSuffix(lines[i], ", "+tail) {
			t.Errorf("line %d:\n got %s\nwant it to end with %s", i+1, lines[i], tail)
		}
	}
}

func TestWriteJSONProtoFields(t *testing.T) {
	r := protoReport()
	buf := writeGolden(t, WriteJSON, r, "proto.json.golden")
	var rows []map[string]any
	dec := json.NewDecoder(buf)
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		t.Fatal(err)
	}
	// Each row's fields beyond the ones every row has, as pktstat-bpf
	// names them; srcPort and dstPort keep the raw key fields, as there.
	want := []map[string]string{
		{"appProto": "TLS", "srcPort": "41000", "dstPort": "443"},
		{"appProto": "QUIC", "srcIp": "2001:2::1"},
		{"spi": "66051", "srcPort": "1", "dstPort": "515"},
		{"spi": "3735928559", "srcPort": "57005", "dstPort": "48879"},
		{"greInner": "IPv4", "greFlags": "8192", "srcPort": "2048", "dstPort": "8192"},
		{"greInner": "0x1234", "greFlags": "1"},
		{"ospfType": "Hello", "ospfVersion": "2", "srcPort": "1", "dstPort": "2"},
		{"ospfType": "9", "ospfVersion": "3"},
		{"igmpType": "v3-report", "srcPort": "34", "dstPort": "0"},
		{"arpOp": "request", "srcIp": "198.18.0.1", "dstIp": "198.18.0.2", "srcPort": "1", "vlan": "7"},
		{"arpOp": "<nil>", "srcIp": "", "dstIp": ""},
		{"arpOp": "<nil>", "malformed": "true", "srcIp": ""},
		{"spi": "<nil>", "fragment": "true", "srcPort": "0"},
		{"appProto": "DNS"},
		{"appProto": "<nil>"},
	}
	for i, fields := range want {
		for f, v := range fields {
			if got := fmt.Sprint(rows[i][f]); got != v {
				t.Errorf("row %d (%v): %s = %s, want %s", i, rows[i]["proto"], f, got, v)
			}
		}
	}
}
