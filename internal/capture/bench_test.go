package capture

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// BenchmarkTCPerPacket measures what pktstat_ingress costs per packet, as
// the kernel times it in BPF_PROG_TEST_RUN, in each flow-table layout,
// with the flow cache (as the tool runs) and without, beside an empty
// SchedCLS program measured in the same runs (the baseline that the test
// harness costs by itself) and beside the least a flow counter can do
// (bpftest.CounterProgram) in a per-CPU and a shared hash. The frame is a
// 60-byte IPv4 UDP packet of a single flow, so every run after the first
// is the common case: a flow in the cache, or a table lookup that hits.
//
// Each sub-benchmark's iteration is the median of 5 runs of 1e6 repeats of
// the empty program and its own, taking turns; run it with -benchtime 1x:
//
//	go test -run '^$' -bench PerPacket -benchtime 5x ./internal/capture/
func BenchmarkTCPerPacket(b *testing.B) {
	bpftest.RequireRoot(b)
	var progs []benchProg
	for _, v := range benchVariants {
		// The table size the object declares, which is also the CLI's default.
		h := loadHook(b, tcHook, testLoad{layout: v.layout, noCache: v.noCache})
		progs = append(progs, pktstatBench("pktstat-"+v.name(), h.tc.PktstatIngress, h.tb))
	}
	perPacket(b, ebpf.SchedCLS, int32(tcPass()), progs)
}

// benchVariant is a way the per-packet benchmarks load the tool's
// programs: a flow-table layout, with or without the flow cache.
type benchVariant struct {
	layout  flowtable.Layout
	noCache bool
}

func (v benchVariant) name() string {
	if v.noCache {
		return v.layout.String() + "-no-cache"
	}
	return v.layout.String()
}

// benchVariants are the tool's way (array, with the cache; shared before
// Linux 5.12) and the others, for comparison in the same run.
var benchVariants = []benchVariant{
	{flowtable.Array, false}, {flowtable.Shared, false}, {flowtable.PerCPU, false},
	{flowtable.Array, true}, {flowtable.Shared, true}, {flowtable.PerCPU, true},
}

// benchProg is a program that a per-packet benchmark measures, and how it
// checks what the program counted.
type benchProg struct {
	name  string
	prog  *ebpf.Program
	reset func(b *testing.B)
	// check fails b unless the program counted at least packets frames of
	// the benchmark's single flow, 60 bytes each: a run interrupted by a
	// signal is run again in full.
	check func(b *testing.B, key flow.Key, packets uint64)
}

// pktstatBench measures one of the tool's programs, which counts into tb.
func pktstatBench(name string, prog *ebpf.Program, tb *flowtable.Table[bpfprog.FlowKey]) benchProg {
	return benchProg{
		name:  name,
		prog:  prog,
		reset: func(b *testing.B) { drainAll(b, tb) },
		check: func(b *testing.B, key flow.Key, packets uint64) {
			b.Helper()
			after, err := tb.Drain(nil)
			if err != nil {
				b.Fatal(err)
			}
			if len(after.Flows) != 1 || after.Flows[0].Key != key {
				b.Fatalf("%s counted rows %+v, want one of %+v", name, after.Flows, key)
			}
			if got := after.Flows[0].Counters; got.Packets < packets || got.Bytes != got.Packets*60 {
				b.Fatalf("%s counted %+v, want >= %d packets of 60 bytes", name, got, packets)
			}
		},
	}
}

// counterBenches are the floor under the flow table: the least a counter
// costs per packet in a per-CPU and in a shared hash.
func counterBenches(b *testing.B, typ ebpf.ProgramType, ret int32) []benchProg {
	var out []benchProg
	for _, c := range []struct {
		name string
		typ  ebpf.MapType
	}{{"counter-per-CPU", ebpf.PerCPUHash}, {"counter-shared", ebpf.Hash}} {
		prog, m := bpftest.CounterProgram(b, typ, ret, c.typ)
		key := make([]byte, 48)
		read := func(b *testing.B) (packets, bytes uint64) {
			b.Helper()
			var vals [][2]uint64
			if c.typ == ebpf.PerCPUHash {
				if err := m.Lookup(key, &vals); err != nil {
					b.Fatal(err)
				}
			} else {
				var v [2]uint64
				if err := m.Lookup(key, &v); err != nil {
					b.Fatal(err)
				}
				vals = append(vals, v)
			}
			for _, v := range vals {
				packets += v[0]
				bytes += v[1]
			}
			return packets, bytes
		}
		var before uint64
		out = append(out, benchProg{
			name:  c.name,
			prog:  prog,
			reset: func(b *testing.B) { before, _ = read(b) },
			check: func(b *testing.B, _ flow.Key, packets uint64) {
				b.Helper()
				got, bytes := read(b)
				if got-before < packets || bytes != got*60 {
					b.Fatalf("%s counted %d packets and %d bytes, want >= %d packets of 60 bytes", c.name, got-before, bytes, packets)
				}
			},
		})
	}
	return out
}

// perPacket measures the tool's progs, and the counters of
// counterBenches, each in a sub-benchmark of its own beside an empty
// program of type typ measured in the same runs; ret is what every
// program returns. It reports ns/pkt and ns/pkt-over-empty.
func perPacket(b *testing.B, typ ebpf.ProgramType, ret int32, progs []benchProg) {
	frame, key := benchFrame(b)
	empty := bpftest.EmptyProgram(b, typ, ret)
	b.Run("empty", func(b *testing.B) {
		var sum float64
		for range b.N {
			med, _, err := bpftest.BenchmarkMedians(frame, benchRepeat, benchRuns, empty)
			if err != nil {
				b.Fatal(err)
			}
			sum += float64(med[0].Nanoseconds())
		}
		b.ReportMetric(0, "ns/op") // wall time of a whole measurement: meaningless
		b.ReportMetric(sum/float64(b.N), "ns/pkt")
	})
	for _, p := range append(counterBenches(b, typ, ret), progs...) {
		b.Run(p.name, func(b *testing.B) {
			var sumE, sumP float64
			for range b.N {
				p.reset(b)
				med, rets, err := bpftest.BenchmarkMedians(frame, benchRepeat, benchRuns, empty, p.prog)
				if err != nil {
					b.Fatal(err)
				}
				for i, r := range rets {
					if r != uint32(ret) {
						b.Fatalf("program %d returned %#x, want %#x", i, r, ret)
					}
				}
				p.check(b, key, benchRuns*benchRepeat)
				sumE += float64(med[0].Nanoseconds())
				sumP += float64(med[1].Nanoseconds())
			}
			n := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(sumP/n, "ns/pkt")
			b.ReportMetric((sumP-sumE)/n, "ns/pkt-over-empty")
		})
	}
}

// Each iteration of the per-packet benchmarks is the median of benchRuns
// runs of benchRepeat repeats per program.
const (
	benchRepeat = 1_000_000
	benchRuns   = 5
)

// benchFrame is the frame the per-packet benchmarks run: a 60-byte IPv4
// UDP packet of a single flow, and the key it is counted under.
func benchFrame(b testing.TB) ([]byte, flow.Key) {
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
