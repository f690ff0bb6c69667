package capture

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpftest"
)

// BenchmarkXDPPerPacket measures what pktstat_xdp costs per frame, as the
// kernel times it in BPF_PROG_TEST_RUN, beside an empty XDP program
// measured in the same run: the baseline that the harness costs by itself.
// The frame is a 60-byte IPv4 UDP packet of a single flow, so every run
// after the first is the common case: parse, one lookup that hits, two
// adds. The program is the one StartXDP loads on this kernel (frags-aware
// where the kernel has multi-buffer XDP).
//
// One iteration is the median of 5 runs of 1e6 repeats per program, taking
// turns; run it with -benchtime 1x:
//
//	go test -run '^$' -bench XDPPerPacket -benchtime 1x ./internal/capture/
func BenchmarkXDPPerPacket(b *testing.B) {
	const (
		repeat = 1_000_000
		runs   = 5
	)
	bpftest.RequireRoot(b)
	frags, err := ProbeXDPFrags()
	if err != nil {
		b.Fatal(err)
	}
	x, err := loadXDP(131072, frags, false, 0)
	if err != nil {
		b.Fatalf("load XDP program: %+v", err)
	}
	b.Cleanup(func() { x.objs.Close() })
	empty := bpftest.EmptyProgram(b, ebpf.XDP, xdpPass)

	frame := bpftest.Frame(b, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolUDP),
		bpftest.UDP(), bpftest.Payload(18))
	if len(frame) != 60 {
		b.Fatalf("frame is %d bytes, want 60", len(frame))
	}
	key, err := bpftest.ExpectedKey(frame)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("multi-buffer (frags-aware) program: %v", frags)

	// measure returns the medians in ns/packet of the empty program and of
	// pktstat_xdp, and checks that pktstat counted every run in full.
	measure := func(b *testing.B) (emptyNs, pktstatNs float64) {
		b.Helper()
		if _, err := x.Drain(); err != nil {
			b.Fatal(err)
		}
		med, rets, err := bpftest.BenchmarkMedians(frame, repeat, runs, empty, x.objs.PktstatXdp)
		if err != nil {
			b.Fatal(err)
		}
		for i, ret := range rets {
			if ret != xdpPass {
				b.Fatalf("program %d returned %d, want XDP_PASS", i, ret)
			}
		}
		after, err := x.Drain()
		if err != nil {
			b.Fatal(err)
		}
		// A run interrupted by a signal is run again in full, so at least.
		if len(after.Flows) != 1 || after.Flows[0].Key != key {
			b.Fatalf("pktstat counted rows %+v, want one of %+v", after.Flows, key)
		}
		got := after.Flows[0].Counters
		if got.Packets < runs*repeat || got.Bytes != got.Packets*60 {
			b.Fatalf("pktstat counted %+v in %d rows, want >= %d packets of 60 bytes in 1", got, len(after.Flows), runs*repeat)
		}
		return float64(med[0].Nanoseconds()), float64(med[1].Nanoseconds())
	}

	b.Run("empty", func(b *testing.B) {
		var sum float64
		for range b.N {
			e, _ := measure(b)
			sum += e
		}
		b.ReportMetric(0, "ns/op") // wall time of a whole measurement: meaningless
		b.ReportMetric(sum/float64(b.N), "ns/pkt")
	})
	b.Run("pktstat", func(b *testing.B) {
		var sumE, sumP float64
		for range b.N {
			e, p := measure(b)
			sumE += e
			sumP += p
		}
		n := float64(b.N)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(sumP/n, "ns/pkt")
		b.ReportMetric((sumP-sumE)/n, "ns/pkt-over-empty")
	})
}
