package capture

import (
	"encoding/binary"
	"syscall"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
)

// fillTable writes n distinct IPv4 UDP flows into the active flow table,
// with counters on every CPU, in batches.
func fillTable(b testing.TB, tb *flowtable.Table[bpfprog.FlowKey], n int) {
	b.Helper()
	new(tableFiller).fill(b, tb, n)
}

// tableFiller is fillTable with buffers kept from one fill to the next,
// for benchmarks that fill a table before every timed read: garbage the
// harness makes between reads would be collected during them.
type tableFiller struct {
	keys []bpfprog.FlowKey
	vals []bpfprog.FlowVal
}

func (f *tableFiller) fill(b testing.TB, tb *flowtable.Table[bpfprog.FlowKey], n int) {
	b.Helper()
	const chunk = 65536
	if f.keys == nil {
		f.keys = make([]bpfprog.FlowKey, chunk)
		f.vals = make([]bpfprog.FlowVal, chunk*tb.NCPU())
	}
	keys, vals := f.keys, f.vals
	for base := 0; base < n; base += chunk {
		m := min(chunk, n-base)
		for i := 0; i < m; i++ {
			id := uint32(base + i)
			k := bpfprog.FlowKey{EthProto: 0x0800, Proto: 17, Dport: 53, Sport: uint16(id)}
			// Sources spread over 198.18.0.0/15.
			binary.BigEndian.PutUint32(k.Saddr[:4], 0xC6120000|id>>16)
			copy(k.Daddr[:4], []byte{198, 18, 255, 1})
			keys[i] = k
			for c := 0; c < tb.NCPU(); c++ {
				vals[i*tb.NCPU()+c] = bpfprog.FlowVal{Packets: uint64(id%97 + 1), Bytes: uint64(id%9973 + 64)}
			}
		}
		if err := tb.Fill(keys[:m], vals[:m*tb.NCPU()]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadMillionFlows measures the read path at its largest, in
// each flow-table layout: drain a table of 1,000,000 flows (swap, batch
// lookup-and-delete, per-CPU sums in the per-CPU layout, key conversion),
// then rank every row, and rank again keeping the top 10 by heap
// selection. It reports the peak RSS of the whole test process, which the
// first sub-benchmark's buffers already raise. Target: drain and rank
// within 500 ms.
//
//	go test -run '^$' -bench ReadMillionFlows -benchtime 3x ./internal/capture/
func BenchmarkReadMillionFlows(b *testing.B) {
	for _, l := range layouts {
		b.Run(l.String(), func(b *testing.B) { benchRead(b, l, 1_000_000, true) })
	}
}

// BenchmarkDrain131k is the drain alone at 131,072 flows, the default
// table size, in each layout: the figure to compare on a machine with
// many CPUs, where a per-CPU table moves a value per CPU for every flow.
//
//	go test -run '^$' -bench Drain131k -benchtime 5x ./internal/capture/
func BenchmarkDrain131k(b *testing.B) {
	for _, l := range layouts {
		b.Run(l.String(), func(b *testing.B) { benchRead(b, l, 131072, false) })
	}
}

// benchRead fills a table of n flows in layout and drains it b.N times,
// ranking the rows after each drain when rank is set.
func benchRead(b *testing.B, layout flowtable.Layout, n int, rank bool) {
	h := loadHook(b, tcHook, testLoad{maxEntries: uint32(n), layout: layout})
	var rows []flow.Flow
	var readNs, rankNs, topNs time.Duration
	var filler tableFiller
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
		if len(snap.Flows) != n {
			b.Fatalf("drained %d flows, want %d", len(snap.Flows), n)
		}
		readNs += t1.Sub(t0)
		rows = snap.Flows
		if !rank {
			continue
		}
		top, _, rest := flow.Top(snap.Flows, 10, time.Second)
		t2 := time.Now()
		if len(top) != 10 || rest != n-10 {
			b.Fatalf("top 10 of %d: %d rows, %d left out", n, len(top), rest)
		}
		flow.RankRows(snap.Flows, time.Second)
		t3 := time.Now()
		topNs += t2.Sub(t1)
		rankNs += t3.Sub(t2)
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(per(readNs), "ms/drain")
	if !rank {
		return
	}
	b.ReportMetric(per(topNs), "ms/top10")
	b.ReportMetric(per(rankNs), "ms/rank-all")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
}
