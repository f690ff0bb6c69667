package cgroups

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// v2Root returns a mount point of cgroup v2, or skips: without one there
// is nothing for cgroup mode to watch.
func v2Root(t *testing.T) string {
	t.Helper()
	m := Mounts("cgroup2")
	if len(m) == 0 {
		t.Skip("skipped: no cgroup v2 hierarchy is mounted on this host")
	}
	return m[0]
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// TestOpenRejects checks that each kind of bad path gets an error naming
// its problem and saying where cgroup v2 is.
func TestOpenRejects(t *testing.T) {
	root := v2Root(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hint := "cgroup v2 is mounted at " + root

	_, err := Open("")
	wantErr(t, err, "no cgroup path given")

	_, err = Open(filepath.Join(tmp, "missing"))
	wantErr(t, err, filepath.Join(tmp, "missing")+" does not exist", hint)

	_, err = Open(file)
	wantErr(t, err, file+" is a file, not a directory", hint)

	// A cgroup v2 control file is a file too, on the right file system.
	_, err = Open(filepath.Join(root, "cgroup.procs"))
	wantErr(t, err, "is a file, not a directory")

	_, err = Open(tmp)
	wantErr(t, err, tmp+" is not a cgroup v2 directory", "not cgroup2", hint)
	var st unix.Statfs_t
	if serr := unix.Statfs(tmp, &st); serr == nil && uint64(st.Type) == unix.TMPFS_MAGIC {
		wantErr(t, err, "it is on tmpfs")
	}
	t.Logf("the error for a directory elsewhere reads: %v", err)
}

func TestOpenRejectsV1(t *testing.T) {
	v2Root(t)
	v1 := Mounts("cgroup")
	if len(v1) == 0 {
		t.Skip("skipped: no cgroup v1 hierarchy is mounted on this host to point at")
	}
	_, err := Open(v1[0])
	wantErr(t, err, v1[0]+" is on a cgroup v1 hierarchy; cgroup mode needs cgroup v2")
}

// TestOpenID checks that a cgroup's id as Open reads it (the inode number)
// is the id the kernel hands out in a file handle, which is what
// bpf_get_current_cgroup_id and bpf_skb_cgroup_id return.
func TestOpenID(t *testing.T) {
	root := v2Root(t)
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if d.Path != root {
		t.Errorf("Path = %q, want %q", d.Path, root)
	}
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, root, 0)
	if err != nil {
		t.Skipf("skipped: name_to_handle_at on %s: %v", root, err)
	}
	if len(h.Bytes()) != 8 {
		t.Fatalf("cgroup file handle is %d bytes, want 8 (a 64-bit cgroup id)", len(h.Bytes()))
	}
	if id := binary.NativeEndian.Uint64(h.Bytes()); id != d.ID {
		t.Errorf("Open says id %d, the kernel's file handle says %d", d.ID, id)
	}
	// A relative path is made absolute.
	t.Chdir(filepath.Dir(root))
	rel, err := Open(filepath.Base(root))
	if err != nil || rel.Path != root || rel.ID != d.ID {
		t.Errorf("Open(%q) from %s = %+v, %v; want %+v", filepath.Base(root), filepath.Dir(root), rel, err, d)
	}
}

func TestParseMountInfo(t *testing.T) {
	for _, c := range []struct {
		line string
		want mount
		ok   bool
	}{
		{"36 25 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate",
			mount{point: "/sys/fs/cgroup/unified", fstype: "cgroup2"}, true},
		// No optional fields before the separator.
		{"40 25 0:35 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu", mount{point: "/sys/fs/cgroup/cpu", fstype: "cgroup"}, true},
		// A space in a mount point is escaped as \040.
		{`50 25 0:40 / /mnt/my\040cgroups rw - cgroup2 none rw`, mount{point: "/mnt/my cgroups", fstype: "cgroup2"}, true},
		{"garbage", mount{}, false},
	} {
		got, ok := parseMountInfo(c.line)
		if ok != c.ok || got != c.want {
			t.Errorf("parseMountInfo(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// testTree creates <v2 root>/pktcg-<random>/child and removes both when
// the test ends, after the processes in them have exited.
func testTree(t *testing.T) (parent, child string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create cgroups")
	}
	root := v2Root(t)
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	parent = filepath.Join(root, "pktcg-"+hex.EncodeToString(b))
	child = filepath.Join(parent, "child")
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, parent) })
	if err := os.Mkdir(child, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, child) })
	return parent, child
}

