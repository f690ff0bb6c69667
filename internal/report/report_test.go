package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

var (
	a1 = netip.MustParseAddr("198.18.0.1")
	a2 = netip.MustParseAddr("198.18.0.2")
)

// ip4 and ip6 are the keys of an IPv4 and an IPv6 flow.
func ip4(proto uint8, src, dst string, sport, dport uint16) flow.Key {
	return ipKey(flow.EtherTypeIPv4, proto, src, dst, sport, dport)
}

func ip6(proto uint8, src, dst string, sport, dport uint16) flow.Key {
	return ipKey(flow.EtherTypeIPv6, proto, src, dst, sport, dport)
}

func ipKey(etherType uint16, proto uint8, src, dst string, sport, dport uint16) flow.Key {
	return flow.Key{EtherType: etherType, Proto: proto, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport}
}

// sampleReport has one row of every kind a report renders differently.
func sampleReport() Report {
	vlan := ip4(flow.ProtoTCP, "198.18.1.1", "198.18.1.2", 80, 40000)
	vlan.VLAN = 100
	// A non-first fragment: whatever sits in the port fields is not a port
	// and must not be printed.
	frag := ip4(flow.ProtoUDP, "198.18.0.3", "198.18.0.4", 0x4500, 0x05dc)
	frag.Flags = flow.Fragment
	// A TCP header cut short: addresses known, ports not.
	bad := ip4(flow.ProtoTCP, "198.18.0.7", "198.18.0.8", 0, 0)
	bad.Flags = flow.Malformed
	deep := ip6(60, "2001:2::1", "2001:2::2", 0, 0)
	deep.Flags = flow.DeepChain

	table := map[flow.Key]flow.Counters{
		ip4(flow.ProtoTCP, "198.18.0.1", "198.18.0.2", 41686, 5201): {Packets: 84623, Bytes: 4255963315},
		vlan: {Packets: 2000, Bytes: 2_500_000},
		ip6(flow.ProtoUDP, "2001:2::1", "2001:2::2", 443, 51000): {Packets: 1000, Bytes: 1_250_000},
		frag: {Packets: 300, Bytes: 444_000},
		ip4(99, "198.18.0.5", "198.18.0.6", 0, 0):               {Packets: 50, Bytes: 5000},
		ip6(flow.ProtoICMPv6, "2001:2::2", "2001:2::1", 129, 0): {Packets: 10, Bytes: 1180},
		ip4(flow.ProtoICMP, "198.18.0.1", "198.18.0.2", 8, 0):   {Packets: 10, Bytes: 980},
		deep:                {Packets: 1, Bytes: 200},
		{EtherType: 0x0806}: {Packets: 4, Bytes: 168},
		bad:                 {Packets: 3, Bytes: 162},
		{EtherType: 0x88b5}: {Packets: 2, Bytes: 120},
	}
	d := 10 * time.Second
	return Report{
		Flows:     flow.Rank(table, d),
		Duration:  d,
		Untracked: flow.Counters{Packets: 7, Bytes: 700},
		// Distinct flows behind the overflow row, as the kernel's sketch estimates them.
		UntrackedFlows: 3,
	}
}

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./internal/report/ -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update if the change is intended)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestWritePlainGolden(t *testing.T) {
	writeGolden(t, WritePlain, sampleReport(), "report.plain.golden")
}

func TestWriteJSONGolden(t *testing.T) {
	writeGolden(t, WriteJSON, sampleReport(), "report.json.golden")
}

// TestWritePlainPktstatLine renders the example row of pktstat-bpf's
// documentation from its counters and checks it character for character.
func TestWritePlainPktstatLine(t *testing.T) {
	k := flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoTCP, Src: a1, Dst: a2, SrcPort: 41686, DstPort: 5201}
	d := 5006 * time.Millisecond // 4255963315 B * 8 / 5.006 s = 6.8014 Gbps
	r := Report{Flows: flow.Rank(map[flow.Key]flow.Counters{k: {Packets: 84623, Bytes: 4255963315}}, d), Duration: d}
	var buf bytes.Buffer
	if err := WritePlain(&buf, r); err != nil {
		t.Fatal(err)
	}
	const want = "bitrate: 6.80 Gbps, packets: 84623, bytes: 4255963315, proto: TCP, src: 198.18.0.1:41686, dst: 198.18.0.2:5201\n"
	if got, _, _ := strings.Cut(buf.String(), "summary: "); got != want {
		t.Errorf("WritePlain =\n%q\nwant\n%q", got, want)
	}
}

