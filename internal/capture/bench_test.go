package capture

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// BenchmarkTCPerPacket measures what pktstat_ingress costs per packet, as
// the kernel times it in BPF_PROG_TEST_RUN, beside an empty SchedCLS
// program measured in the same run: the baseline that the test harness
// costs by itself. The frame is a 60-byte IPv4 UDP packet of a single flow,
// so every run after the first is the common case: a lookup that hits.
//
// One iteration is the median of 5 runs of 1e6 repeats per program, taking
// turns; run it with -benchtime 1x.
func BenchmarkTCPerPacket(b *testing.B) {
	bpftest.RequireRoot(b)
	// The table size the object declares, which is also the CLI's default.
	h := loadHook(b, tcHook, testLoad{})
	objs, tb := h.tc, h.tb
	empty := bpftest.EmptyProgram(b, ebpf.SchedCLS, -1)

	frame, key := benchFrame(b)

	// measure returns the medians in ns/packet of the empty program and of
	// pktstat_ingress, and checks that pktstat counted every run.
	measure := func(b *testing.B) (emptyNs, pktstatNs float64) {
		b.Helper()
		drainAll(b, tb)
		med, rets, err := bpftest.BenchmarkMedians(frame, benchRepeat, benchRuns, empty, objs.PktstatIngress)
		if err != nil {
			b.Fatal(err)
		}
		for i, ret := range rets {
			if ret != tcPass() {
				b.Fatalf("program %d returned %#x, want %#x", i, ret, tcPass())
			}
		}
		after, err := tb.Drain(nil)
		if err != nil {
			b.Fatal(err)
		}
		// A run interrupted by a signal is run again in full, so at least.
		if len(after.Flows) != 1 || after.Flows[0].Key != key || after.Flows[0].Packets < benchRuns*benchRepeat {
			b.Fatalf("pktstat counted %+v, want one row %+v with >= %d packets", after.Flows, key, benchRuns*benchRepeat)
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

// Each iteration of the per-packet benchmarks is the median of benchRuns
// runs of benchRepeat repeats per program.
const (
	benchRepeat = 1_000_000
	benchRuns   = 5
)

// benchFrame is the frame the per-packet benchmarks run: a 60-byte IPv4
// UDP packet of a single flow, and the key it is counted under.
func benchFrame(b *testing.B) ([]byte, flow.Key) {
	b.Helper()
	frame := bpftest.Frame(b, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolUDP),
		bpftest.UDP(), bpftest.Payload(18))
	if len(frame) != 60 {
		b.Fatalf("frame is %d bytes, want 60", len(frame))
	}
	key, err := bpftest.ExpectedKey(frame)
	if err != nil {
		b.Fatal(err)
	}
	return frame, key
}
