package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
)

// groupedReport groups the rows of report r by the fields in by, keeps the
// top n groups (0: all) and the rest in the overflow, as a run does.
func groupedReport(t *testing.T, r Report, by string, n int) Report {
	t.Helper()
	b, err := group.Parse(by)
	if err != nil {
		t.Fatal(err)
	}
	top, hidden, hiddenRows := flow.Top(group.Rows(r.Flows, b), n, r.Duration)
	r.Flows, r.Hidden, r.HiddenFlows, r.GroupBy = top, hidden, uint64(hiddenRows), b
	return r
}

func TestWritePlainGroupedGolden(t *testing.T) {
	writeGolden(t, WritePlain, groupedReport(t, sampleReport(), "proto", 0), "group-proto.plain.golden")
	writeGolden(t, WritePlain, groupedReport(t, ownerReport(), "comm,cgroup,dir", 0), "group-owner.plain.golden")
}

func TestWriteJSONGroupedGolden(t *testing.T) {
	writeGolden(t, WriteJSON, groupedReport(t, sampleReport(), "proto", 0), "group-proto.json.golden")
	writeGolden(t, WriteJSON, groupedReport(t, sampleReport(), "src,dport,vlan,app", 3), "group-top.json.golden")
}

// TestWritePlainGroupedRows checks the grouped lines against sums worked
// out by hand from sampleReport, apart from the golden file.
func TestWritePlainGroupedRows(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePlain(&buf, groupedReport(t, sampleReport(), "proto", 0)); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		// 84623 + 2000 + 3 (the malformed row) packets.
		"bitrate: 3.41 Gbps, packets: 86626, bytes: 4258463477, proto: TCP",
		// 1000 (IPv6) + 300 (the fragment).
		"bitrate: 1.36 Mbps, packets: 1300, bytes: 1694000, proto: UDP",
		"bitrate: 4.00 Kbps, packets: 50, bytes: 5000, proto: 99",
		"bitrate: 944.00 bps, packets: 10, bytes: 1180, proto: IPv6-ICMP",
		"bitrate: 784.00 bps, packets: 10, bytes: 980, proto: ICMPv4",
		"bitrate: 160.00 bps, packets: 1, bytes: 200, proto: IPv6-Opts",
		"bitrate: 134.40 bps, packets: 4, bytes: 168, proto: ARP",
		"bitrate: 96.00 bps, packets: 2, bytes: 120, proto: 0x88b5",
		"bitrate: 560.00 bps, packets: 7, bytes: 700, overflow: about 3 flows not tracked individually (flow table full; raise --max-entries)",
		"summary: packets: 88010, bytes: 4260165825, rows: 8, groups beyond --top: 0, flows not tracked (flow table full): about 3, grouped by: proto",
		"",
	}, "\n")
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	// The totals are those of the ungrouped report.
	r, g := sampleReport(), groupedReport(t, sampleReport(), "proto", 0)
	if r.Totals() != g.Totals() {
		t.Errorf("grouped totals %+v, ungrouped %+v", g.Totals(), r.Totals())
	}
}

// TestWriteJSONGroupedTop checks that --top applies to groups: the groups
// beyond it go to the overflow row with the untracked traffic, and a
// grouped row has the fields of the grouping and no others.
func TestWriteJSONGroupedTop(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, groupedReport(t, sampleReport(), "proto", 2)); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want the top 2 groups and the overflow: %s", len(rows), buf.String())
	}
	for i, want := range []map[string]any{
		{"proto": "TCP", "packets": 86626.0, "bytes": 4258463477.0, "bitrate": 4258463477 * 8 / 10.0},
		{"proto": "UDP", "packets": 1300.0, "bytes": 1694000.0, "bitrate": 1694000 * 8 / 10.0},
		// 7 untracked packets, 700 bytes, and the 6 other groups: 77 packets, 7648 bytes.
		{"overflow": true, "packets": 84.0, "bytes": 8348.0, "bitrate": 8348 * 8 / 10.0, "untrackedFlows": 3.0, "hiddenFlows": 6.0},
	} {
		if len(rows[i]) != len(want) {
			t.Errorf("row %d has fields %v, want %v", i, rows[i], want)
		}
		for k, v := range want {
			if rows[i][k] != v {
				t.Errorf("row %d: %s = %v, want %v", i, k, rows[i][k], v)
			}
		}
	}
}

// TestWriteNDJSONGrouped: the object names the grouping, its rows are
// grouped, and the totals match the ungrouped report's.
func TestWriteNDJSONGrouped(t *testing.T) {
	r := groupedReport(t, ownerReport(), "cgroup", 0)
	r.End = time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	var buf bytes.Buffer
	if err := WriteNDJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var got struct {
		GroupBy []string `json:"groupBy"`
		Totals  struct{ Packets, Bytes uint64 }
		Rows    []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.GroupBy, ",") != "cgroup" || got.Totals.Packets != 217 || got.Totals.Bytes != 211_808 {
		t.Errorf("groupBy %v, totals %+v; want cgroup, 217 packets, 211808 bytes", got.GroupBy, got.Totals)
	}
	want := map[string][2]float64{
		"/sys/fs/cgroup/system.slice/nginx.service": {140 + 71 + 2 + 2, 207_580 + 3_692 + 200 + 200},
		"/sys/fs/cgroup/unified":                    {1, 52},
		"":                                          {1, 84}, // ping's cgroup is not known
	}
	if len(got.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %s", len(got.Rows), len(want), buf.String())
	}
	for _, row := range got.Rows {
		w, ok := want[row["cgroup"].(string)]
		if !ok || row["packets"] != w[0] || row["bytes"] != w[1] || len(row) != 4 {
			t.Errorf("row %v, want cgroup, packets %v, bytes %v and bitrate only", row, w[0], w[1])
		}
	}
	// Ungrouped, no groupBy field.
	buf.Reset()
	if err := WriteNDJSON(&buf, ownerReport()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "groupBy") {
		t.Errorf("an ungrouped object has groupBy: %s", buf.String())
	}
}

// TestHostileNamesGrouped: grouped rows show names as ungrouped rows do,
// quoted in plain text and escaped in JSON, and give them back.
func TestHostileNamesGrouped(t *testing.T) {
	for _, c := range []struct{ comm, cg string }{
		{"x, cgroup: /a", "/sys/fs/cgroup/ev\x1b[31mRED\x1b[0m\x1b]0;pwned\a\rFAKE"},
		{"a\u0085b\u009b2J", "/x\u202eslice"},
	} {
		r := groupedReport(t, hostileReport(c.comm, c.cg, "pa0"), "comm,cgroup", 0)
		var plain, js bytes.Buffer
		if err := WritePlain(&plain, r); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(&js, r); err != nil {
			t.Fatal(err)
		}
		for _, doc := range []string{plain.String(), js.String()} {
			if h := rawHostile(doc); h >= 0 {
				t.Errorf("report holds a raw %U:\n%q", h, doc)
			}
		}
		line := strings.SplitN(plain.String(), "\n", 2)[0]
		if comm, cg := plainOwner(t, line); comm != c.comm || cg != c.cg {
			t.Errorf("comm %q and cgroup %q, want %q and %q, in %q", comm, cg, c.comm, c.cg, line)
		}
		var rows []map[string]any
		if err := json.Unmarshal(js.Bytes(), &rows); err != nil {
			t.Fatal(err)
		}
		if rows[0]["comm"] != c.comm || rows[0]["cgroup"] != c.cg {
			t.Errorf("JSON row %v, want comm %q and cgroup %q", rows[0], c.comm, c.cg)
		}
	}
}