// TestWritePlainRows checks each row kind's line independently of the
// golden file, so a careless -update cannot hide a wrong tail.
func TestWritePlainRows(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePlain(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{
		"bitrate: 3.40 Gbps, packets: 84623, bytes: 4255963315, proto: TCP, src: 198.18.0.1:41686, dst: 198.18.0.2:5201",
		"bitrate: 2.00 Mbps, packets: 2000, bytes: 2500000, proto: TCP, src: 198.18.1.1:80, dst: 198.18.1.2:40000, vlan: 100",
		"bitrate: 1.00 Mbps, packets: 1000, bytes: 1250000, proto: UDP, src: [2001:2::1]:443, dst: [2001:2::2]:51000",
		"bitrate: 355.20 Kbps, packets: 300, bytes: 444000, proto: UDP, src: 198.18.0.3:0, dst: 198.18.0.4:0, fragment",
		"bitrate: 4.00 Kbps, packets: 50, bytes: 5000, proto: 99, src: 198.18.0.5:0, dst: 198.18.0.6:0",
		"bitrate: 944.00 bps, packets: 10, bytes: 1180, proto: IPv6-ICMP, src: 2001:2::2, dst: 2001:2::1, type: 129, code: 0",
		"bitrate: 784.00 bps, packets: 10, bytes: 980, proto: ICMPv4, src: 198.18.0.1, dst: 198.18.0.2, type: 8, code: 0",
		"bitrate: 160.00 bps, packets: 1, bytes: 200, proto: IPv6-Opts, src: [2001:2::1]:0, dst: [2001:2::2]:0, deep extension chain",
		"bitrate: 134.40 bps, packets: 4, bytes: 168, proto: ARP",
		"bitrate: 129.60 bps, packets: 3, bytes: 162, proto: TCP, src: 198.18.0.7:0, dst: 198.18.0.8:0, malformed",
		"bitrate: 96.00 bps, packets: 2, bytes: 120, proto: 0x88b5",
		"bitrate: 560.00 bps, packets: 7, bytes: 700, overflow: about 3 flows not tracked individually (flow table full; raise --max-entries)",
		// 84623+2000+1000+300+50+10+10+1+4+3+2 rows + 7 overflow packets.
		"summary: packets: 88010, bytes: 4260165825, rows: 11, flows beyond --top: 0, flows not tracked (flow table full): about 3",
	}
	if len(lines) != len(want) {
		t.Fatalf("WritePlain wrote %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], want[i])
		}
	}
	// Every line but the summary opens the way pktstat-bpf's lines open.
	head := regexp.MustCompile(`^bitrate: \d+\.\d\d (bps|Kbps|Mbps|Gbps|Tbps), packets: \d+, bytes: \d+, `)
	for i, l := range lines[:len(lines)-1] {
		if !head.MatchString(l) {
			t.Errorf("line %d does not start like a pktstat-bpf line: %s", i+1, l)
		}
	}
}

func TestWritePlainEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePlain(&buf, Report{Duration: time.Second}); err != nil {
		t.Fatal(err)
	}
	const wantEmpty = "summary: packets: 0, bytes: 0, rows: 0, flows beyond --top: 0, flows not tracked (flow table full): about 0\n"
	if buf.String() != wantEmpty {
		t.Errorf("empty report wrote %q, want only the summary %q", buf.String(), wantEmpty)
	}
	buf.Reset()
	if err := WritePlain(&buf, Report{Duration: time.Second, Untracked: flow.Counters{Packets: 1, Bytes: 125}, UntrackedFlows: 1}); err != nil {
		t.Fatal(err)
	}
	const want = "bitrate: 1.00 Kbps, packets: 1, bytes: 125, overflow: about 1 flows not tracked individually (flow table full; raise --max-entries)\n" +
		"summary: packets: 1, bytes: 125, rows: 0, flows beyond --top: 0, flows not tracked (flow table full): about 1\n"
	if buf.String() != want {
		t.Errorf("overflow-only report = %q, want %q", buf.String(), want)
	}
}

