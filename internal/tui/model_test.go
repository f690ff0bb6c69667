package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
)

// fakeSource returns the snapshots it is given, the last one forever.
type fakeSource struct {
	mu    sync.Mutex
	snaps []flow.Snapshot
	err   error
	reads int
}

func (s *fakeSource) Drain() (flow.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.err != nil {
		return flow.Snapshot{}, s.err
	}
	snap := s.snaps[0]
	if len(s.snaps) > 1 {
		s.snaps = s.snaps[1:]
	}
	return snap, nil
}

var (
	fastKey = udp(ipB, ipA, 40000, 9002)
	slowKey = udp(ipB, ipA, 40001, 9001)
	sentKey = withDir(udp(ipA, ipB, 9001, 40001), flow.Out)
)

func withDir(k flow.Key, d flow.Direction) flow.Key {
	k.Dir = d
	return k
}

func testModel(o Options) *Model {
	o.Iface, o.Mode, o.Start = "pa1", "tc/tcx", t0
	if o.Refresh == 0 {
		o.Refresh = time.Second
	}
	m := NewModel(nil, o)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	return m
}

// read gives the model the reading s, written as the kernel's totals
// since the start, at d: it hands the model the drain the kernel would
// give, the growth since the model's previous reading.
func (m *Model) read(d time.Duration, s flow.Snapshot) {
	var drain flow.Snapshot
	for _, r := range s.Flows {
		c := r.Counters
		if f := m.tr.lookup(r.Key); f != nil {
			c.Packets -= f.Total.Packets
			c.Bytes -= f.Total.Bytes
		}
		if c.Packets > 0 || c.Bytes > 0 {
			drain.Flows = append(drain.Flows, flow.Flow{Key: r.Key, Counters: c, L7: r.L7})
		}
	}
	u := s.UntrackedTotal()
	drain.Untracked[flow.In] = flow.Counters{Packets: u.Packets - m.tr.Untracked.Packets, Bytes: u.Bytes - m.tr.Untracked.Bytes}
	drain.UntrackedFlows = s.UntrackedFlows
	m.Update(readingMsg{snap: drain, at: at(d)})
}

// namedKeys are the keys keyMsg knows by name.
var namedKeys = map[string]tea.KeyType{
	"down":      tea.KeyDown,
	"up":        tea.KeyUp,
	"pgdown":    tea.KeyPgDown,
	"pgup":      tea.KeyPgUp,
	"home":      tea.KeyHome,
	"end":       tea.KeyEnd,
	"esc":       tea.KeyEsc,
	"enter":     tea.KeyEnter,
	"ctrl+c":    tea.KeyCtrlC,
	"backspace": tea.KeyBackspace,
}

