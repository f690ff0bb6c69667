package capture

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// mapMemlock is the memory the kernel charges to this process's maps: the
// sum of memlock over the map fds in /proc/self/fdinfo.
func mapMemlock(t testing.TB) uint64 {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, fd := range fds {
		f, err := os.Open(filepath.Join("/proc/self/fdinfo", fd.Name()))
		if err != nil {
			continue // closed meanwhile (the ReadDir's own fd)
		}
		var isMap bool
		var memlock uint64
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			switch k {
			case "map_type":
				isMap = true
			case "memlock":
				memlock, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			}
		}
		f.Close()
		if isMap {
			sum += memlock
		}
	}
	return sum
}

// tcMapMemory loads the TC object with the default table size in layout,
// with its spare table, and returns the memory the kernel charges to the
// maps that adds.
func tcMapMemory(t testing.TB, layout flowtable.Layout) uint64 {
	t.Helper()
	before := mapMemlock(t)
	loadHook(t, tcHook, testLoad{maxEntries: cli.DefaultMaxEntries, layout: layout})
	return mapMemlock(t) - before
}

// TestMapMemory: at the default table size, the maps of the array and
// shared layouts cost at most 64 MiB whatever the CPU count, and
// flowtable.Bytes, which --max-entries is checked against, is within a
// quarter of what the kernel charges, in every layout.
func TestMapMemory(t *testing.T) {
	bpftest.RequireRoot(t)
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layouts {
		got := tcMapMemory(t, l)
		est := flowtable.Bytes(cli.DefaultMaxEntries, ncpu, l)
		t.Logf("%s, %d CPUs: the kernel charges %s, estimated %s", l, ncpu, flowtable.MiB(got), flowtable.MiB(est))
		if l != flowtable.PerCPU && got > 64<<20 {
			t.Errorf("%s layout: %s of maps at the default size, want at most 64 MiB", l, flowtable.MiB(got))
		}
		if lo, hi := got*3/4, got*5/4; est < lo || est > hi {
			t.Errorf("%s layout: estimated %d bytes, the kernel charges %d: more than 25%% apart", l, est, got)
		}
	}
}

// BenchmarkMapMemory reports the memory the kernel charges to the TC
// object's maps (both flow tables, the untracked counters and sketch) at
// the default table size, in each layout, on this machine's CPU count.
//
//	go test -run '^$' -bench MapMemory -benchtime 1x ./internal/capture/
func BenchmarkMapMemory(b *testing.B) {
	for _, l := range layouts {
		b.Run(l.String(), func(b *testing.B) {
			var sum uint64
			for range b.N {
				sum += tcMapMemory(b, l)
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(sum)/float64(b.N)/(1<<20), "map-MiB")
		})
	}
}
