package capture

import (
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
)

// BenchmarkReadMillionFlowsGrouped is the report's read path at its
// largest with --group-by: drain a shared table (the tool's layout) of
// 1,000,000 flows, then take the 10 fastest rows (--top 10). "none" is
// today's path; the others add the drained rows up into groups first, in
// the same run. ms/group is what grouping adds to ms/drain + ms/top10;
// src,sport,dst,dport is the worst case, a group per flow.
//
//	go test -run '^$' -bench ReadMillionFlowsGrouped -benchtime 3x -count 5 ./internal/capture/
func BenchmarkReadMillionFlowsGrouped(b *testing.B) {
	const n = 1_000_000
	h := loadHook(b, tcHook, testLoad{maxEntries: n})
	var rows []flow.Flow
	var filler tableFiller
	for _, by := range []string{"none", "proto", "dport", "src", "src,sport,dst,dport"} {
		var g group.By
		if by != "none" {
			var err error
			if g, err = group.Parse(by); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(by, func(b *testing.B) {
			var drainNs, groupNs, topNs time.Duration
			for range b.N {
				b.StopTimer()
				filler.fill(b, h.tb, n)
				b.StartTimer()
				t0 := time.Now()
				snap, err := h.tb.Drain(rows[:0])
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				grouped := group.Rows(snap.Flows, g)
				t2 := time.Now()
				top, _, _ := flow.Top(grouped, 10, time.Second)
				t3 := time.Now()
				if len(snap.Flows) != n || len(top) == 0 {
					b.Fatalf("drained %d flows, %d top rows", len(snap.Flows), len(top))
				}
				rows = snap.Flows
				drainNs += t1.Sub(t0)
				groupNs += t2.Sub(t1)
				topNs += t3.Sub(t2)
			}
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(per(drainNs), "ms/drain")
			b.ReportMetric(per(groupNs), "ms/group")
			b.ReportMetric(per(topNs), "ms/top10")
		})
	}
}
