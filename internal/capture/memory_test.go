package capture

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"golang.org/x/sys/unix"
)

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
	for _, want := range []string{"1048576 flows", flowtable.MiB(flowtable.Bytes(1<<20, ncpu, mustLayout(t))), "lower --max-entries"} {
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

// mustLayout is the flow table's layout on this kernel.
func mustLayout(t *testing.T) flowtable.Layout {
	t.Helper()
	l, err := defaultLayout()
	if err != nil {
		t.Fatal(err)
	}
	return l
}
