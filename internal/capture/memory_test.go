package capture

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

func TestTableBytes(t *testing.T) {
	// 131072 flows, 2 CPUs: 2 tables * 131072 * (104 + 16 + 2*24) bytes.
	if got, want := tableBytes(131072, 2), uint64(2*131072*168); got != want {
		t.Errorf("tableBytes = %d, want %d", got, want)
	}
}

func TestCheckTableMemory(t *testing.T) {
	avail, err := memAvailable()
	if err != nil {
		t.Skipf("skipped: no MemAvailable in /proc/meminfo: %v", err)
	}
	if err := checkTableMemory(131072); err != nil {
		t.Errorf("the default table was refused with %s available: %v", mib(avail), err)
	}
	// 2^32-1 flows need terabytes on any machine.
	err = checkTableMemory(^uint32(0))
	if err == nil || !strings.Contains(err.Error(), "--max-entries 4294967295 would lock about") || !strings.Contains(err.Error(), "MiB available") {
		t.Errorf("a 4-billion-entry table gave %v, want an error that names the flag, the memory and what is available", err)
	}
}

// TestLoadErrorNamesTheTableSize: when the kernel refuses the flow tables
// (a memory limit below what the host has available), the error names their
// size and what they would lock, and keeps the kernel's error.
func TestLoadErrorNamesTheTableSize(t *testing.T) {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	cause := fmt.Errorf("map create: %w", unix.ENOMEM)
	got := loadError(cause, 1<<20)
	for _, want := range []string{"1048576 flows", mib(tableBytes(1<<20, ncpu)), "lower --max-entries"} {
		if !strings.Contains(got.Error(), want) {
			t.Errorf("loadError = %q, want it to say %q", got, want)
		}
	}
	if !errors.Is(got, unix.ENOMEM) {
		t.Errorf("loadError = %q lost the kernel's error", got)
	}
	// A probe has no table: the message does not invent one.
	if got := loadError(cause, 0); strings.Contains(got.Error(), "flow tables") {
		t.Errorf("loadError without a table = %q", got)
	}
}
