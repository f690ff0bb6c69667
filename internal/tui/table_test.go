package tui

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// sortRows are flows whose order differs for every sort key; the want
// orders below were worked out by hand.
func sortRows() map[string]*Flow {
	return map[string]*Flow{
		// name: key, rate, totals
		"fast": {Key: udp(ipB, ipA, 40000, 9002), Rate: Rate{BPS: 800_000, PPS: 100}, Total: flow.Counters{Packets: 500, Bytes: 500_000}},
		"slow": {Key: udp(ipB, ipA, 40001, 9001), Rate: Rate{BPS: 80_000, PPS: 10}, Total: flow.Counters{Packets: 50, Bytes: 900_000}},
		// Same bitrate as slow, more pps: pps breaks the bitrate tie.
		"tiny": {Key: udp(ipC, ipB, 7, 7), Rate: Rate{BPS: 80_000, PPS: 200}, Total: flow.Counters{Packets: 2000, Bytes: 10_000}},
		// Quiet: ties on rate with v6, broken by packets.
		"old": {Key: udp(ipA, ipB, 9001, 40001), Total: flow.Counters{Packets: 3000, Bytes: 4_000_000}, Out: true},
		"v6":  {Key: udp(ip6B, ip6A, 53, 5353), Total: flow.Counters{Packets: 40, Bytes: 4000}},
		// Same totals as v6: the key breaks every tie (ARP sorts first).
		"arp": {Key: flow.Key{EtherType: 0x0806}, Total: flow.Counters{Packets: 40, Bytes: 4000}},
	}
}