func keyMsg(k string) tea.KeyMsg {
	if t, ok := namedKeys[k]; ok {
		return tea.KeyMsg{Type: t}
	}
	if k == " " {
		return tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

// press sends keys, typing strings of more than one rune a rune at a time.
func (m *Model) press(keys ...string) {
	for _, k := range keys {
		if len(k) > 1 && !strings.ContainsAny(k, " ") && keyMsg(k).Type == tea.KeyRunes {
			for _, r := range k {
				m.Update(keyMsg(string(r)))
			}
			continue
		}
		m.Update(keyMsg(k))
	}
}

// screen returns the drawn lines, checking the screen's shape.
func (m *Model) screen(t *testing.T) []string {
	t.Helper()
	v := m.View()
	if strings.Contains(v, "\x1b") {
		t.Fatalf("escape sequences in a screen without a terminal: %q", v)
	}
	lines := strings.Split(v, "\n")
	if len(lines) != m.height {
		t.Fatalf("screen has %d lines, want %d:\n%s", len(lines), m.height, v)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > m.width {
			t.Fatalf("line %d is %d cells, wider than %d: %q", i, w, m.width, l)
		}
	}
	return lines
}

// rowOf is the screen line of the row from src to dst, or -1.
func rowOf(lines []string, src, dst string) int {
	for i, l := range lines {
		f := strings.Fields(l)
		for j := 0; j+1 < len(f); j++ {
			if f[j] == src && f[j+1] == dst {
				return i
			}
		}
	}
	return -1
}

// rowIndex is the screen line that shows the text, or -1.
func rowIndex(lines []string, text string) int {
	for i, l := range lines {
		if strings.Contains(l, text) {
			return i
		}
	}
	return -1
}

func twoFlows(fast, slow uint64) flow.Snapshot {
	return snap(map[flow.Key]flow.Counters{
		fastKey: {Packets: fast, Bytes: fast * 142},
		slowKey: {Packets: slow, Bytes: slow * 1242},
		sentKey: {Packets: 3, Bytes: 3 * 100},
	})
}

func TestModelScreen(t *testing.T) {
	m := testModel(Options{MaxEntries: 1024})
	lines := m.screen(t)
	if rowIndex(lines, "waiting for the first reading") < 0 {
		t.Errorf("no waiting line before the first reading:\n%s", strings.Join(lines, "\n"))
	}

	m.read(time.Second, twoFlows(200, 20))
	lines = m.screen(t)
	screen := strings.Join(lines, "\n")
	for i, want := range []string{
		"pktstat-bpf  mode tc/tcx  up 0:00:01  flows 3 shown, table 3/1024  iface pa1",
		// in: 200*142 + 20*1242 bytes and 220 packets in 1 s; out: 300 bytes, 3 packets.
		"in 425.92 Kbps 220.0 pps   out 2.40 Kbps 3.0 pps   (last 1s)",
	} {
		if lines[i] != want {
			t.Errorf("header line %d:\n got %q\nwant %q", i, lines[i], want)
		}
	}
	if !strings.HasPrefix(lines[2], "   bitrate▼   pps packets bytes proto source ") || !strings.Contains(lines[2], "destination") {
		t.Errorf("column titles: %q", lines[2])
	}
	// fast: 200*142*8 = 227.20 Kbps; slow: 20*1242*8 = 198.72 Kbps. At 80
	// columns the gap between columns is one space.
	wantRows := []string{
		"227.20 Kbps 200.0     200 28400 UDP   198.18.0.2:40000 198.18.0.1:9002  in",
		"198.72 Kbps  20.0      20 24840 UDP   198.18.0.2:40001 198.18.0.1:9001  in",
		"  2.40 Kbps   3.0       3   300 UDP   198.18.0.1:9001  198.18.0.2:40001 out",
	}
	for i, want := range wantRows {
		if got := strings.TrimRight(lines[3+i], " "); got != want {
			t.Errorf("row %d:\n got %q\nwant %q", i, got, want)
		}
	}
	if strings.TrimSpace(lines[6]) != "" || strings.TrimSpace(lines[21]) != "" {
		t.Errorf("the space below the rows is not blank:\n%s", screen)
	}
	if lines[22] != "sort bitrate ▼ · rows 1-3 of 3" {
		t.Errorf("status line %q", lines[22])
	}
	for _, k := range []string{"q quit", "0-5 sort", "r reverse", "/ filter", "space pause", "? help"} {
		if !strings.Contains(lines[23], k) {
			t.Errorf("help line %q lacks %q", lines[23], k)
		}
	}
}

// TestModelHeaderNarrow: at 80 columns, a cgroup's long path is what the
// header cuts, not the mode, the run time or the table's size.
func TestModelHeaderNarrow(t *testing.T) {
	m := NewModel(nil, Options{Iface: "all (cgroup /sys/fs/cgroup/unified/system.slice/nginx.service)", Mode: "cgroup",
		Start: t0, Refresh: time.Second, MaxEntries: 1024, Owners: true})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.read(time.Second, twoFlows(200, 20))
	head := m.screen(t)[0]
	if !strings.HasPrefix(head, "mode cgroup  up 0:00:01  flows 3 shown, table 3/1024  iface all (cgroup /sys/") {
		t.Errorf("header at 80 columns: %q", head)
	}
}

func TestModelSortKeys(t *testing.T) {
	m := testModel(Options{})
	m.read(time.Second, twoFlows(200, 20))
	order := func() string {
		lines := m.screen(t)
		f, s, o := rowOf(lines, "198.18.0.2:40000", "198.18.0.1:9002"), rowOf(lines, "198.18.0.2:40001", "198.18.0.1:9001"), rowOf(lines, "198.18.0.1:9001", "198.18.0.2:40001")
		if f < 0 || s < 0 || o < 0 {
			t.Fatalf("rows missing:\n%s", strings.Join(lines, "\n"))
		}
		names := map[int]string{f: "fast", s: "slow", o: "sent"}
		var got []string
		for i := range len(lines) {
			if n, ok := names[i]; ok {
				got = append(got, n)
			}
		}
		return strings.Join(got, " ") + " | " + lines[22]
	}
	steps := []struct {
		keys []string
		want string
	}{
		{nil, "fast slow sent | sort bitrate ▼ · rows 1-3 of 3"},
		{[]string{"1"}, "fast slow sent | sort packets ▼ · rows 1-3 of 3"},
		{[]string{"2"}, "fast slow sent | sort bytes ▼ · rows 1-3 of 3"},
		// Source: 198.18.0.1 (sent) before 198.18.0.2:40000 before :40001.
		{[]string{"3"}, "sent fast slow | sort source ▲ · rows 1-3 of 3"},
		// Destination: 198.18.0.1:9001 (slow) before :9002, then 198.18.0.2.
		{[]string{"4"}, "slow fast sent | sort destination ▲ · rows 1-3 of 3"},
		{[]string{"r"}, "sent fast slow | sort destination ▼ · rows 1-3 of 3"},
		{[]string{"r"}, "slow fast sent | sort destination ▲ · rows 1-3 of 3"},
		{[]string{"s"}, "fast slow sent | sort pps ▼ · rows 1-3 of 3"},
		{[]string{"s"}, "fast slow sent | sort bitrate ▼ · rows 1-3 of 3"},
		{[]string{"S", "S"}, "slow fast sent | sort destination ▲ · rows 1-3 of 3"},
		{[]string{"0", "r"}, "sent slow fast | sort bitrate ▲ · rows 1-3 of 3"},
	}
	for _, st := range steps {
		m.press(st.keys...)
		if got := order(); got != st.want {
			t.Errorf("after %v:\n got %s\nwant %s", st.keys, got, st.want)
		}
	}
	// Bytes and bitrate disagree once slow has sent more in total.
	m.press("0")
	m.read(2*time.Second, twoFlows(300, 40))
	m.press("2")
	if got := order(); got != "slow fast sent | sort bytes ▼ · rows 1-3 of 3" {
		t.Errorf("sort by bytes after more traffic: %s", got)
	}
}

func TestModelFilter(t *testing.T) {
	m := testModel(Options{})
	m.read(time.Second, twoFlows(200, 20))
	m.press("/", "9002")
	lines := m.screen(t)
	if rowOf(lines, "198.18.0.2:40000", "198.18.0.1:9002") < 0 || rowOf(lines, "198.18.0.2:40001", "198.18.0.1:9001") >= 0 || rowOf(lines, "198.18.0.1:9001", "198.18.0.2:40001") >= 0 {
		t.Errorf("filter 9002 while typing:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.HasPrefix(lines[22], "filter: 9002") {
		t.Errorf("filter input line: %q", lines[22])
	}
	// q and x are text while typing, not quit.
	for _, k := range []string{"q", "x"} {
		if _, cmd := m.Update(keyMsg(k)); cmd != nil && isQuit(cmd) {
			t.Errorf("%q quit while typing a filter", k)
		}
	}
	m.press("esc")
	if got := len(m.rows); got != 3 {
		t.Fatalf("esc left %d rows, want 3", got)
	}
	m.press("/", "OUT", "enter")
	lines = m.screen(t)
	if rowOf(lines, "198.18.0.1:9001", "198.18.0.2:40001") < 0 || rowOf(lines, "198.18.0.2:40000", "198.18.0.1:9002") >= 0 || lines[22] != `sort bitrate ▼ · rows 1-1 of 1 · filter "OUT"` {
		t.Errorf("filter OUT after enter:\n%s", strings.Join(lines, "\n"))
	}
	// The filter stays over new readings.
	m.read(2*time.Second, twoFlows(300, 40))
	if len(m.rows) != 1 || m.rows[0].Key != sentKey {
		t.Errorf("filter lost on a new reading: %d rows", len(m.rows))
	}
	// The editor opens on the current filter.
	m.press("/", "udp 9001", "enter")
	if len(m.rows) != 0 || m.input.Value() != "OUTudp 9001" {
		t.Errorf("filter %q: %d rows, want none", m.input.Value(), len(m.rows))
	}
	m.press("/", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "udp 9001", "enter")
	if len(m.rows) != 2 || m.input.Value() != "udp 9001" {
		t.Errorf("filter %q: %d rows, want slow and sent", m.input.Value(), len(m.rows))
	}
	m.press("esc")
	if len(m.rows) != 3 || !m.filter.Empty() {
		t.Errorf("esc outside the editor did not clear the filter: %d rows", len(m.rows))
	}
}

func isQuit(cmd tea.Cmd) bool {
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func TestModelQuitKeys(t *testing.T) {
	for _, k := range []string{"q", "x", "ctrl+c"} {
		m := testModel(Options{})
		_, cmd := m.Update(keyMsg(k))
		if cmd == nil || !isQuit(cmd) {
			t.Errorf("%s does not quit", k)
		}
	}
	m := testModel(Options{})
	m.press("/")
	if _, cmd := m.Update(keyMsg("ctrl+c")); cmd == nil || !isQuit(cmd) {
		t.Error("ctrl+c does not quit while typing a filter")
	}
}

func TestModelPause(t *testing.T) {
	m := testModel(Options{})
	m.read(time.Second, twoFlows(200, 20))
	before := m.screen(t)
	m.press(" ")
	m.read(2*time.Second, twoFlows(1200, 30))
	m.read(3*time.Second, twoFlows(2200, 40))
	during := m.screen(t)
	for i := range 22 {
		if during[i] != before[i] {
			t.Errorf("line %d changed while paused:\n was %q\n now %q", i, before[i], during[i])
		}
	}
	if !strings.HasPrefix(during[22], "PAUSED ") {
		t.Errorf("status while paused: %q", during[22])
	}
	// Sorting still works on the frozen rows.
	m.press("4")
	if l := m.screen(t); rowOf(l, "198.18.0.2:40001", "198.18.0.1:9001") > rowOf(l, "198.18.0.2:40000", "198.18.0.1:9002") {
		t.Errorf("sort by destination while paused:\n%s", strings.Join(l, "\n"))
	}
	m.press("0", " ")
	after := m.screen(t)
	// Nothing was lost: the totals are the kernel's, and the rate is the
	// last interval's (1000 packets of 142 bytes in 1 s).
	want := " 1.14 Mbps 1.00k    2200 312400 UDP   198.18.0.2:40000 198.18.0.1:9002  in"
	if got := strings.TrimRight(after[3], " "); got != want {
		t.Errorf("first row after resuming:\n got %q\nwant %q", got, want)
	}
	if !strings.Contains(after[0], "up 0:00:03") {
		t.Errorf("header after resuming: %q", after[0])
	}
}

func TestModelScroll(t *testing.T) {
	m := testModel(Options{})
	flows := map[flow.Key]flow.Counters{}
	for i := range 100 {
		// Flow i has 1000-i packets: bitrate order is port order.
		flows[udp(ipB, ipA, uint16(10000+i), 80)] = flow.Counters{Packets: uint64(1000 - i), Bytes: uint64(1000-i) * 100}
	}
	m.read(time.Second, snap(flows))
	// 24 lines: 2 header, 1 title, 19 rows, status, help.
	check := func(keys []string, first int) {
		t.Helper()
		m.press(keys...)
		lines := m.screen(t)
		if !strings.Contains(lines[3], fmt.Sprintf(":%d ", 10000+first-1)) {
			t.Errorf("after %v: first row %q, want port %d", keys, lines[3], 10000+first-1)
		}
		want := fmt.Sprintf("sort bitrate ▼ · rows %d-%d of 100", first, first+18)
		if lines[22] != want {
			t.Errorf("after %v: status %q, want %q", keys, lines[22], want)
		}
	}
	check(nil, 1)
	check([]string{"down", "j", "down"}, 4)
	check([]string{"up", "k"}, 2)
	check([]string{"pgdown"}, 21)
	check([]string{"end"}, 82)
	check([]string{"down", "pgdown"}, 82)
	check([]string{"pgup"}, 63)
	check([]string{"home", "up"}, 1)
	check([]string{"G"}, 82)
	check([]string{"g"}, 1)

	// A taller terminal shows more rows; the last page stays full.
	m.press("end")
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	lines := m.screen(t)
	if lines[28] != "sort bitrate ▼ · rows 76-100 of 100" {
		t.Errorf("after resize to 120x30: status %q", lines[28])
	}
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	if lines := m.screen(t); lines[22] != "sort bitrate ▼ · rows 76-94 of 100" {
		t.Errorf("after resize back to 80x24: status %q", lines[22])
	}
}

func TestModelWarning(t *testing.T) {
	m := testModel(Options{MaxEntries: 3})
	s := twoFlows(200, 20)
	s.Untracked[flow.In] = flow.Counters{Packets: 1234, Bytes: 1_500_000}
	s.UntrackedFlows = 1100
	m.read(time.Second, s)
	lines := m.screen(t)
	want := "! flow table full (3/3), raise --max-entries: 1234 packets (1.50 MB) in no row, 12.00 Mbps now from about 1100 flows"
	if lines[2] != ansi.Truncate(want, 80, "…") {
		t.Errorf("warning line:\n got %q\nwant %q", lines[2], ansi.Truncate(want, 80, "…"))
	}
	// The warning line takes a row from the table.
	if !strings.Contains(lines[3], "bitrate") || lines[22] != "sort bitrate ▼ · rows 1-3 of 3" {
		t.Errorf("screen with a warning:\n%s", strings.Join(lines, "\n"))
	}
	wide := testModel(Options{MaxEntries: 3})
	wide.Update(tea.WindowSizeMsg{Width: 200, Height: 24})
	wide.read(time.Second, s)
	if l := wide.screen(t); l[2] != want {
		t.Errorf("wide warning line:\n got %q\nwant %q", l[2], want)
	}
	// Nothing more was lost, and the table has room again (a flow ended).
	s2 := snap(map[flow.Key]flow.Counters{fastKey: {Packets: 300, Bytes: 300 * 142}})
	s2.Untracked = s.Untracked
	wide.read(2*time.Second, s2)
	if l := wide.screen(t); l[2] != "! the flow table was full, raise --max-entries: 1234 packets (1.50 MB) in no row" {
		t.Errorf("warning once the table has room: %q", l[2])
	}
	// The table full, nothing lost yet.
	full := testModel(Options{MaxEntries: 3})
	full.read(time.Second, twoFlows(1, 1))
	if l := full.screen(t); l[2] != "! flow table full (3/3), raise --max-entries: new flows get no row" {
		t.Errorf("warning with a full table: %q", l[2])
	}
	// No warning with room and nothing lost.
	roomy := testModel(Options{MaxEntries: 4})
	roomy.read(time.Second, twoFlows(1, 1))
	if l := roomy.screen(t); strings.HasPrefix(l[2], "!") {
		t.Errorf("warning without cause: %q", l[2])
	}

	// A read error is shown first, and the last good rows stay.
	m.Update(readingMsg{err: errors.New("read flow table: boom")})
	if l := m.screen(t); !strings.HasPrefix(l[2], "! read failed: read flow table: boom · flow table full") {
		t.Errorf("read error not shown: %q", l[2])
	}
	if len(m.rows) != 3 {
		t.Errorf("rows lost on a read error: %d", len(m.rows))
	}
}

func TestModelExpiry(t *testing.T) {
	m := testModel(Options{Expire: 2 * time.Second})
	m.read(time.Second, twoFlows(200, 20))
	m.read(2*time.Second, snap(map[flow.Key]flow.Counters{
		fastKey: {Packets: 400, Bytes: 400 * 142}, slowKey: {Packets: 20, Bytes: 20 * 1242}, sentKey: {Packets: 3, Bytes: 300},
	}))
	lines := m.screen(t)
	if i := rowOf(lines, "198.18.0.2:40001", "198.18.0.1:9001"); i < 0 || !strings.HasPrefix(lines[i], "   0.00 bps") {
		t.Errorf("quiet flow should show 0.00 bps:\n%s", strings.Join(lines, "\n"))
	}
	m.read(3500*time.Millisecond, snap(map[flow.Key]flow.Counters{
		fastKey: {Packets: 700, Bytes: 700 * 142}, slowKey: {Packets: 20, Bytes: 20 * 1242}, sentKey: {Packets: 3, Bytes: 300},
	}))
	lines = m.screen(t)
	if rowOf(lines, "198.18.0.2:40001", "198.18.0.1:9001") >= 0 || rowOf(lines, "198.18.0.2:40000", "198.18.0.1:9002") < 0 {
		t.Errorf("flows quiet for 2.5s with --expire 2s still shown:\n%s", strings.Join(lines, "\n"))
	}
	// The kernel's table, drained every refresh, held only the flow that sent.
	if !strings.Contains(lines[0], "flows 1 shown, table 1") {
		t.Errorf("header: %q", lines[0])
	}
}

func TestModelHelpPage(t *testing.T) {
	m := testModel(Options{Expire: 10 * time.Second})
	m.press("?")
	v := m.View()
	for _, want := range []string{`"out": sent through pa1 (egress)`, `"in": received`, "0 1 2 3 4 5", "quiet for 10s leaves the table"} {
		if !strings.Contains(v, want) {
			t.Errorf("help page lacks %q:\n%s", want, v)
		}
	}
	if n := len(strings.Split(v, "\n")); n > 24 {
		t.Errorf("help page has %d lines at 80x24", n)
	}
	for _, l := range strings.Split(v, "\n") {
		if ansi.StringWidth(l) > 80 {
			t.Errorf("help line wider than 80: %q", l)
		}
	}
	if !strings.Contains(v, "A flow quiet for 10s leaves the table until it sends again.") {
		t.Errorf("the help page's last line is cut at 80x24:\n%s", v)
	}
	m.press("?")
	if strings.Contains(m.View(), "Columns") {
		t.Error("? did not close the help page")
	}
}

func TestModelLabelColumns(t *testing.T) {
	m := testModel(Options{Owners: true})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 24})
	owned := fastKey
	owned.Owner = flow.NewOwner(flow.OwnerInfo{PID: 77, Comm: "curl", Cgroup: "/user.slice/x.scope"})
	s := snap(map[flow.Key]flow.Counters{owned: {Packets: 10, Bytes: 1000}, slowKey: {Packets: 1, Bytes: 60}})
	for i := range s.Flows {
		if s.Flows[i].Key == owned {
			s.Flows[i].L7 = flow.L7HTTP
		}
	}
	m.read(time.Second, s)
	lines := m.screen(t)
	for _, c := range []string{"l7", "pid", "comm", "cgroup"} {
		if !strings.Contains(lines[2], c) {
			t.Errorf("titles lack %s: %q", c, lines[2])
		}
	}
	for _, v := range []string{"HTTP", "77", "curl", "/user.slice/x.scope"} {
		if !strings.Contains(lines[3], v) {
			t.Errorf("row lacks %s: %q", v, lines[3])
		}
	}
	// The unowned row has empty owner cells, and the filter finds owners.
	if f := strings.Fields(lines[4]); f[len(f)-1] != "in" {
		t.Errorf("row without an owner: %q", lines[4])
	}
	m.press("/", "curl", "enter")
	if len(m.rows) != 1 || m.rows[0].Key != owned {
		t.Errorf("filter by comm: %d rows", len(m.rows))
	}
	// Without owners, the columns are gone.
	plain := testModel(Options{})
	plain.Update(tea.WindowSizeMsg{Width: 160, Height: 24})
	plain.read(time.Second, twoFlows(200, 20))
	for _, c := range []string{"l7", "pid", "comm", "cgroup"} {
		if strings.Contains(plain.screen(t)[2], c) {
			t.Errorf("tc mode shows a %s column", c)
		}
	}
}

// TestModelReads checks the reading loop: Init's command reads the source
// after one refresh interval and the model schedules the next.
func TestModelReads(t *testing.T) {
	src := &fakeSource{snaps: []flow.Snapshot{twoFlows(200, 20), twoFlows(300, 20), twoFlows(400, 20)}}
	pipe := pipeline.New(src, nil)
	m := NewModel(pipe, Options{Start: time.Now(), Refresh: 100 * time.Millisecond})
	begin := time.Now()
	msg := m.Init()()
	if took := time.Since(begin); took < 90*time.Millisecond {
		t.Errorf("first reading after %v, want one refresh interval", took)
	}
	if dm, ok := msg.(drainedMsg); !ok || dm.err != nil {
		t.Fatalf("Init's command returned %#v", msg)
	}
	_, next := m.Update(msg)
	if next == nil {
		t.Fatal("no next reading scheduled")
	}
	if m.tr.Readings != 1 || len(m.tr.all) != 3 {
		t.Fatalf("after the first drain: %d readings, %d flows; want 1 and 3", m.tr.Readings, len(m.tr.all))
	}
	// A drain another sink's owner asks for (the metrics endpoint) reaches
	// the tracker too, with the one the model asks for.
	if _, _, err := pipe.Drain(); err != nil {
		t.Fatal(err)
	}
	_, next = m.Update(next())
	// Each drain holds what was counted since the one before: 200+300+400.
	if src.reads != 3 || m.tr.Readings != 3 || m.tr.lookup(fastKey).Total.Packets != 900 {
		t.Errorf("after three drains: %d reads, %d taken, %+v", src.reads, m.tr.Readings, m.tr.lookup(fastKey).Total)
	}
	src.mu.Lock()
	src.err = errors.New("read flow table: boom")
	src.mu.Unlock()
	m.Update(next()) // a Tick command fires once: this is the next one
	if m.err == nil || m.tr.Readings != 3 {
		t.Errorf("a failed drain: err %v, %d readings; want the error shown and no reading", m.err, m.tr.Readings)
	}
}

// slowSource is a fakeSource whose Drain takes drain on the model's clock,
// as a drain of a large table does.
type slowSource struct {
	fakeSource
	clock *time.Time
	drain time.Duration
}

func (s *slowSource) Drain() (flow.Snapshot, error) {
	*s.clock = s.clock.Add(s.drain)
	return s.fakeSource.Drain()
}

// TestModelRateIgnoresDrainTime: the counting period ends where the drain
// starts (its first step swaps the tables), so a drain that takes 600 ms
// must not lengthen the period a rate divides by. 200 packets of 142
// bytes over the first second are 200 pps and 227,200 bps, not 125 pps.
func TestModelRateIgnoresDrainTime(t *testing.T) {
	clock := t0.Add(time.Second)
	src := &slowSource{fakeSource: fakeSource{snaps: []flow.Snapshot{twoFlows(200, 20)}}, clock: &clock, drain: 600 * time.Millisecond}
	m := NewModel(pipeline.New(src, func() time.Time { return clock }), Options{Start: t0, Refresh: time.Millisecond, Now: func() time.Time { return clock }})
	m.Update(m.Init()())
	f := m.tr.lookup(fastKey)
	if f == nil {
		t.Fatal("the fast flow is not in the table")
	}
	if f.Rate.PPS != 200 || f.Rate.BPS != 200*142*8 {
		t.Errorf("rate %+v after a 1 s period and a 600 ms drain; want 200 pps and %d bps", f.Rate, 200*142*8)
	}
}

// TestRunQuits runs the whole Bubble Tea program on a pipe: q, x and
// ctrl+c end it without error, and it stops when the context ends.
func TestRunQuits(t *testing.T) {
	for _, in := range []string{"q", "x", "\x03", "/q\x03"} {
		src := &fakeSource{snaps: []flow.Snapshot{twoFlows(1, 1)}}
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- Run(context.Background(), pipeline.New(src, nil), Options{Start: time.Now(), Refresh: 100 * time.Millisecond, In: pr, Out: io.Discard})
		}()
		go pw.Write([]byte(in))
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("input %q: Run = %v", in, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("input %q: Run did not return", in)
		}
		pw.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, pipeline.New(&fakeSource{snaps: []flow.Snapshot{{}}}, nil), Options{Start: time.Now(), Refresh: 100 * time.Millisecond, In: pr, Out: io.Discard})
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("cancelled context: Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the context ended")
	}
}

