package tui

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// benchTables returns two drains of a table of n flows, one second apart:
// a fifth IPv6, addresses from 198.18.0.0/15 and 2001:2::/48. The second
// holds every flow but the quiet fraction, which counted nothing.
func benchTables(n int, quiet float64) (first, second flow.Snapshot) {
	rng := rand.New(rand.NewPCG(7, 8))
	seen := make(map[flow.Key]bool, n)
	first.Flows = make([]flow.Flow, 0, n)
	second.Flows = make([]flow.Flow, 0, n)
	for len(first.Flows) < n {
		var k flow.Key
		if rng.IntN(5) == 0 {
			var s, d [16]byte
			copy(s[:], netip.MustParseAddr("2001:2::").AsSlice())
			d = s
			s[14], s[15] = byte(rng.IntN(256)), byte(rng.IntN(256))
			d[12], d[15] = byte(rng.IntN(256)), byte(rng.IntN(256))
			k = udp(netip.AddrFrom16(s), netip.AddrFrom16(d), uint16(rng.IntN(65536)), 443)
		} else {
			s := netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(256)), byte(rng.IntN(256))})
			d := netip.AddrFrom4([4]byte{198, 19, byte(rng.IntN(256)), byte(rng.IntN(256))})
			k = flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoTCP, Src: s, Dst: d,
				SrcPort: uint16(rng.IntN(65536)), DstPort: uint16(rng.IntN(1024))}
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		p := uint64(rng.IntN(100_000) + 1)
		first.Flows = append(first.Flows, flow.Flow{Key: k, Counters: flow.Counters{Packets: p, Bytes: p * uint64(60+rng.IntN(1440))}})
		if rng.Float64() >= quiet {
			dp := uint64(rng.IntN(10_000) + 1)
			second.Flows = append(second.Flows, flow.Flow{Key: k, Counters: flow.Counters{Packets: dp, Bytes: dp * uint64(60+rng.IntN(1440))}})
		}
	}
	return first, second
}

// BenchmarkRefresh100k measures one refresh of the TUI at 100,000 flows:
// taking a reading into the rate tracker, expiring, filtering, sorting and
// drawing an 80x24 screen. The drains alternate between two tables, so
// every refresh sees every flow (but the quiet ones) count more.
func BenchmarkRefresh100k(b *testing.B) {
	const n = 100_000
	cases := []struct {
		name   string
		quiet  float64
		keys   []string
		expire time.Duration
	}{
		{name: "bitrate", quiet: 0},
		{name: "bitrate-90pc-quiet", quiet: 0.9},
		{name: "source", keys: []string{"3"}},
		{name: "destination-reversed", keys: []string{"4", "r"}},
		{name: "filter-port-443", keys: []string{"/", ":443", "enter"}},
		{name: "filter-no-match", keys: []string{"/", "nothing", "enter"}},
		{name: "expire-10s", expire: 10 * time.Second},
		// Grouped (the a key): by protocol (2 groups), by source address
		// (about 60,000).
		{name: "group-proto", keys: []string{"a"}},
		{name: "group-src", keys: []string{"a", "a"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			first, second := benchTables(n, c.quiet)
			m := NewModel(nil, Options{Iface: "pa1", Mode: "tc/tcx", Start: t0, Refresh: time.Second, Expire: c.expire, MaxEntries: 131072})
			m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
			m.Update(readingMsg{snap: first, at: at(time.Second)})
			m.press(c.keys...)
			if got := m.View(); !strings.Contains(got, "flows 100000 shown") {
				b.Fatalf("setup: header is not right:\n%s", got)
			}
			benchRefresh(b, m, first, second)
		})
	}
}

// BenchmarkBaseline100k is the reference for BenchmarkRefresh100k, on the
// same tables in the same run: "rank" is flow.Rank, the end-of-run report's
// sort of the whole table; "draw-all" lays out and draws every one of the
// 100,000 rows, as a TUI that redraws its whole table each refresh does.
func BenchmarkBaseline100k(b *testing.B) {
	const n = 100_000
	first, second := benchTables(n, 0)
	b.Run("rank", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			s := second
			if i%2 == 1 {
				s = first
			}
			_ = flow.RankRows(slices.Clone(s.Flows), time.Second)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/refresh")
	})
	b.Run("draw-all", func(b *testing.B) {
		m := NewModel(nil, Options{Iface: "pa1", Mode: "tc/tcx", Start: t0, Refresh: time.Second})
		m.Update(tea.WindowSizeMsg{Width: 80, Height: n + 5})
		m.Update(readingMsg{snap: first, at: at(time.Second)})
		benchRefresh(b, m, first, second)
	})
}

// benchRefresh times refreshes of m that alternate between the two tables,
// as a refresh and a redraw each, and reports the time per refresh.
func benchRefresh(b *testing.B, m *Model, first, second flow.Snapshot) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s := second
		if i%2 == 1 {
			s = first
		}
		m.Update(readingMsg{snap: s, at: at(time.Duration(i+2) * time.Second)})
		_ = m.View()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/refresh")
}
