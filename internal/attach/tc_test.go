package attach

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func TestFilterName(t *testing.T) {
	if got := filterName("0123456789abcdef", false); got != "pktstat-bpf:0123456789abcdef" {
		t.Errorf("filterName(id, false) = %q", got)
	}
	if got := filterName("0123456789abcdef", true); got != "pktstat-bpf:0123456789abcdef:clsact" {
		t.Errorf("filterName(id, true) = %q", got)
	}
}

// TestRunLock: a run ID is 16 hex digits, drawn anew for each run; its
// filters' owner is alive while the lock is held, in this process or in
// another one, and gone once it is released or its process has exited.
func TestRunLock(t *testing.T) {
	l, err := newRunLock()
	if err != nil {
		t.Fatal(err)
	}
	other, err := newRunLock()
	if err != nil {
		t.Fatal(err)
	}
	defer other.release()
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(l.id) || l.id == other.id {
		t.Fatalf("run IDs %q and %q", l.id, other.id)
	}
	for _, name := range []string{filterName(l.id, false), filterName(l.id, true)} {
		if !ownerAlive(name) {
			t.Errorf("ownerAlive(%q) = false while the lock is held", name)
		}
	}
	l.release()
	if ownerAlive(filterName(l.id, true)) {
		t.Errorf("ownerAlive after release = true")
	}
	if !ownerAlive(filterName(other.id, false)) {
		t.Errorf("releasing one run's lock released another's")
	}
	// An earlier version's filter names a PID; no lock has that name.
	if ownerAlive(filterNamePrefix + "1234:clsact") {
		t.Errorf("a PID-named filter counts as alive")
	}

	// A lock held by another process: alive while it runs, gone when it
	// is killed.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PKTSTAT_RUNLOCK_HOLDER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 17)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(string(buf))
	if !ownerAlive(filterName(id, false)) {
		t.Errorf("the holder's lock %q is not seen as alive", id)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if ownerAlive(filterName(id, false)) {
		t.Errorf("the killed holder's lock %q is still seen as alive", id)
	}
}

// TestMain runs the tests, or, started by TestRunLock as its other
// process, takes a run lock, prints its ID and waits to be killed.
func TestMain(m *testing.M) {
	if os.Getenv("PKTSTAT_RUNLOCK_HOLDER") != "" {
		l, err := newRunLock()
		if err != nil {
			os.Exit(1)
		}
		os.Stdout.WriteString(l.id + "\n")
		select {}
	}
	os.Exit(m.Run())
}