func TestWriteJSONFields(t *testing.T) {
	var buf bytes.Buffer
	r := sampleReport()
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	var rows []map[string]any
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("report is not a JSON array of objects: %v", err)
	}
	if dec.More() {
		t.Error("more than one JSON value in the report")
	}
	if len(rows) != len(r.Flows)+1 {
		t.Fatalf("got %d rows, want %d flows + 1 overflow row", len(rows), len(r.Flows))
	}
	always := []string{"srcIp", "dstIp", "proto", "bytes", "packets", "bitrate", "srcPort", "dstPort"}
	optional := map[string]bool{"vlan": true, "fragment": true, "deepChain": true, "malformed": true, "overflow": true, "dir": true, "untrackedFlows": true}
	for i, row := range rows {
		for _, f := range always {
			if _, ok := row[f]; !ok {
				t.Errorf("row %d has no %q field: %v", i, f, row)
			}
		}
		for f := range row {
			if !optional[f] && !slices.Contains(always, f) {
				t.Errorf("row %d has unexpected field %q", i, f)
			}
		}
		if _, ok := row["overflow"]; ok != (i == len(rows)-1) {
			t.Errorf("row %d: overflow field present = %v, want it only on the last row", i, ok)
		}
		if d, ok := row["dir"]; i < len(rows)-1 && (!ok || d != r.Flows[i].Dir.String()) {
			t.Errorf("row %d: dir = %v, want %q", i, d, r.Flows[i].Dir)
		}
	}

	// Row values against the counters they came from.
	str := func(v any) string { return fmt.Sprint(v) }
	tcp := rows[0]
	for f, want := range map[string]string{
		"srcIp": "198.18.0.1", "dstIp": "198.18.0.2", "proto": "TCP", "bytes": "4255963315",
		"packets": "84623", "bitrate": "3404770652", "srcPort": "41686", "dstPort": "5201",
	} {
		if got := str(tcp[f]); got != want {
			t.Errorf("TCP row %s = %s, want %s", f, got, want)
		}
	}
	udp6 := rows[2]
	if str(udp6["srcIp"]) != "2001:2::1" || str(udp6["srcPort"]) != "443" || str(udp6["proto"]) != "UDP" {
		t.Errorf("IPv6 UDP row = %v, want srcIp 2001:2::1 (no brackets), srcPort 443, proto UDP", udp6)
	}
	icmp := rows[6]
	if str(icmp["proto"]) != "ICMPv4" || str(icmp["srcPort"]) != "8" || str(icmp["dstPort"]) != "0" {
		t.Errorf("ICMPv4 row = %v, want type 8 in srcPort and code 0 in dstPort", icmp)
	}
	frag := rows[3]
	if frag["fragment"] != true || str(frag["srcPort"]) != "0" || str(frag["dstPort"]) != "0" {
		t.Errorf("fragment row = %v, want fragment: true and ports 0", frag)
	}
	if vlan := rows[1]; str(vlan["vlan"]) != "100" {
		t.Errorf("VLAN row = %v, want vlan 100", vlan)
	}
	if arp := rows[8]; str(arp["proto"]) != "ARP" || arp["srcIp"] != "" || arp["dstIp"] != "" {
		t.Errorf("ARP row = %v, want proto ARP and empty addresses", arp)
	}
	if bad := rows[9]; bad["malformed"] != true {
		t.Errorf("malformed row = %v, want malformed: true", bad)
	}
	over := rows[len(rows)-1]
	if over["overflow"] != true || str(over["packets"]) != "7" || str(over["bytes"]) != "700" || str(over["bitrate"]) != "560" || str(over["untrackedFlows"]) != "3" {
		t.Errorf("overflow row = %v, want overflow: true, 7 packets, 700 bytes, bitrate 560, untrackedFlows 3", over)
	}
}

func TestWriteJSONEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, Report{Duration: time.Second}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "[]\n" {
		t.Errorf("empty JSON report = %q, want %q", got, "[]\n")
	}
}

var errDiskFull = errors.New("disk full")

// failWriter accepts n bytes, then fails every write.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		w.n -= len(p)
		return len(p), nil
	}
	k := w.n
	w.n = 0
	return k, errDiskFull
}

func TestWritersReportWriteErrors(t *testing.T) {
	big := sampleReport()
	for i := range 200 { // well past bufio's 4096-byte buffer
		k := flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoUDP, Src: a1, Dst: a2, SrcPort: uint16(i), DstPort: 53}
		big.Flows = append(big.Flows, flow.Flow{Key: k, Counters: flow.Counters{Packets: 1, Bytes: 100}, Bitrate: 80})
	}
	empty := Report{Duration: time.Second}
	writers := map[string]func(w *failWriter, r Report) error{
		"plain": func(w *failWriter, r Report) error { return WritePlain(w, r) },
		"json":  func(w *failWriter, r Report) error { return WriteJSON(w, r) },
	}
	for name, write := range writers {
		for _, tc := range []struct {
			what string
			r    Report
			n    int
		}{
			{"fails at once", sampleReport(), 0},
			{"fails midway", sampleReport(), 100},
			{"fails after the first buffer", big, 5000},
		} {
			err := write(&failWriter{n: tc.n}, tc.r)
			if !errors.Is(err, errDiskFull) {
				t.Errorf("%s, writer %s: error = %v, want it to wrap %v", name, tc.what, err, errDiskFull)
			}
		}
	}
	// The JSON report always writes "[]": even an empty one sees the error.
	if err := WriteJSON(&failWriter{}, empty); !errors.Is(err, errDiskFull) {
		t.Errorf("WriteJSON of an empty report to a failing writer: error = %v, want %v", err, errDiskFull)
	}
}

// writeGolden writes r with write and compares the output with the golden
// file name; it returns the output for the test's own checks.
func writeGolden(t *testing.T, write func(io.Writer, Report) error, r Report, name string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf, r); err != nil {
		t.Fatal(err)
	}
	golden(t, name, buf.Bytes())
	return &buf
}
