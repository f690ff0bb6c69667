package flowtable

import (
	"strings"
	"testing"
)

func TestTableBytes(t *testing.T) {
	// 131072 flows, 2 CPUs: 2 tables * 131072 * (104 + 16 + 2*24) bytes.
	if got, want := Bytes(131072, 2), uint64(2*131072*168); got != want {
		t.Errorf("Bytes = %d, want %d", got, want)
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