// removeCgroup removes an empty cgroup, waiting briefly for exited
// processes to leave it.
// testnet's cgroups are removed the same way, but testnet imports this
// package, so its tests cannot use testnet.
func removeCgroup(t *testing.T, dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("remove cgroup %s: %v", dir, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startIn runs sleep inside the cgroup dir from its first instruction on
// (clone3 with CLONE_INTO_CGROUP) and kills it when the test ends.
func startIn(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep in %s: %v", dir, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

func TestResolver(t *testing.T) {
	parent, child := testTree(t)
	pid, err := ID(parent)
	if err != nil {
		t.Fatal(err)
	}
	cid, err := ID(child)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(parent, DefaultMaxDirs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Paths([]uint64{pid, cid})
	if err != nil {
		t.Fatal(err)
	}
	if got[pid] != parent || got[cid] != child || len(got) != 2 {
		t.Errorf("Paths = %v, want %d: %s and %d: %s", got, pid, parent, cid, child)
	}

	// A cgroup created after the first walk is found by the next one.
	late := filepath.Join(child, "late")
	if err := os.Mkdir(late, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, late) })
	lid, err := ID(late)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Paths([]uint64{lid}); err != nil || got[lid] != late {
		t.Errorf("Paths(late) = %v, %v; want %s", got, err, late)
	}

	// An id outside the tree is left out, not guessed.
	rootDir, err := Open(v2Root(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Paths([]uint64{rootDir.ID}); err != nil || len(got) != 0 {
		t.Errorf("Paths(id of the v2 root, above the tree) = %v, %v; want nothing", got, err)
	}

	// An id the last walk did not find does not walk the tree again: a
	// cgroup created now stays unnamed until a new id asks for a walk.
	r.Paths([]uint64{rootDir.ID})
	later := filepath.Join(child, "later")
	if err := os.Mkdir(later, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, later) })
	laterID := idOf(t, later)
	if _, ok := r.paths[laterID]; ok {
		t.Fatal("the resolver knew a cgroup before any walk could have seen it")
	}
	if got, _ := r.Paths([]uint64{rootDir.ID}); len(got) != 0 {
		t.Errorf("Paths(known-unknown id) = %v", got)
	}
	if _, ok := r.paths[laterID]; ok {
		t.Error("asking again for an id already known to be unknown walked the tree")
	}
	if got, _ := r.Paths([]uint64{laterID}); got[laterID] != later {
		t.Errorf("a new id did not walk the tree: %v", got)
	}

	// The bound holds: a resolver allowed one directory knows only the root
	// of its tree, and says nothing of the child.
	small, err := NewResolver(parent, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := small.Paths([]uint64{pid, cid, lid}); len(got) != 1 || got[pid] != parent {
		t.Errorf("a resolver bounded to 1 directory named %v, want only %d: %s", got, pid, parent)
	}
	if len(small.paths) > 1 {
		t.Errorf("a resolver bounded to 1 directory caches %d", len(small.paths))
	}
}

func TestProcs(t *testing.T) {
	parent, child := testTree(t)
	if got, err := Procs(parent, DefaultMaxDirs); err != nil || len(got) != 0 {
		t.Fatalf("Procs of an empty tree = %v, %v; want none", got, err)
	}
	a := startIn(t, parent)
	b := startIn(t, child)
	got, err := Procs(parent, DefaultMaxDirs)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{a, b}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Procs(%s) = %v, want %v (one in it, one in its child)", parent, got, want)
	}
	if got, err := Procs(child, DefaultMaxDirs); err != nil || !slices.Equal(got, []int{b}) {
		t.Errorf("Procs(child) = %v, %v; want [%d]", got, err, b)
	}
}

func idOf(t *testing.T, path string) uint64 {
	t.Helper()
	id, err := ID(path)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
