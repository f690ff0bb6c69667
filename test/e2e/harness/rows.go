package harness

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Row is one row of the JSON report, as the tests decode it: every field
// that internal/report's encoder writes, under the same names (rows_test.go
// keeps the two in step). Fields the encoder leaves out are zero. It is a
// type of its own, not report's, so that the tests read the output as a
// consumer would, without the encoder's omitempty rules.
type Row struct {
	SrcIP    string  `json:"srcIp"`
	DstIP    string  `json:"dstIp"`
	Proto    string  `json:"proto"`
	Bytes    uint64  `json:"bytes"`
	Packets  uint64  `json:"packets"`
	Bitrate  float64 `json:"bitrate"`
	SrcPort  uint16  `json:"srcPort"`
	DstPort  uint16  `json:"dstPort"`
	AppProto string  `json:"appProto"`
	// The owner, in cgroup and process modes.
	PID    uint32 `json:"pid"`
	Comm   string `json:"comm"`
	Cgroup string `json:"cgroup"`
	// Protocols' own fields.
	SPI         *uint32 `json:"spi"`
	GREInner    string  `json:"greInner"`
	GREFlags    *uint16 `json:"greFlags"`
	ARPOp       string  `json:"arpOp"`
	OSPFType    string  `json:"ospfType"`
	OSPFVersion uint8   `json:"ospfVersion"`
	IGMPType    string  `json:"igmpType"`
	VLAN        uint16  `json:"vlan"`
	Fragment    bool    `json:"fragment"`
	DeepChain   bool    `json:"deepChain"`
	Malformed   bool    `json:"malformed"`
	Estimated   bool    `json:"estimated"` // --read: a GRO super-packet counted as one
	Dir         string  `json:"dir"`
	Iface       string  `json:"iface"` // when the run watches several interfaces
	Overflow    bool    `json:"overflow"`
	// On the overflow row: estimated flows without a row, and rows left
	// out by --top.
	UntrackedFlows uint64 `json:"untrackedFlows"`
	HiddenFlows    uint64 `json:"hiddenFlows"`
}

// Interval is one line of the NDJSON stream of --interval -j.
type Interval struct {
	Time     time.Time `json:"time"`
	Interval float64   `json:"interval"`
	Totals   struct {
		Packets uint64 `json:"packets"`
		Bytes   uint64 `json:"bytes"`
	} `json:"totals"`
	Overflow struct {
		Packets        uint64 `json:"packets"`
		Bytes          uint64 `json:"bytes"`
		UntrackedFlows uint64 `json:"untrackedFlows"`
		HiddenFlows    uint64 `json:"hiddenFlows"`
	} `json:"overflow"`
	Iface *struct {
		Name      string `json:"name"`
		RxPackets uint64 `json:"rxPackets"`
		TxPackets uint64 `json:"txPackets"`
		RxDropped uint64 `json:"rxDropped"`
		TxDropped uint64 `json:"txDropped"`
	} `json:"iface"`
	// Ifaces replaces Iface when the run watches several interfaces.
	Ifaces []IfaceCounters `json:"ifaces"`
	Rows   []Row           `json:"rows"`
}

// IfaceCounters are one interface's own counters in an NDJSON line.
type IfaceCounters struct {
	Name      string `json:"name"`
	RxPackets uint64 `json:"rxPackets"`
	TxPackets uint64 `json:"txPackets"`
	RxDropped uint64 `json:"rxDropped"`
	TxDropped uint64 `json:"txDropped"`
}

// ParseIntervals decodes an NDJSON stream, one Interval a line.
func ParseIntervals(out string) ([]Interval, error) {
	var ivs []Interval
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var iv Interval
		if err := dec.Decode(&iv); err != nil {
			return nil, fmt.Errorf("decode NDJSON line %d of %q: %w", len(ivs)+1, out, err)
		}
		ivs = append(ivs, iv)
	}
	return ivs, nil
}

// ParseRows decodes a JSON report.
func ParseRows(out string) ([]Row, error) {
	var rows []Row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, fmt.Errorf("decode JSON report %q: %w", out, err)
	}
	return rows, nil
}

// Report parses the JSON report the tool wrote to stdout, and fails the
// test if it is not one.
func Report(t *testing.T, tl *Tool) []Row {
	t.Helper()
	rows, err := ParseRows(tl.Stdout())
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, tl.Stderr())
	}
	return rows
}

// Find returns the rows that match proto, source and destination (ports
// are ignored when zero).
func Find(rows []Row, proto, src, dst string, sport, dport uint16) []Row {
	var out []Row
	for _, r := range rows {
		if r.Proto == proto && r.SrcIP == src && r.DstIP == dst &&
			(sport == 0 || r.SrcPort == sport) && (dport == 0 || r.DstPort == dport) {
			out = append(out, r)
		}
	}
	return out
}

// OneRow returns the single row with exactly these fields (ports included,
// even when zero: ICMP echo reply is type 0 code 0).
func OneRow(t *testing.T, rows []Row, proto string, src, dst netip.Addr, sport, dport uint16) Row {
	t.Helper()
	var found []Row
	for _, r := range rows {
		if r.Proto == proto && r.SrcIP == src.String() && r.DstIP == dst.String() && r.SrcPort == sport && r.DstPort == dport {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d rows for %s %s:%d -> %s:%d, want 1; report:\n%s", len(found), proto, src, sport, dst, dport, DumpRows(rows))
	}
	return found[0]
}

// DumpRows lists rows, one a line, for a failure message.
func DumpRows(rows []Row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %+v\n", r)
	}
	return b.String()
}

// WantCounts fails unless row counted exactly packets and bytes.
func WantCounts(t *testing.T, what string, row Row, packets, bytes uint64) {
	t.Helper()
	if row.Packets != packets || row.Bytes != bytes {
		t.Errorf("%s: report has %d packets / %d bytes, ground truth %d packets / %d bytes", what, row.Packets, row.Bytes, packets, bytes)
		return
	}
	t.Logf("%s: %d packets / %d bytes, equal to ground truth", what, row.Packets, row.Bytes)
}

// WantBitrates checks the report's order and every row's bitrate against
// its bytes and the run's capture time, which the tool's start, ready line,
// signal and exit bound: a row's bitrate must lie between its bits over
// the longest possible capture time and its bits over the shortest.
func WantBitrates(t *testing.T, tl *Tool, rows []Row) {
	t.Helper()
	lo, hi, err := tl.RunBounds()
	if err != nil {
		t.Fatal(err)
	}
	const eps = 1e-9 // the report's bitrate went through a float and JSON
	for i, r := range rows {
		bits := float64(r.Bytes) * 8
		if min, max := bits/hi.Seconds(), bits/lo.Seconds(); r.Bitrate < min*(1-eps) || r.Bitrate > max*(1+eps) {
			t.Errorf("row %+v: bitrate %.1f, want between %.1f and %.1f (%d bytes over %s to %s)", r, r.Bitrate, min, max, r.Bytes, lo, hi)
		}
		if i > 0 && r.Bitrate > rows[i-1].Bitrate {
			t.Errorf("rows %d and %d are not sorted by bitrate: %.1f before %.1f", i-1, i, rows[i-1].Bitrate, r.Bitrate)
		}
	}
	t.Logf("%d rows sorted by bitrate, each within its bytes over a capture time of %s to %s", len(rows), lo, hi)
}
