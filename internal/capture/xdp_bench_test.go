package capture

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// BenchmarkXDPPerPacket measures what pktstat_xdp costs per frame, as the
// kernel times it in BPF_PROG_TEST_RUN, beside an empty XDP program
// measured in the same runs: the baseline that the harness costs by
// itself. The frame is a 60-byte IPv4 UDP packet of a single flow, so
// every run after the first is the common case: parse, one lookup that
// hits, two adds. Both programs StartXDP may load are measured: the
// single-buffer one (native mode at a standard MTU) and, where the kernel
// has multi-buffer XDP, the multi-buffer one (generic mode, jumbo MTUs),
// which asks a helper for every frame's length.
//
// One iteration is the median of 5 runs of 1e6 repeats per program, taking
// turns; run it with -benchtime 1x:
//
//	go test -run '^$' -bench XDPPerPacket -benchtime 1x ./internal/capture/
func BenchmarkXDPPerPacket(b *testing.B) {
	bpftest.RequireRoot(b)
	multiBuffer, err := ProbeXDPFrags()
	if err != nil {
		b.Fatal(err)
	}
	variants := []bool{false}
	if multiBuffer {
		variants = append(variants, true)
	}
	progs := []*ebpf.Program{bpftest.EmptyProgram(b, ebpf.XDP, xdpPass)}
	var loaded []hookUnderTest
	for _, frags := range variants {
		h := loadHook(b, xdpHook, testLoad{maxEntries: 131072, frags: frags})
		loaded = append(loaded, h)
		progs = append(progs, h.progs[0].prog)
	}

	frame, key := benchFrame(b)

	// measure returns the medians in ns/packet of the empty program and of
	// each loaded variant, and checks that each variant counted every run
	// in full.
	measure := func(b *testing.B) []float64 {
		b.Helper()
		for _, h := range loaded {
			drainAll(b, h.tb)
		}
		med, rets, err := bpftest.BenchmarkMedians(frame, benchRepeat, benchRuns, progs...)
		if err != nil {
			b.Fatal(err)
		}
		for i, ret := range rets {
			if ret != xdpPass {
				b.Fatalf("program %d returned %d, want XDP_PASS", i, ret)
			}
		}
		for i, h := range loaded {
			after, err := h.tb.Drain(nil)
			if err != nil {
				b.Fatal(err)
			}
			// A run interrupted by a signal is run again in full, so at least.
			if len(after.Flows) != 1 || after.Flows[0].Key != key {
				b.Fatalf("variant %d counted rows %+v, want one of %+v", i, after.Flows, key)
			}
			got := after.Flows[0].Counters
			if got.Packets < benchRuns*benchRepeat || got.Bytes != got.Packets*60 {
				b.Fatalf("variant %d counted %+v, want >= %d packets of 60 bytes", i, got, benchRuns*benchRepeat)
			}
		}
		ns := make([]float64, len(med))
		for i, d := range med {
			ns[i] = float64(d.Nanoseconds())
		}
		return ns
	}

	b.Run("empty", func(b *testing.B) {
		var sum float64
		for range b.N {
			sum += measure(b)[0]
		}
		b.ReportMetric(0, "ns/op") // wall time of a whole measurement: meaningless
		b.ReportMetric(sum/float64(b.N), "ns/pkt")
	})
	for i, frags := range variants {
		name := "pktstat-single-buffer"
		if frags {
			name = "pktstat-multi-buffer"
		}
		b.Run(name, func(b *testing.B) {
			var sumE, sumP float64
			for range b.N {
				ns := measure(b)
				sumE += ns[0]
				sumP += ns[1+i]
			}
			n := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(sumP/n, "ns/pkt")
			b.ReportMetric((sumP-sumE)/n, "ns/pkt-over-empty")
		})
	}
}
