package capture

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// baselineEnv names a directory that holds another build's tc_bpfel.o and
// xdp_bpfel.o (for example the last commit's:
// git show HEAD:internal/bpfprog/tc_bpfel.o > DIR/tc_bpfel.o). When set,
// BenchmarkL7 measures those programs too, taking turns with these in the
// same run: an A/B comparison on the same machine state. Any build's
// objects load, the first release's included (loadBench).
const baselineEnv = "PKTSTAT_BASELINE_OBJ_DIR"

// benchProgs are the programs of one scenario, measured in turns.
type benchProgs struct {
	names []string
	progs []*ebpf.Program
}

func (p *benchProgs) add(name string, prog *ebpf.Program) {
	p.names = append(p.names, name)
	p.progs = append(p.progs, prog)
}

// benchTC and benchXDP are the one program a benchmark runs of an object,
// as bpftest.Load assigns it (the maps stay alive with the program).
type benchTC struct {
	Prog *ebpf.Program `ebpf:"pktstat_ingress"`
}

func (o *benchTC) Close() error { return o.Prog.Close() }

type benchXDP struct {
	Prog *ebpf.Program `ebpf:"pktstat_xdp"`
}

func (o *benchXDP) Close() error { return o.Prog.Close() }

// specs returns this build's spec and, when baselineEnv is set, the
// baseline's, for an object file name (tc_bpfel.o, xdp_bpfel.o).
func specs(b *testing.B, load func() (*ebpf.CollectionSpec, error), file string) map[string]*ebpf.CollectionSpec {
	b.Helper()
	spec, err := load()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]*ebpf.CollectionSpec{"this": spec}
	if dir := os.Getenv(baselineEnv); dir != "" {
		base, err := ebpf.LoadCollectionSpec(filepath.Join(dir, file))
		if err != nil {
			b.Fatalf("load the baseline object: %v", err)
		}
		out["baseline"] = base
	}
	return out
}

// loadBench loads a benchmark's object with o's settings. A baseline
// built before the flow table had layouts (no shared_table constant, such
// as the first release's per-CPU hash behind its slot) is loaded as it was
// built: its own map types, the table sized for o, its ARP switch as o
// says; it has no flow cache or fast path to turn off.
func loadBench[O any, P interface {
	*O
	Close() error
}](b *testing.B, spec *ebpf.CollectionSpec, o testLoad) P {
	b.Helper()
	if _, ok := spec.Variables[bpfprog.TCVarSharedTable]; ok {
		return loadObjects[O, P](b, spec, o)
	}
	spec = spec.Copy()
	if v, ok := spec.Variables[bpfprog.TCVarArpDetail]; ok {
		if err := v.Set(!o.noARP); err != nil {
			b.Fatal(err)
		}
	}
	objs := P(new(O))
	bpftest.Load(b, spec, o.entries(spec), objs)
	return objs
}

