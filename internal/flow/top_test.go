package flow

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestTopMatchesFullSort checks the heap selection against sorting
// everything: the same rows in the same order, and the rest adds up.
func TestTopMatchesFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 5, 100, 5000} {
		for _, n := range []int{1, 3, 10, 100, 6000} {
			rows := make([]Flow, size)
			var total Counters
			for i := range rows {
				// Few distinct byte counts, so ties are common.
				c := Counters{Packets: uint64(rng.IntN(5)), Bytes: uint64(rng.IntN(50))}
				rows[i] = Flow{Key: Key{EtherType: EtherTypeIPv4, Proto: ProtoUDP,
					Src: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), SrcPort: uint16(i)}, Counters: c}
				total.Add(c)
			}
			want := RankRows(append([]Flow(nil), rows...), time.Second)
			top, rest, restRows := Top(rows, n, time.Second)
			k := min(n, size)
			if len(top) != k || restRows != size-k {
				t.Fatalf("size %d, n %d: %d top rows and %d left out", size, n, len(top), restRows)
			}
			for i := range top {
				if top[i] != want[i] {
					t.Fatalf("size %d, n %d: row %d = %+v, want %+v", size, n, i, top[i], want[i])
				}
			}
			var sum Counters
			for _, r := range top {
				sum.Add(r.Counters)
			}
			sum.Add(rest)
			if sum != total {
				t.Errorf("size %d, n %d: top + rest = %+v, want %+v", size, n, sum, total)
			}
		}
	}
}

// TestRankRowsSortsLikeCompare checks RankRows' index sort and in-place
// permutation against sorting the rows themselves with Compare, on rows
// with many ties (broken by the keys) and in shuffled order.
func TestRankRowsSortsLikeCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1, 2, 7, 1000, 20000} {
		rows := make([]Flow, size)
		for i := range rows {
			rows[i] = Flow{Key: Key{EtherType: EtherTypeIPv4, Proto: ProtoTCP,
				Src: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), SrcPort: uint16(rng.IntN(4))},
				Counters: Counters{Packets: uint64(rng.IntN(3)), Bytes: uint64(rng.IntN(20))}}
		}
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		want := append([]Flow(nil), rows...)
		for i := range want {
			want[i].Bitrate = Bitrate(want[i].Bytes, time.Second)
		}
		slices.SortFunc(want, Compare)
		got := RankRows(rows, time.Second)
		if !slices.Equal(got, want) {
			t.Fatalf("%d rows: RankRows differs from a sort by Compare", size)
		}
	}
}

// BenchmarkRankMillion ranks 1,000,000 rows shaped like a large table's
// (IPv4 UDP flows to one port; byte counts with about 100 rows each, so
// ties are many), beside the same rows sorted by Compare alone in the same
// run, the baseline a plain comparison sort gives.
//
//	go test -run '^$' -bench RankMillion -benchtime 5x -count 5 ./internal/flow/
func BenchmarkRankMillion(b *testing.B) {
	const n = 1_000_000
	src := make([]Flow, n)
	for i := range src {
		id := uint32(i)
		src[i] = Flow{Key: Key{EtherType: EtherTypeIPv4, Proto: ProtoUDP,
			Src:     netip.AddrFrom4([4]byte{198, 18, byte(id >> 16), 0}),
			Dst:     netip.AddrFrom4([4]byte{198, 18, 255, 1}),
			SrcPort: uint16(id), DstPort: 53},
			Counters: Counters{Packets: uint64(id%97 + 1), Bytes: uint64(id%9973 + 64)}}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	rng.Shuffle(n, func(i, j int) { src[i], src[j] = src[j], src[i] })
	rows := make([]Flow, n)
	for _, bc := range []struct {
		name string
		rank func([]Flow)
	}{
		{"RankRows", func(r []Flow) { RankRows(r, time.Second) }},
		{"SortFunc-Compare", func(r []Flow) {
			for i := range r {
				r[i].Bitrate = Bitrate(r[i].Bytes, time.Second)
			}
			slices.SortFunc(r, Compare)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var took time.Duration
			for range b.N {
				b.StopTimer()
				copy(rows, src)
				b.StartTimer()
				t0 := time.Now()
				bc.rank(rows)
				took += time.Since(t0)
			}
			if !slices.IsSortedFunc(rows, Compare) {
				b.Fatal("rows are not in Compare's order")
			}
			b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "ms/rank")
		})
	}
}
