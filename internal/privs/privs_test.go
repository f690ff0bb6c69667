package privs

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSet(t *testing.T) {
	s := Of(CapNetAdmin, CapBPF)
	if !s.Has(CapBPF) || !s.Has(CapNetAdmin) || s.Has(CapPerfmon) || s != 1<<12|1<<39 {
		t.Errorf("Of(CAP_NET_ADMIN, CAP_BPF) = %#x", uint64(s))
	}
	if got := s.String(); got != "CAP_NET_ADMIN CAP_BPF" {
		t.Errorf("String() = %q", got)
	}
	if got := Set(0).String(); got != "none" {
		t.Errorf("String() of the empty set = %q", got)
	}
}

// TestDrop runs Drop in a child process (the test would lose its own
// capabilities otherwise) that keeps CAP_NET_ADMIN, and reads what the
// kernel says the child has left in /proc/self/status: CAP_NET_ADMIN
// alone in every set but the ambient one, which is empty, and
// no_new_privs.
func TestDrop(t *testing.T) {
	if os.Getenv("PKTSTAT_PRIVS_CHILD") != "" {
		var as *User
		if id, err := strconv.Atoi(os.Getenv("PKTSTAT_PRIVS_AS")); err == nil {
			as = &User{Name: "test", UID: id, GID: id}
		}
		r, err := Drop(Of(CapNetAdmin), as)
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error())
			os.Exit(1)
		}
		st, err := Status(0)
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error())
			os.Exit(1)
		}
		ids, err := idLines()
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error())
			os.Exit(1)
		}
		// Every thread has it after Drop: this one is any of them.
		var deathSig int
		if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&deathSig)), 0, 0, 0); err != nil {
			os.Stdout.WriteString("error: " + err.Error())
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(map[string]any{"bounding": r.Bounding, "status": st, "ids": ids, "deathsig": deathSig})
		os.Exit(0)
	}
	child := runChild(t, "")
	st := child.Status
	want := uint64(Of(CapNetAdmin))
	for _, k := range []string{"CapEff", "CapPrm"} {
		if st[k] != want {
			t.Errorf("%s = %#x, want %#x (CAP_NET_ADMIN)", k, st[k], want)
		}
	}
	if st["CapAmb"] != 0 || st["CapInh"] != 0 || st["NoNewPrivs"] != 1 {
		t.Errorf("CapAmb %#x, CapInh %#x, NoNewPrivs %d; want 0, 0, 1", st["CapAmb"], st["CapInh"], st["NoNewPrivs"])
	}
	if child.Bounding && st["CapBnd"] != want {
		t.Errorf("CapBnd = %#x after clearing it, want %#x", st["CapBnd"], want)
	}
}

// dropChild is what a child running TestDrop says: whether it cleared the
// bounding set, its capability sets and its ids as /proc/self/status has
// them.
type dropChild struct {
	Bounding bool
	DeathSig int
	Status   map[string]uint64
	IDs      map[string]string
}

// runChild runs TestDrop's child, which keeps CAP_NET_ADMIN and, with as
// a number, becomes that user and group id.
func runChild(t *testing.T, as string) dropChild {
	t.Helper()
	eff, err := Effective()
	if err != nil {
		t.Fatal(err)
	}
	if !eff.Has(CapNetAdmin) || !eff.Has(Cap(7)) /* CAP_SETUID */ {
		t.Skip("skipped: needs CAP_NET_ADMIN to see it kept and CAP_SETUID to switch users (run as root)")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestDrop$")
	cmd.Env = append(os.Environ(), "PKTSTAT_PRIVS_CHILD=1", "PKTSTAT_PRIVS_AS="+as)
	// As unshare --kill-child asks (on the child's main thread, before
	// exec): a switch of user must not lose it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	var child dropChild
	if err := json.Unmarshal(out, &child); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	return child
}

// idLines returns the Uid, Gid and Groups lines of /proc/self/status,
// whitespace folded.
func idLines() (map[string]string, error) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "Uid" || k == "Gid" || k == "Groups") {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out, nil
}

// TestDropAs switches a child to uid and gid 65534 (nobody's, on
// Debian) while it keeps CAP_NET_ADMIN: the kernel then reports those ids
// in all four places (real, effective, saved, file system), no
// supplementary groups, and CAP_NET_ADMIN still held.
func TestDropAs(t *testing.T) {
	child := runChild(t, "65534")
	uid, gid := "65534", "65534"
	if want := strings.Repeat(uid+" ", 3) + uid; child.IDs["Uid"] != want {
		t.Errorf("Uid: %q, want %q", child.IDs["Uid"], want)
	}
	if want := strings.Repeat(gid+" ", 3) + gid; child.IDs["Gid"] != want {
		t.Errorf("Gid: %q, want %q", child.IDs["Gid"], want)
	}
	if child.DeathSig != int(syscall.SIGTERM) {
		t.Errorf("parent-death signal %d after the switch, want SIGTERM (%d) as set before it", child.DeathSig, syscall.SIGTERM)
	}
	if child.IDs["Groups"] != "" {
		t.Errorf("Groups: %q, want none", child.IDs["Groups"])
	}
	want := uint64(Of(CapNetAdmin))
	if child.Status["CapEff"] != want || child.Status["CapPrm"] != want || child.Status["NoNewPrivs"] != 1 {
		t.Errorf("as nobody: CapEff %#x, CapPrm %#x, NoNewPrivs %d; want %#x, %#x, 1", child.Status["CapEff"], child.Status["CapPrm"], child.Status["NoNewPrivs"], want, want)
	}
}

func TestCanRead(t *testing.T) {
	dir := t.TempDir()
	u := &User{Name: "test", UID: 4242, GID: 4343}
	for _, c := range []struct {
		uid, gid int
		mode     os.FileMode
		want     bool
	}{
		{4242, 0, 0o400, true}, {4242, 0, 0o044, false}, // the owner's bits decide, alone
		{0, 4343, 0o040, true}, {0, 4343, 0o404, false},
		{0, 0, 0o004, true}, {0, 0, 0o440, false},
	} {
		p := filepath.Join(dir, fmt.Sprintf("f%d-%d-%o", c.uid, c.gid, c.mode))
		if err := os.WriteFile(p, nil, c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, c.uid, c.gid); err != nil {
			t.Skipf("skipped: chown needs root: %v", err)
		}
		if err := os.Chmod(p, c.mode); err != nil {
			t.Fatal(err)
		}
		if got := u.CanRead(p); got != c.want {
			t.Errorf("owner %d group %d mode %o: CanRead = %v, want %v", c.uid, c.gid, c.mode, got, c.want)
		}
	}
	if u.CanRead(filepath.Join(dir, "missing")) {
		t.Error("CanRead of a missing file = true")
	}
}
