package attach

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestFilterName(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	if got := filterName(false); got != "pktstat-bpf:"+pid {
		t.Errorf("filterName(false) = %q", got)
	}
	if got := filterName(true); got != "pktstat-bpf:"+pid+":clsact" {
		t.Errorf("filterName(true) = %q", got)
	}
}

// TestOwnerAlive: a filter's run is alive while a process of the same name
// as this one holds its PID, whatever the binary is called; a process of
// another name, or no process, means the run is gone.
func TestOwnerAlive(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("skipped: needs sleep: %v", err)
	}
	raw, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	// A sleep whose process name is this test's: a run of the same program.
	same := filepath.Join(t.TempDir(), strings.TrimSpace(string(self)))
	if err := os.WriteFile(same, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(path string) int {
		t.Helper()
		cmd := exec.Command(path, "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd.Process.Pid
	}
	alive, other := start(same), start(sleep)
	for _, c := range []struct {
		name string
		want bool
	}{
		{filterName(false), true},
		{filterNamePrefix + strconv.Itoa(alive), true},
		{filterNamePrefix + strconv.Itoa(alive) + ownsQdiscMark, true},
		{filterNamePrefix + strconv.Itoa(other), false},
		{filterNamePrefix + strconv.Itoa(other) + ownsQdiscMark, false},
		{filterNamePrefix + "not-a-pid", false},
	} {
		if got := ownerAlive(c.name); got != c.want {
			t.Errorf("ownerAlive(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
