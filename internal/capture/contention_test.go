package capture

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// hammer runs prog over frame repeat times on each of cpus at once, each
// on a thread pinned to its CPU with every signal blocked, so that the
// kernel never interrupts a run (an interrupted BPF_PROG_TEST_RUN is run
// again in full, which would count twice). It returns the time per
// packet that each CPU's run took.
func hammer(prog *ebpf.Program, frame []byte, repeat int, cpus ...int) ([]time.Duration, error) {
	per := make([]time.Duration, len(cpus))
	errs := make([]error, len(cpus))
	var start, done sync.WaitGroup
	start.Add(len(cpus))
	done.Add(len(cpus))
	for i, cpu := range cpus {
		go func() {
			defer done.Done()
			runtime.LockOSThread() // the thread ends with the goroutine
			var set unix.CPUSet
			set.Set(cpu)
			err := unix.SchedSetaffinity(0, &set)
			if err == nil {
				var all unix.Sigset_t
				for w := range all.Val {
					all.Val[w] = ^uint64(0)
				}
				err = unix.PthreadSigmask(unix.SIG_BLOCK, &all, nil)
			}
			start.Done()
			start.Wait() // both threads are pinned before either runs
			if err != nil {
				errs[i] = fmt.Errorf("pin to CPU %d: %w", cpu, err)
				return
			}
			_, per[i], errs[i] = prog.Benchmark(frame, repeat, nil)
		}()
	}
	done.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return per, nil
}

// TestContention: CPUs 0 and 1 count one flow at once, 2 million packets
// each, in each layout, with the flow cache and without (where every
// packet adds to the table's value). The row holds exactly 4 million
// packets of 60 bytes: the shared table's atomic adds lose nothing when
// two CPUs add to one value at once, nor do the caches that each CPU
// empties into it. The per-packet cost each CPU saw is logged beside CPU
// 0's alone (BenchmarkContention reports it).
func TestContention(t *testing.T) {
	bpftest.RequireRoot(t)
	if runtime.NumCPU() < 2 {
		t.Skip("skipped: needs 2 CPUs to count one flow on two at once")
	}
	const repeat = 2_000_000
	frame, key := benchFrame(t)
	for _, v := range benchVariants {
		t.Run(v.name(), func(t *testing.T) {
			h := loadHook(t, tcHook, testLoad{layout: v.layout, noCache: v.noCache})
			alone, err := hammer(h.tc.PktstatIngress, frame, repeat, 0)
			if err != nil {
				t.Fatal(err)
			}
			drainAll(t, h.tb)
			both, err := hammer(h.tc.PktstatIngress, frame, repeat, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := h.tb.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.Flows) != 1 || snap.Flows[0].Key != key {
				t.Fatalf("rows %+v, want one of %+v", snap.Flows, key)
			}
			if got := snap.Flows[0].Counters; got.Packets != 2*repeat || got.Bytes != 2*repeat*60 {
				t.Errorf("two CPUs counted %+v, want exactly %d packets and %d bytes", got, 2*repeat, 2*repeat*60)
			}
			t.Logf("%s: %v per packet on CPU 0 alone; %v and %v on CPUs 0 and 1 at once", v.name(), alone[0], both[0], both[1])
		})
	}
}

// BenchmarkContention reports what pktstat_ingress costs per packet when
// CPUs 0 and 1 count one flow at once (the mean of the two CPUs), and on
// CPU 0 alone, in each layout, with the flow cache and without: without
// it, the price of sharing one value's cache line, which flows on their
// own CPUs (RSS) do not pay.
//
//	go test -run '^$' -bench Contention -benchtime 5x ./internal/capture/
func BenchmarkContention(b *testing.B) {
	bpftest.RequireRoot(b)
	if runtime.NumCPU() < 2 {
		b.Skip("skipped: needs 2 CPUs to count one flow on two at once")
	}
	frame, _ := benchFrame(b)
	for _, v := range benchVariants {
		b.Run(v.name(), func(b *testing.B) {
			h := loadHook(b, tcHook, testLoad{layout: v.layout, noCache: v.noCache})
			var alone, both time.Duration
			for range b.N {
				a, err := hammer(h.tc.PktstatIngress, frame, benchRepeat, 0)
				if err != nil {
					b.Fatal(err)
				}
				two, err := hammer(h.tc.PktstatIngress, frame, benchRepeat, 0, 1)
				if err != nil {
					b.Fatal(err)
				}
				alone += a[0]
				both += (two[0] + two[1]) / 2
				drainAll(b, h.tb)
			}
			n := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(alone.Nanoseconds())/n, "ns/pkt-one-CPU")
			b.ReportMetric(float64(both.Nanoseconds())/n, "ns/pkt-two-CPUs")
		})
	}
}