// BenchmarkL7 measures the per-packet cost of the TC and XDP programs as
// the kernel times it in BPF_PROG_TEST_RUN, beside an empty program of the
// same type in the same run, in three scenarios:
//
//   - udp-known: the 60-byte single-flow UDP frame of BenchmarkTCPerPacket
//     and BenchmarkXDPPerPacket; its verdict (nothing recognised) was
//     settled on the first run, so every later run is the common case.
//   - tcp-known: a TCP segment with an HTTP request, whose flow is already
//     labelled HTTP: a flow-cache hit and one comparison.
//   - tcp-first: the same segment as the first packet of its flow, without
//     the flow cache (which would keep the flow): the table is full (one
//     row, taken by another flow), so the flow never gets a row and every
//     run detects the protocol, tries to insert, and counts the packet as
//     untracked. Beside the baseline build (which does the same minus
//     detection), the difference is detection's cost.
//
// Each iteration is the median of 5 runs of 1e6 repeats per program,
// taking turns; run it with -benchtime 1x:
//
//	PKTSTAT_BASELINE_OBJ_DIR=/tmp/base go test -run '^$' -bench L7 -benchtime 1x ./internal/capture/
func BenchmarkL7(b *testing.B) {
	const (
		repeat = 1_000_000
		runs   = 5
	)
	bpftest.RequireRoot(b)
	udp := bpftest.Frame(b, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolUDP),
		bpftest.UDP(), bpftest.Payload(18))
	tcp := bpftest.L7Frame(b, bpftest.HTTPRequest(b), false, false, 40555)
	other := bpftest.L7Frame(b, bpftest.Payload(20), true, false, 40556)
	x, err := bpftest.Expect(tcp, bpftest.Options{})
	if err != nil || !x.HasL4Payload {
		b.Fatalf("oracle: %v", err)
	}

	for _, hook := range []struct {
		name  string
		load  func() (*ebpf.CollectionSpec, error)
		file  string
		prog  func(*testing.B, *ebpf.CollectionSpec, testLoad) *ebpf.Program
		empty *ebpf.Program
	}{
		{"tc", bpfprog.LoadTC, "tc_bpfel.o", func(b *testing.B, spec *ebpf.CollectionSpec, o testLoad) *ebpf.Program {
			return loadBench[benchTC](b, spec, o).Prog
		}, bpftest.EmptyProgram(b, ebpf.SchedCLS, -1)},
		// The single-buffer XDP program, the one StartXDP loads for native
		// mode at a standard MTU (BenchmarkXDPPerPacket measures what the
		// multi-buffer one adds).
		{"xdp", bpfprog.LoadXDP, "xdp_bpfel.o", func(b *testing.B, spec *ebpf.CollectionSpec, o testLoad) *ebpf.Program {
			return loadBench[benchXDP](b, spec, o).Prog
		}, bpftest.EmptyProgram(b, ebpf.XDP, xdpPass)},
	} {
		for _, sc := range []struct {
			name  string
			frame []byte
			load  testLoad
			prime [][]byte // frames run once before measuring
		}{
			{"udp-known", udp, testLoad{maxEntries: 131072}, [][]byte{udp}},
			{"tcp-known", tcp, testLoad{maxEntries: 131072}, [][]byte{tcp}},
			{"tcp-first", tcp, testLoad{maxEntries: 1, noCache: true}, [][]byte{other}},
		} {
			b.Run(hook.name+"/"+sc.name, func(b *testing.B) {
				var ps benchProgs
				ps.add("empty", hook.empty)
				for _, name := range []string{"this", "baseline"} {
					spec, ok := specs(b, hook.load, hook.file)[name]
					if !ok {
						continue
					}
					prog := hook.prog(b, spec, sc.load)
					for _, f := range sc.prime {
						bpftest.Run(b, prog, f, nil)
					}
					ps.add(name, prog)
				}
				sums := make([]float64, len(ps.progs))
				for range b.N {
					med, _, err := bpftest.BenchmarkMedians(sc.frame, repeat, runs, ps.progs...)
					if err != nil {
						b.Fatal(err)
					}
					for i, d := range med {
						sums[i] += float64(d) / float64(time.Nanosecond)
					}
				}
				n := float64(b.N)
				b.ReportMetric(0, "ns/op")
				for i, name := range ps.names {
					b.ReportMetric(sums[i]/n, name+"-ns/pkt")
					if i > 0 {
						b.ReportMetric((sums[i]-sums[0])/n, name+"-over-empty-ns/pkt")
					}
				}
			})
		}
	}
}

