package flowtable

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
)

func TestTableBytes(t *testing.T) {
	for _, c := range []struct {
		ncpu   int
		layout Layout
		want   uint64
	}{
		// 2 tables * 131072 * (96 + 16 + 24) bytes, and 2 generations of
		// cache entries of 72 bytes per CPU: 4096 a generation on 2 CPUs,
		// 256 on 192 (CacheBits).
		{2, Shared, 2*131072*136 + 2*4096*72*2},
		{192, Shared, 2*131072*136 + 2*256*72*192},
		// 2 tables * 131072 * (96 + 16 + 8 + ncpu*24) bytes, and the cache
		// (1024 a generation on 32 CPUs).
		{2, PerCPU, 2*131072*168 + 2*4096*72*2},
		{32, PerCPU, 2*131072*888 + 2*1024*72*32},
		// 2 tables * (1 + ncpu reservations, 262144 / 8 elements of
		// index, 131072 rows) * (8 + 48 + 24) bytes, and the cache.
		{2, Array, 2*(3+32768+131072)*80 + 2*4096*72*2},
		{192, Array, 2*(193+32768+131072)*80 + 2*256*72*192},
	} {
		if got := Bytes(131072, c.ncpu, c.layout); got != c.want {
			t.Errorf("Bytes(131072, %d, %v) = %d, want %d", c.ncpu, c.layout, got, c.want)
		}
	}
}

// TestCacheBits: the most entries per CPU, up to 4096, that keep every
// CPU's cache within 8 MiB, never fewer than 256; 256 where the kernel
// reads per-CPU arrays slot by slot.
func TestCacheBits(t *testing.T) {
	for _, c := range []struct {
		ncpu  int
		batch bool
		want  uint32
	}{
		{1, true, 12}, {2, true, 12}, {14, true, 12}, {15, true, 11}, {28, true, 11}, {29, true, 10},
		{32, true, 10}, {56, true, 10}, {57, true, 9}, {113, true, 9}, {114, true, 8}, {192, true, 8},
		{4096, true, 8},
		{2, false, 8}, {192, false, 8},
	} {
		got := CacheBits(c.ncpu, c.batch)
		if got != c.want {
			t.Errorf("CacheBits(%d, %v) = %d, want %d", c.ncpu, c.batch, got, c.want)
		}
		if bytes := cacheBytes(got, c.ncpu); got > cacheMinBits && bytes > 8<<20 {
			t.Errorf("CacheBits(%d, %v) = %d: %d bytes, over the budget", c.ncpu, c.batch, got, bytes)
		}
	}
}

// TestSizeCache: the map and the programs' constant follow the size;
// sizes out of range and objects without the constant are refused; an
// object without a cache is left as it is.
func TestSizeCache(t *testing.T) {
	for bits := uint32(cacheMinBits); bits <= cacheMaxBits; bits++ {
		spec, err := bpfprog.LoadXDP()
		if err != nil {
			t.Fatal(err)
		}
		if err := SizeCache(spec, bits); err != nil {
			t.Fatal(err)
		}
		var got uint32
		if err := spec.Variables[bpfprog.XDPVarFlowCacheBits].Get(&got); err != nil {
			t.Fatal(err)
		}
		if n := spec.Maps[bpfprog.XDPMapFlowCache].MaxEntries; n != 2<<bits || got != bits {
			t.Errorf("SizeCache(%d): %d entries, flow_cache_bits %d; want %d and %d", bits, n, got, 2<<bits, bits)
		}
	}
	for _, bits := range []uint32{7, 13} {
		spec, err := bpfprog.LoadTC()
		if err != nil {
			t.Fatal(err)
		}
		if err := SizeCache(spec, bits); err == nil {
			t.Errorf("SizeCache(%d) was accepted", bits)
		}
	}
	spec, err := bpfprog.LoadTC()
	if err != nil {
		t.Fatal(err)
	}
	delete(spec.Variables, bpfprog.TCVarFlowCacheBits)
	if err := SizeCache(spec, 10); err == nil || !strings.Contains(err.Error(), bpfprog.TCVarFlowCacheBits) {
		t.Errorf("an object without %s: %v", bpfprog.TCVarFlowCacheBits, err)
	}
	cg, err := bpfprog.LoadCgroup()
	if err != nil {
		t.Fatal(err)
	}
	before := cg.Copy()
	if err := SizeCache(cg, 0); err != nil || len(cg.Maps) != len(before.Maps) {
		t.Errorf("cgroup object (no cache): %v", err)
	}
}

func TestCheckTableMemory(t *testing.T) {
	avail, err := memAvailable()
	if err != nil {
		t.Skipf("skipped: no MemAvailable in /proc/meminfo: %v", err)
	}
	if err := CheckMemory(131072, Array); err != nil {
		t.Errorf("the default table was refused with %s available: %v", MiB(avail), err)
	}
	// 2^32-1 flows need terabytes on any machine.
	err = CheckMemory(^uint32(0), Shared)
	if err == nil || !strings.Contains(err.Error(), "--max-entries 4294967295 would lock about") || !strings.Contains(err.Error(), "MiB available") {
		t.Errorf("a 4-billion-entry table gave %v, want an error that names the flag, the memory and what is available", err)
	}
}

// TestCgroupMemoryLeft: the least room that the process's cgroup and its
// ancestors leave, where they set memory.max; none when none does.
func TestCgroupMemoryLeft(t *testing.T) {
	root := t.TempDir()
	write := func(rel, file, value string) {
		t.Helper()
		dir := filepath.Join(root, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	self := []byte("0::/kubepods/pod1/ctr\n")
	write("kubepods/pod1/ctr", "memory.max", "max")
	write("kubepods/pod1/ctr", "memory.current", "1000")
	if _, ok := cgroupMemoryLeft(self, root); ok {
		t.Fatal("a limit found where every level says max")
	}
	write("kubepods/pod1", "memory.max", "469762048") // 448 MiB
	write("kubepods/pod1", "memory.current", "67108864")
	write("kubepods", "memory.max", "8589934592")
	write("kubepods", "memory.current", "1073741824")
	if left, ok := cgroupMemoryLeft(self, root); !ok || left != 469762048-67108864 {
		t.Errorf("left %d (%v), want the pod's 384 MiB", left, ok)
	}
	write("kubepods/pod1", "memory.current", "500000000") // over its limit
	if left, ok := cgroupMemoryLeft(self, root); !ok || left != 0 {
		t.Errorf("left %d (%v), want 0 for a cgroup over its limit", left, ok)
	}
	if _, ok := cgroupMemoryLeft([]byte("12:memory:/x\n"), root); ok {
		t.Error("a limit found for a process in no cgroup v2 group")
	}
}
