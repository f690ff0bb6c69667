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
