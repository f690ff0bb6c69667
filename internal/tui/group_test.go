package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
)

// TestModelGroupBy starts grouped by protocol (--group-by proto), then
// cycles through the presets with the a key, checking each grouping's rows
// against the sums of twoFlows' flows: fast 200 packets of 142 bytes and
// slow 20 of 1242 from 198.18.0.2, sent 3 of 100 from 198.18.0.1.
func TestModelGroupBy(t *testing.T) {
	m := testModel(Options{MaxEntries: 1024, GroupBy: group.By(group.Proto)})
	m.read(time.Second, twoFlows(200, 20))
	steps := []struct {
		header string
		titles []string
		rows   []string // each row's fields, as the screen shows them
	}{
		{"flows 3 shown, table 3/1024  group proto: 1  iface pa1", []string{"bitrate▼", "pps", "packets", "bytes", "proto"},
			// 53540 bytes, 223 packets in 1 s.
			[]string{"428.32 Kbps 223.0 223 53540 UDP"}},
		{"group src: 2", []string{"source"}, []string{
			"425.92 Kbps 220.0 220 53240 198.18.0.2",
			"2.40 Kbps 3.0 3 300 198.18.0.1",
		}},
		{"group dst: 2", []string{"destination"}, []string{
			"425.92 Kbps 220.0 220 53240 198.18.0.1",
			"2.40 Kbps 3.0 3 300 198.18.0.2",
		}},
		{"group dport: 3", []string{"dport"}, []string{
			"227.20 Kbps 200.0 200 28400 9002",
			"198.72 Kbps 20.0 20 24840 9001",
			"2.40 Kbps 3.0 3 300 40001",
		}},
		// Back to flows.
		{"flows 3 shown, table 3/1024  iface pa1", []string{"proto", "source", "destination", "dir"}, []string{
			"227.20 Kbps 200.0 200 28400 UDP 198.18.0.2:40000 198.18.0.1:9002 in",
		}},
		{"group proto: 1", nil, []string{"428.32 Kbps 223.0 223 53540 UDP"}},
	}
	for i, s := range steps {
		if i > 0 {
			m.press("a")
		}
		lines := m.screen(t)
		if !strings.Contains(lines[0], s.header) {
			t.Errorf("step %d: header %q lacks %q", i, lines[0], s.header)
		}
		for _, title := range s.titles {
			if !strings.Contains(lines[2], title) {
				t.Errorf("step %d: titles %q lack %q", i, lines[2], title)
			}
		}
		for j, want := range s.rows {
			if got := strings.Join(strings.Fields(lines[3+j]), " "); got != want {
				t.Errorf("step %d row %d:\n got %q\nwant %q", i, j, got, want)
			}
		}
		if i < 4 && strings.TrimSpace(lines[3+len(s.rows)]) != "" {
			t.Errorf("step %d: a row too many: %q", i, lines[3+len(s.rows)])
		}
	}
	// The filter matches a group's fields.
	m.press("/", "udp", "enter")
	if lines := m.screen(t); rowIndex(lines, "53540") < 0 {
		t.Errorf("the filter udp hides the UDP group:\n%s", strings.Join(lines, "\n"))
	}
}

// TestGroupCycle: none, the command line's grouping, then the presets,
// each once; the owner presets only where owners are known.
func TestGroupCycle(t *testing.T) {
	names := func(c []group.By) string {
		var s []string
		for _, b := range c {
			s = append(s, "["+b.String()+"]")
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		given          string
		owners, ifaces bool
		want           string
	}{
		{"", false, false, "[] [proto] [src] [dst] [dport]"},
		{"dport", false, true, "[] [dport] [proto] [src] [dst] [iface]"},
		{"comm,dir", true, false, "[] [dir,comm] [proto] [src] [dst] [dport] [comm] [cgroup]"},
	} {
		var b group.By
		if tc.given != "" {
			var err error
			if b, err = group.Parse(tc.given); err != nil {
				t.Fatal(err)
			}
		}
		if got := names(groupCycle(b, tc.owners, tc.ifaces)); got != tc.want {
			t.Errorf("cycle from %q: %s, want %s", tc.given, got, tc.want)
		}
	}
}