// TestL7BenchScenarios checks that the benchmark's scenarios are what they
// claim: tcp-known labels the flow HTTP with one row; tcp-first leaves the
// flow without a row, every run counted as untracked.
func TestL7BenchScenarios(t *testing.T) {
	tcp := bpftest.L7Frame(t, bpftest.HTTPRequest(t), false, false, 40555)
	other := bpftest.L7Frame(t, bpftest.Payload(20), true, false, 40556)
	h := loadHook(t, tcHook, testLoad{maxEntries: 131072})
	for range 3 {
		bpftest.Run(t, h.progs[0].prog, tcp, nil)
	}
	snap, err := h.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Flows) != 1 || snap.Flows[0].L7 != flow.L7HTTP || snap.Flows[0].Packets != 3 {
		t.Errorf("tcp-known: rows %+v, want one HTTP row of 3 packets", snap.Flows)
	}
	full := loadHook(t, tcHook, testLoad{maxEntries: 1, noCache: true})
	bpftest.Run(t, full.progs[0].prog, other, nil)
	for range 3 {
		bpftest.Run(t, full.progs[0].prog, tcp, nil)
	}
	snap, err = full.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Flows) != 1 || snap.Untracked[flow.In].Packets != 3 {
		t.Errorf("tcp-first: rows %+v, untracked %+v; want the other flow's row and 3 untracked packets", snap.Flows, snap.Untracked)
	}
}

// BenchmarkL7FirstPacket measures a real first packet: a TCP segment with
// an HTTP request whose flow has no row yet, so the program misses the
// lookup, detects the protocol and inserts the row. That cannot repeat
// within one BPF_PROG_TEST_RUN call, so each call runs once, after the
// row is deleted; in turns with it run the same segment once more (the
// flow now known and labelled, one lookup) and an empty program, each a
// single run too, so that the calls' timing overhead is in all three. It
// reports medians over 2000 turns, and the first packet's cost over the
// known one: the insert and the detection.
//
//	go test -run '^$' -bench L7FirstPacket -benchtime 1x ./internal/capture/
func BenchmarkL7FirstPacket(b *testing.B) {
	const turns = 2000
	bpftest.RequireRoot(b)
	tcp := bpftest.L7Frame(b, bpftest.HTTPRequest(b), false, false, 40555)

	// Without the flow cache, which would keep the flow between calls.
	tc := loadHook(b, tcHook, testLoad{maxEntries: 131072, noCache: true})
	xdp := loadHook(b, xdpHook, testLoad{maxEntries: 131072, noCache: true})
	for _, hook := range []struct {
		name  string
		prog  *ebpf.Program
		tb    *flowtable.Table[bpfprog.FlowKey]
		empty *ebpf.Program
	}{
		{"tc", tc.progs[0].prog, tc.tb, bpftest.EmptyProgram(b, ebpf.SchedCLS, -1)},
		{"xdp", xdp.progs[0].prog, xdp.tb, bpftest.EmptyProgram(b, ebpf.XDP, xdpPass)},
	} {
		b.Run(hook.name, func(b *testing.B) {
			run := func(p *ebpf.Program) time.Duration {
				_, d, err := p.Benchmark(tcp, 1, nil)
				if err != nil {
					b.Fatal(err)
				}
				return d
			}
			run(hook.prog)
			if rows, err := hook.tb.Peek(); err != nil || len(rows) != 1 {
				b.Fatalf("after the first run: rows %+v (%v), want one", rows, err)
			}
			var first, known, empty []time.Duration
			for range b.N {
				for range turns {
					if _, err := hook.tb.TakeActive(); err != nil {
						b.Fatalf("remove the row: %v", err)
					}
					first = append(first, run(hook.prog))
					known = append(known, run(hook.prog))
					empty = append(empty, run(hook.empty))
				}
			}
			snap, err := hook.tb.Drain(nil)
			if err != nil {
				b.Fatal(err)
			}
			// The last turn's row: labelled HTTP by its first packet.
			if len(snap.Flows) != 1 || snap.Flows[0].L7 != flow.L7HTTP || snap.Flows[0].Packets != 2 {
				b.Fatalf("after the turns: rows %+v, want one HTTP row of 2 packets", snap.Flows)
			}
			med := func(ds []time.Duration) float64 {
				slices.Sort(ds)
				return float64(ds[len(ds)/2].Nanoseconds())
			}
			f, k, e := med(first), med(known), med(empty)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(e, "empty-ns/call")
			b.ReportMetric(f, "first-ns/call")
			b.ReportMetric(k, "known-ns/call")
			b.ReportMetric(f-k, "first-over-known-ns")
		})
	}
}
