package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/livegen"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// BenchmarkXDPLive measures the rate at which native XDP on a veth takes
// frames with the tool's program attached, against an empty XDP_PASS
// program on the same veth in the same run: the frames are sent with
// livegen (BPF_PROG_TEST_RUN in live-frames mode) out of A's end into B's,
// where the program runs in B's receive softirq, after which B's stack
// builds an skb for each frame and drops it (the destination MAC is not
// B's). The kernel's time for a send covers both, so the figure is what
// counting costs a receiving CPU that passes every frame on.
//
// Frames are 60-byte IPv4 UDP, round-robin over 1, 64, 4096 or 32,768
// flows: 4096 fill the largest flow cache (4096 slots a CPU, on up to 14
// CPUs), with some flows sharing slots, and 32,768 are far more than it
// holds, so nearly every frame goes to the table. Rows
// exist before the measured sends, as they do for flows that are not new.
// Each iteration sends 2 million frames per program, in turns, 5 times,
// and reports the medians: Mpps and the percentage of the empty
// program's. The tool's program runs with the array table of 131,072 rows
// (the tool's way), the shared hash (before Linux 5.12), the array table
// and the per-CPU hash without the flow cache, and an array table of
// 8,192 rows (which 32,768 flows overflow), and the array table behind
// the smallest flow cache (256 slots a CPU); with PKTSTAT_BASELINE_OBJ_DIR
// set, another build's program too (BenchmarkL7).
//
//	go test -run '^$' -bench XDPLive -benchtime 1x -count 3 ./internal/capture/
func BenchmarkXDPLive(b *testing.B) {
	const (
		frames = 2_000_000
		runs   = 5
	)
	bpftest.RequireRoot(b)
	if err := livegen.Probe(); err != nil {
		b.Skipf("skipped: the traffic source needs live-frames mode: %v", err)
	}
	p := testnet.NewPair(b)
	// The sender on one CPU, the last: the kernel runs B's receive
	// softirq on the CPU that sent, so every frame's whole cost lands on
	// one CPU, away from the Go runtime's other threads where there is
	// more than one.
	pinned := func(fn func() error) error {
		return p.A.Do(func() error {
			var all, one unix.CPUSet
			if err := unix.SchedGetaffinity(0, &all); err != nil {
				return fmt.Errorf("read the CPU affinity: %w", err)
			}
			last := -1
			for c := range 1024 {
				if all.IsSet(c) {
					last = c
				}
			}
			one.Set(last)
			if err := unix.SchedSetaffinity(0, &one); err != nil {
				return fmt.Errorf("pin the sender to CPU %d: %w", last, err)
			}
			defer unix.SchedSetaffinity(0, &all)
			return fn()
		})
	}
	gen, err := livegen.New(p.A.Link, 32768, pinned)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { gen.Close() })

	type variant struct {
		name string
		prog *ebpf.Program
	}
	variants := []variant{{"empty", bpftest.EmptyProgram(b, ebpf.XDP, xdpPass)}}
	for _, v := range []benchVariant{{flowtable.Array, false}, {flowtable.Shared, false}, {flowtable.Array, true}, {flowtable.PerCPU, true}} {
		h := loadHook(b, xdpHook, testLoad{maxEntries: 131072, layout: v.layout, noCache: v.noCache})
		variants = append(variants, variant{"pktstat-" + v.name(), h.progs[0].prog})
	}
	// The array table's rows are spread over all its slots, so at
	// thousands of flows most frames touch a page of their own: the same
	// table with 8,192 rows shows what the spread costs.
	small := loadHook(b, xdpHook, testLoad{maxEntries: 8192, layout: flowtable.Array})
	variants = append(variants, variant{"pktstat-array-8192-rows", small.progs[0].prog})
	// The smallest flow cache, 256 slots a CPU (flowtable.CacheBits):
	// what the cache's size is worth at thousands of flows.
	least := loadHook(b, xdpHook, testLoad{maxEntries: 131072, layout: flowtable.Array, cacheBits: 8})
	variants = append(variants, variant{"pktstat-array-256-cache-slots", least.progs[0].prog})
	if spec, ok := specs(b, bpfprog.LoadXDP, "xdp_bpfel.o")["baseline"]; ok {
		variants = append(variants, variant{"baseline", loadBench[benchXDP](b, spec, testLoad{maxEntries: 131072}).Prog})
	}

	for _, nFlows := range []int{1, 64, 4096, 32768} {
		fs := liveFrames(b, nFlows, frames)
		b.Run(fmt.Sprintf("%d-flows", nFlows), func(b *testing.B) {
			send := func(v variant) float64 {
				b.Helper()
				var l link.Link
				if err := p.B.Do(func() (err error) {
					l, err = link.AttachXDP(link.XDPOptions{Program: v.prog, Interface: p.B.Index, Flags: link.XDPDriverMode})
					return err
				}); err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				// When the receiving softirq falls behind (the machine is
				// busy), B's ring overflows and the rate is not the
				// program's: that send starts over.
				for attempt := 1; ; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					rep, err := gen.Send(ctx, fs)
					cancel()
					if err != nil && !errors.Is(err, livegen.ErrNotDelivered) {
						b.Fatal(err)
					}
					if rep.Refused <= rep.Runs/1000 {
						return rep.KernelRate()
					}
					if attempt == 5 {
						b.Fatalf("%s: the veth refused %d of %d frames in each of 5 sends: the rate is not the program's", v.name, rep.Refused, rep.Runs)
					}
				}
			}
			// Every program's flows known, and each cache warm, before
			// the measured sends.
			for _, v := range variants {
				send(v)
			}
			rates := make([][]float64, len(variants))
			sums := make([]float64, len(variants))
			for range b.N {
				for i := range rates {
					rates[i] = rates[i][:0]
				}
				for range runs {
					for i, v := range variants {
						rates[i] = append(rates[i], send(v))
					}
				}
				for i := range rates {
					sums[i] += median(rates[i])
				}
			}
			b.ReportMetric(0, "ns/op")
			n := float64(b.N)
			for i, v := range variants {
				b.ReportMetric(sums[i]/n/1e6, v.name+"-Mpps")
				if i > 0 {
					b.ReportMetric(100*sums[i]/sums[0], v.name+"-%-of-empty")
				}
			}
		})
	}
}

// liveFrames are nFlows distinct 60-byte IPv4 UDP frames, which differ in
// their source port, with total copies in all.
func liveFrames(b *testing.B, nFlows, total int) []livegen.Frame {
	b.Helper()
	out := make([]livegen.Frame, nFlows)
	for i := range out {
		udp := bpftest.UDP()
		udp.SrcPort = layers.UDPPort(20000 + i)
		eth := bpftest.Eth(layers.EthernetTypeIPv4)
		// Not B's address: B's stack drops the frame as soon as it has
		// an skb (PACKET_OTHERHOST), so IP does not bound the rate.
		eth.DstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0xbe, 0xef}
		out[i] = livegen.Frame{
			Data:  bpftest.Frame(b, eth, bpftest.IPv4(layers.IPProtocolUDP), udp, bpftest.Payload(18)),
			Count: uint32(total / nFlows),
		}
	}
	return out
}
