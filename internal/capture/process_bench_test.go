package capture

import (
	"cmp"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// BenchmarkProcessOverhead measures what process mode costs the traffic it
// watches: one TCP connection between two namespaces, its sender and
// receiver in this process, with process mode's programs attached (the
// real capture, StartProcess as -k runs it) and detached, taking turns in
// the same run. Every iteration runs one transfer each way round, in
// alternating order; the figures are medians over the iterations, the
// ratios with / without. The machine is shared and its speed drifts, so
// only the ratios of one run mean anything; CPU time (user + system,
// softirq included where it runs in this process) moves less than wall
// time. program-runtime reports what each program costs per run.
//
//	go test -run '^$' -bench ProcessOverhead -benchtime 15x ./internal/capture/
func BenchmarkProcessOverhead(b *testing.B) {
	p := testnet.NewPair(b)
	p.PinNeighbors(b)
	var ln net.Listener
	if err := p.B.Do(func() (err error) { ln, err = net.Listen("tcp4", p.B.IPv4.String()+":0"); return }); err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var c net.Conn
	if err := p.A.Do(func() (err error) { c, err = net.Dial("tcp4", ln.Addr().String()); return }); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// The receiver drains everything, in reads of up to 64 KiB.
	drained := make(chan int64, 1)
	go func() {
		n, _ := io.CopyBuffer(io.Discard, s, make([]byte, 64<<10))
		drained <- n
	}()
	pr, err := StartProcess(ProcessOptions{MaxEntries: 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer pr.Close()
	if pr.Backend() != ProcessTracepoint {
		b.Logf("measuring the %s backend", pr.Backend())
	}

	for _, tc := range []struct {
		name  string
		write int // bytes per write call
		total int // bytes per transfer
	}{
		{"bulk-64KiB-writes", 64 << 10, 64 << 20},
		{"small-64B-writes", 64, 2 << 20},
	} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, tc.write)
			transfer := func() (wall, cpu time.Duration) {
				cpu0 := cpuTime(b)
				begin := time.Now()
				for sent := 0; sent < tc.total; sent += tc.write {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(begin), cpuTime(b) - cpu0
			}
			if err := pr.detachAll(); err != nil {
				b.Fatal(err)
			}
			transfer()                       // warm up: congestion window, caches
			var wall, cpu [2][]time.Duration // [0] without, [1] with
			for i := range b.N {
				for _, with := range [][2]bool{{false, true}, {true, false}}[i%2] {
					if with {
						if err := pr.attach(false); err != nil {
							b.Fatal(err)
						}
					}
					w, c := transfer()
					k := 0
					if with {
						k = 1
						if err := pr.detachAll(); err != nil {
							b.Fatal(err)
						}
					}
					wall[k], cpu[k] = append(wall[k], w), append(cpu[k], c)
				}
			}
			writes := float64(tc.total / tc.write)
			without, with := median(wall[0]), median(wall[1])
			b.ReportMetric(float64(tc.total)/without.Seconds()/1e6, "MB/s-without")
			b.ReportMetric(float64(tc.total)/with.Seconds()/1e6, "MB/s-with")
			b.ReportMetric(float64(without.Nanoseconds())/writes, "ns/write-without")
			b.ReportMetric(float64(with.Nanoseconds())/writes, "ns/write-with")
			b.ReportMetric(without.Seconds()/with.Seconds(), "throughput-ratio")
			b.ReportMetric(median(cpu[1]).Seconds()/median(cpu[0]).Seconds(), "cpu-ratio")
		})
	}
	// What each program costs per run, as the kernel measures it
	// (BPF_ENABLE_STATS: held by a file descriptor, for this process only;
	// the figure includes the two clock reads the measurement adds), in
	// the tool's flow table (the array from Linux 5.12) and in the shared
	// hash, loaded side by side and attached in turns.
	b.Run("program-runtime", func(b *testing.B) {
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			b.Skipf("skipped: run-time statistics unavailable: %v", err)
		}
		defer stats.Close()
		if err := pr.detachAll(); err != nil {
			b.Fatal(err)
		}
		hash, err := StartProcess(ProcessOptions{MaxEntries: 1024, Backend: pr.Backend(), layout: flowtable.Shared})
		if err != nil {
			b.Fatal(err)
		}
		defer hash.Close()
		if err := hash.detachAll(); err != nil {
			b.Fatal(err)
		}
		layouts := []struct {
			name string
			p    *Process
		}{{"", pr}, {"hash-", hash}}
		runtime := map[string]ebpf.ProgramStats{} // by layout and program, summed over turns
		buf := make([]byte, 64)
		for i := range b.N {
			for j := range layouts {
				l := layouts[(i+j)%len(layouts)]
				if err := l.p.attach(false); err != nil {
					b.Fatal(err)
				}
				before := programStats(b, l.p)
				for range 10000 {
					if _, err := c.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				after := programStats(b, l.p)
				if err := l.p.detachAll(); err != nil {
					b.Fatal(err)
				}
				for name, st := range after {
					sum := runtime[l.name+name]
					sum.RunCount += st.RunCount - before[name].RunCount
					sum.Runtime += st.Runtime - before[name].Runtime
					runtime[l.name+name] = sum
				}
			}
		}
		for _, l := range layouts {
			for _, name := range []string{progTPSend, progTPRecv, progOut, progIn} {
				st := runtime[l.name+name]
				if st.RunCount == 0 {
					continue
				}
				b.ReportMetric(float64(st.Runtime.Nanoseconds())/float64(st.RunCount), "ns/run-"+l.name+strings.TrimPrefix(name, "pktstat_"))
			}
		}
	})
	c.Close()
	<-drained
}

func programStats(b *testing.B, p *Process) map[string]ebpf.ProgramStats {
	out := map[string]ebpf.ProgramStats{}
	for name, prog := range p.Programs() {
		st, err := prog.Stats()
		if err != nil {
			b.Fatal(err)
		}
		out[name] = *st
	}
	return out
}

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// median is the middle value of xs (the upper middle for an even count),
// leaving xs as it is.
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