func TestSort(t *testing.T) {
	rows := sortRows()
	tests := []struct {
		key  SortKey
		want []string
	}{
		{SortBitrate, []string{"fast", "tiny", "slow", "old", "arp", "v6"}},
		{SortPPS, []string{"tiny", "fast", "slow", "old", "arp", "v6"}},
		{SortPackets, []string{"old", "tiny", "fast", "slow", "arp", "v6"}},
		{SortBytes, []string{"old", "slow", "fast", "tiny", "arp", "v6"}},
		// Addresses ascending, then ports; ARP has no address and sorts
		// first, IPv4 before IPv6.
		{SortSource, []string{"arp", "old", "fast", "slow", "tiny", "v6"}},
		{SortDestination, []string{"arp", "slow", "fast", "tiny", "old", "v6"}},
	}
	names := map[*Flow]string{}
	var all []*Flow
	for n, f := range rows {
		names[f] = n
		all = append(all, f)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tt := range tests {
		for _, reverse := range []bool{false, true} {
			want := slices.Clone(tt.want)
			if reverse {
				slices.Reverse(want)
			}
			for range 10 {
				rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
				Sort(all, tt.key, reverse)
				got := make([]string, len(all))
				for i, f := range all {
					got[i] = names[f]
				}
				if !slices.Equal(got, want) {
					t.Fatalf("sort by %s (reverse %v):\n got %v\nwant %v", tt.key, reverse, got, want)
				}
			}
		}
	}
}

func TestSortKeyCycle(t *testing.T) {
	s, seen := SortBitrate, map[SortKey]bool{}
	for range numSortKeys {
		seen[s] = true
		if s.Next().Prev() != s {
			t.Errorf("%s: Next then Prev gives %s", s, s.Next().Prev())
		}
		s = s.Next()
	}
	if s != SortBitrate || len(seen) != int(numSortKeys) {
		t.Errorf("cycle visited %d keys and ended at %s", len(seen), s)
	}
	if SortSource.descending() || !SortBytes.descending() {
		t.Error("addresses should sort ascending, counters descending")
	}
}

func TestFilter(t *testing.T) {
	rows := sortRows()
	rows["v6"].Key.Owner = flow.NewOwner(flow.OwnerInfo{PID: 4242, Comm: "Unbound", Cgroup: "/system.slice/unbound.service"})
	rows["v6"].L7 = "DNS"
	tests := []struct {
		q    string
		want []string
	}{
		{"", []string{"arp", "fast", "old", "slow", "tiny", "v6"}},
		{"9001", []string{"old", "slow"}},                      // a port, at either end
		{":9001", []string{"old", "slow"}},                     // a port as shown
		{"198.18.0.2:40000", []string{"fast"}},                 // one end exactly
		{"UDP", []string{"fast", "old", "slow", "tiny", "v6"}}, // case does not matter
		{"arp", []string{"arp"}},
		{"out", []string{"old"}},
		{"in 9002", []string{"fast"}}, // every term must match
		{"[2001:2::2]:53", []string{"v6"}},
		{"unbound dns 4242", []string{"v6"}},
		{"unbound.service", []string{"v6"}},
		{"198.19.", []string{"tiny"}},
		{"nothing-matches", nil},
	}
	for _, tt := range tests {
		var all []*Flow
		for _, f := range rows {
			all = append(all, f)
		}
		got := ParseFilter(tt.q).Apply(all)
		var names []string
		for n, f := range rows {
			if slices.Contains(got, f) {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		if len(got) != len(names) || !slices.Equal(names, tt.want) {
			t.Errorf("filter %q: got %v (%d rows), want %v", tt.q, names, len(got), tt.want)
		}
	}
}

// render lays out rows and returns the title line and the row lines.
func render(cols []column, rows []*Flow, width int) (string, []string) {
	tb := layoutTable(cols, rows, width, colBitrate, "▼")
	var b strings.Builder
	tb.line(&b, tb.titles)
	title := b.String()
	var lines []string
	for j := range tb.cells {
		b.Reset()
		tb.line(&b, tb.cells[j])
		lines = append(lines, b.String())
	}
	return title, lines
}

func TestLayoutWide(t *testing.T) {
	f := &Flow{Key: udp(ipB, ipA, 40000, 9001), Rate: Rate{BPS: 227_200, PPS: 200}, Total: flow.Counters{Packets: 1200, Bytes: 170_400}}
	title, lines := render(columns(false, false, false), []*Flow{f}, 200)
	wantTitle := "   bitrate▼    pps  packets   bytes  proto  source            destination      dir"
	if title != wantTitle {
		t.Errorf("title:\n got %q\nwant %q", title, wantTitle)
	}
	want := "227.20 Kbps  200.0     1200  170400  UDP    198.18.0.2:40000  198.18.0.1:9001  in "
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("row:\n got %q\nwant %q", lines, want)
	}
}

func TestLayoutNarrow(t *testing.T) {
	long := netip.MustParseAddr("2001:2:0:ffff:1234:5678:9abc:def0")
	rows := []*Flow{
		{Key: udp(long, ip6A, 40000, 9001), Rate: Rate{BPS: 1.5e9, PPS: 123_456}, Total: flow.Counters{Packets: 123_456_789, Bytes: 98_765_432_100}},
		{Key: udp(ipB, ipA, 40001, 9002), Total: flow.Counters{Packets: 1, Bytes: 60}},
	}
	title, lines := render(columns(false, false, false), rows, 80)
	for _, l := range append([]string{title}, lines...) {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("line is %d cells wide, over 80: %q", w, l)
		}
	}
	// The soft columns (dir, bytes) go before any address is cut.
	if strings.Contains(title, "dir") {
		t.Errorf("dir column kept at 80 columns: %q", title)
	}
	for _, must := range []string{"bitrate", "pps", "packets", "proto", "source", "destination"} {
		if !strings.Contains(title, must) {
			t.Errorf("column %s dropped at 80 columns: %q", must, title)
		}
	}
	// A cut address keeps its port.
	if !strings.Contains(lines[0], "…") || !strings.Contains(lines[0], "def0]:40000") {
		t.Errorf("long source not cut from the left: %q", lines[0])
	}
	if !strings.Contains(lines[0], "1.50 Gbps") || !strings.Contains(lines[0], "123456789") {
		t.Errorf("numbers missing: %q", lines[0])
	}
	if !strings.Contains(lines[1], "198.18.0.2:40001") {
		t.Errorf("short address cut: %q", lines[1])
	}
}

func TestLayoutModeColumns(t *testing.T) {
	k := udp(ipB, ipA, 40000, 9001)
	k.Owner = flow.NewOwner(flow.OwnerInfo{PID: 4242, Comm: "iperf3", Cgroup: "/system.slice/x.service"})
	f := &Flow{Key: k, L7: "HTTP"}
	title, lines := render(columns(true, true, false), []*Flow{f}, 220)
	for _, c := range []string{"pid", "comm", "cgroup", "l7"} {
		if !strings.Contains(title, c) {
			t.Errorf("process/cgroup mode: no %s column in %q", c, title)
		}
	}
	for _, v := range []string{"4242", "iperf3", "/system.slice/x.service", "HTTP"} {
		if !strings.Contains(lines[0], v) {
			t.Errorf("process/cgroup mode: %s missing from %q", v, lines[0])
		}
	}
	title, _ = render(columns(false, false, false), []*Flow{f}, 220)
	for _, c := range []string{"pid", "comm", "cgroup", "l7"} {
		if strings.Contains(title, c) {
			t.Errorf("tc mode shows a %s column: %q", c, title)
		}
	}
	// At 80 columns in process mode, the table still fits.
	title, lines = render(columns(true, true, false), []*Flow{f}, 80)
	for _, l := range append([]string{title}, lines...) {
		if ansi.StringWidth(l) > 80 {
			t.Errorf("process mode at 80 columns: %d cells: %q", ansi.StringWidth(l), l)
		}
	}
	// A process name is cut before an IPv4 address is: a cut address can
	// be misread as another.
	k.Owner = flow.NewOwner(flow.OwnerInfo{PID: 4242, Comm: "nginx: worker", Cgroup: "/system.slice/x.service"})
	busy := &Flow{Key: k, Rate: Rate{BPS: 1.5e6, PPS: 1234}, Total: flow.Counters{Packets: 123456, Bytes: 9876543}}
	_, lines = render(columns(true, false, false), []*Flow{busy}, 80)
	if !strings.Contains(lines[0], " 198.18.0.2:40000 198.18.0.1:9001 ") || !strings.Contains(lines[0], "4242 nginx: wor") || strings.Contains(lines[0], "nginx: worker") {
		t.Errorf("process mode at 80 columns: %q; want whole addresses, the pid, and the name cut", lines[0])
	}
}

func TestFit(t *testing.T) {
	for _, tt := range []struct {
		s              string
		w              int
		right, cutLeft bool
		want           string
	}{
		{"abc", 5, false, false, "abc  "},
		{"abc", 5, true, false, "  abc"},
		{"abcdef", 4, false, false, "abc…"},
		{"198.18.0.1:9001", 8, false, true, "….1:9001"},
		{"abc", 0, false, false, ""},
	} {
		if got := fit(tt.s, tt.w, tt.right, tt.cutLeft); got != tt.want {
			t.Errorf("fit(%q, %d, %v, %v) = %q, want %q", tt.s, tt.w, tt.right, tt.cutLeft, got, tt.want)
		}
	}
}

// TestSortPackedMatchesComparator checks the packed sort keys against the
// plain comparator on random rows full of ties: IPv4, IPv6, non-IP keys,
// zero and equal rates, equal totals.
func TestSortPackedMatchesComparator(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	addrs := []netip.Addr{{}, ipA, ipB, ipC, ip6A, ip6B,
		netip.MustParseAddr("::5"), netip.MustParseAddr("0.0.0.9"), netip.MustParseAddr("::ffff:198.18.0.1"),
		netip.MustParseAddr("2001:2:0:ffff::3"), netip.MustParseAddr("2001:2::ffff:ffff:ffff:ffff")}
	pick := func(vals ...float64) float64 { return vals[rng.IntN(len(vals))] }
	var rows []*Flow
	seen := map[flow.Key]bool{} // keys are unique, as in a kernel table
	for range 3000 {
		k := flow.Key{EtherType: flow.EtherTypeIPv4, Proto: uint8(rng.IntN(3)) * 6,
			Src: addrs[rng.IntN(len(addrs))], Dst: addrs[rng.IntN(len(addrs))],
			SrcPort: uint16(rng.IntN(4)) * 16383, DstPort: uint16(rng.IntN(3)), VLAN: uint16(rng.IntN(2))}
		if seen[k] {
			continue
		}
		seen[k] = true
		rows = append(rows, &Flow{Key: k,
			Rate:  Rate{BPS: pick(0, 8, 1e9, 1.5e9, math.MaxFloat64), PPS: pick(0, 1, 0.5, 1e6)},
			Total: flow.Counters{Packets: uint64(rng.IntN(3)) << 62, Bytes: uint64(rng.IntN(3)) * 1e18}})
	}
	if len(rows) < 1500 {
		t.Fatalf("only %d distinct rows", len(rows))
	}
	for s := range numSortKeys {
		for _, reverse := range []bool{false, true} {
			want := slices.Clone(rows)
			slices.SortFunc(want, comparator(s, reverse))
			got := slices.Clone(rows)
			rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
			Sort(got, s, reverse)
			if !slices.Equal(got, want) {
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("sort by %s (reverse %v): row %d is %+v, want %+v", s, reverse, i, *got[i], *want[i])
					}
				}
			}
		}
	}
}

