package flowtable

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTableBytes(t *testing.T) {
	for _, c := range []struct {
		ncpu   int
		layout Layout
		want   uint64
	}{
		// 2 tables * 131072 * (96 + 16 + 24) bytes, and 2 * 256 cache
		// entries of 72 bytes per CPU.
		{2, Shared, 2*131072*136 + 2*256*72*2},
		{192, Shared, 2*131072*136 + 2*256*72*192},
		// 2 tables * 131072 * (96 + 16 + 8 + ncpu*24) bytes, and the cache.
		{2, PerCPU, 2*131072*168 + 2*256*72*2},
		{32, PerCPU, 2*131072*888 + 2*256*72*32},
		// 2 tables * 262144 slots * (8 + 48 + 24) bytes, and the cache.
		{2, Array, 2*262144*80 + 2*256*72*2},
		{192, Array, 2*262144*80 + 2*256*72*192},
	} {
		if got := Bytes(131072, c.ncpu, c.layout); got != c.want {
			t.Errorf("Bytes(131072, %d, %v) = %d, want %d", c.ncpu, c.layout, got, c.want)
		}
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