// TestModelHostileNames: a process and a cgroup named to drive the
// terminal (retitle it, clear it, overwrite a row, reverse the text) and
// an interface named with an escape show as escapes, and nothing raw
// reaches the screen.
func TestModelHostileNames(t *testing.T) {
	m := NewModel(nil, Options{Iface: "pa\x1b[2J", Mode: "cgroup", Start: t0, Refresh: time.Second, MaxEntries: 1024, Owners: true})
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 10})
	k := fastKey
	k.Owner = flow.NewOwner(flow.OwnerInfo{PID: 7, Comm: "x\x1b]0;t\a", Cgroup: "/e\x1b[31mR\rF\u202eZ\xff"})
	m.read(time.Second, flow.Snapshot{Flows: []flow.Flow{{Key: k, Counters: flow.Counters{Packets: 1, Bytes: 100}}}})
	view := m.View()
	for _, r := range view {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError) {
			t.Fatalf("the screen holds a raw %U:\n%q", r, view)
		}
	}
	for _, want := range []string{`pa\x1b[2J`, `x\x1b]0;t\x07`, `/e\x1b[31mR\x0dF\u202eZ\xff`} {
		if !strings.Contains(view, want) {
			t.Errorf("the screen does not show %s:\n%s", want, view)
		}
	}
}

// TestModelCapWarning: when the table forgets quiet flows to stay within
// its cap, the header says how many and the cap.
func TestModelCapWarning(t *testing.T) {
	m := testModel(Options{MaxFlows: 2, MaxEntries: 1024})
	m.read(time.Second, twoFlows(200, 20))
	m.read(2*time.Second, flow.Snapshot{Flows: []flow.Flow{
		{Key: udp(ipA, ipB, 50000, 80), Counters: flow.Counters{Packets: 1, Bytes: 60}},
		{Key: udp(ipA, ipB, 50001, 80), Counters: flow.Counters{Packets: 1, Bytes: 60}},
	}})
	if w := m.warning(); !strings.Contains(w, "quiet flows forgotten to keep at most 2") {
		t.Errorf("warning %q, want the forgotten flows and the cap", w)
	}
}