// TestWindow checks every page that window finds against the same page of
// a full sort, from the top, the middle and the end, for every order.
func TestWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var rows []*Flow
	for i := range 500 {
		k := udp(ipB, ipA, uint16(i), uint16(rng.IntN(5)))
		rows = append(rows, &Flow{Key: k,
			Rate:  Rate{BPS: float64(rng.IntN(4) * 800), PPS: float64(rng.IntN(3))},
			Total: flow.Counters{Packets: uint64(rng.IntN(50)), Bytes: uint64(rng.IntN(3) * 100)}})
	}
	var st sorter
	for s := range numSortKeys {
		for _, reverse := range []bool{false, true} {
			sorted := slices.Clone(rows)
			Sort(sorted, s, reverse)
			for _, pg := range [][2]int{{0, 19}, {0, 1}, {1, 19}, {240, 19}, {249, 2}, {250, 19}, {481, 19}, {490, 19}, {499, 1}, {0, 500}, {0, 600}, {100, 400}, {500, 19}, {600, 1}} {
				in := slices.Clone(rows)
				got := st.window(in, s, reverse, pg[0], pg[1])
				want := sorted[min(pg[0], len(sorted)):min(pg[0]+pg[1], len(sorted))]
				if !slices.Equal(got, want) {
					t.Fatalf("window(%s, reverse %v, offset %d, n %d): got %d rows, want %d, or a different order",
						s, reverse, pg[0], pg[1], len(got), len(want))
				}
				if !slices.Equal(in, rows) {
					t.Fatalf("window reordered its input")
				}
			}
		}
	}
	if got := st.window(nil, SortBitrate, false, 0, 19); len(got) != 0 {
		t.Errorf("window of no rows: %d", len(got))
	}
}

// TestLayoutReAdd: when dropping bytes frees enough room, dir, dropped
// before it, comes back.
func TestLayoutReAdd(t *testing.T) {
	f := &Flow{Key: flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoTCP,
		Src: netip.MustParseAddr("198.18.144.97"), Dst: netip.MustParseAddr("198.19.141.74"), SrcPort: 20339, DstPort: 58812},
		Rate: Rate{BPS: 115.05e6, PPS: 9970}, Total: flow.Counters{Packets: 104682, Bytes: 157023000}}
	// bitrate 11, pps 5, packets 7, bytes 9, proto 5, source 19, destination
	// 19, dir 3: 78 + 7 gaps = 85 > 80. Without dir 81 > 80; without bytes
	// too, 72; dir fits back: 76.
	title, lines := render(columns(false, false, false), []*Flow{f}, 80)
	want := "   bitrate▼   pps packets proto source              destination         dir"
	if title != want {
		t.Errorf("title:\n got %q\nwant %q", title, want)
	}
	if want := "115.05 Mbps 9.97k  104682 TCP   198.18.144.97:20339 198.19.141.74:58812 in "; lines[0] != want {
		t.Errorf("row:\n got %q\nwant %q", lines[0], want)
	}
}
