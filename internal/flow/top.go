package flow

import (
	"container/heap"
	"slices"
	"time"
)

// Top sets each row's rate over d and returns the n highest rows in report
// order (see Compare), and the counters and number of the rows left out.
// It selects with a bounded heap, O(len(rows) log n), instead of sorting
// every row; rows is reordered. n <= 0 keeps every row.
func Top(rows []Flow, n int, d time.Duration) (top []Flow, rest Counters, restRows int) {
	if n <= 0 || n >= len(rows) {
		return RankRows(rows, d), Counters{}, 0
	}
	for i := range rows {
		rows[i].Bitrate = Bitrate(rows[i].Bytes, d)
	}
	// A min-heap (by report order) of the best n seen so far: its root is
	// the worst of them, the one a better row replaces.
	h := worstFirst(rows[:n])
	heap.Init(&h)
	for i := n; i < len(rows); i++ {
		if Compare(rows[i], h[0]) < 0 {
			rest.Add(h[0].Counters)
			h[0] = rows[i]
			heap.Fix(&h, 0)
		} else {
			rest.Add(rows[i].Counters)
		}
	}
	top = []Flow(h)
	slices.SortFunc(top, Compare)
	return top, rest, len(rows) - n
}

// worstFirst is a heap whose root is the row that sorts last.
type worstFirst []Flow

func (h worstFirst) Len() int           { return len(h) }
func (h worstFirst) Less(i, j int) bool { return Compare(h[i], h[j]) > 0 }
func (h worstFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *worstFirst) Push(x any)        { *h = append(*h, x.(Flow)) }
func (h *worstFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
