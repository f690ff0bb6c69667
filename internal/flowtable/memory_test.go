package flowtable

import (
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
		// entries of 64 bytes per CPU.
		{2, Shared, 2*131072*136 + 2*256*64*2},
		{192, Shared, 2*131072*136 + 2*256*64*192},
		// 2 tables * 131072 * (96 + 16 + 8 + ncpu*24) bytes, and the cache.
		{2, PerCPU, 2*131072*168 + 2*256*64*2},
		{32, PerCPU, 2*131072*888 + 2*256*64*32},
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
	if err := CheckMemory(131072); err != nil {
		t.Errorf("the default table was refused with %s available: %v", MiB(avail), err)
	}
	// 2^32-1 flows need terabytes on any machine.
	err = CheckMemory(^uint32(0))
	if err == nil || !strings.Contains(err.Error(), "--max-entries 4294967295 would lock about") || !strings.Contains(err.Error(), "MiB available") {
		t.Errorf("a 4-billion-entry table gave %v, want an error that names the flag, the memory and what is available", err)
	}
}
