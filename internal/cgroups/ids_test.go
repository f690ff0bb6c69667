package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// idTree creates <cgroup v2 mount>/pktid-<random>/{a,b,c} and returns the
// mount and the three paths, removed when the test ends.
func idTree(t *testing.T) (mount string, dirs []string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create cgroups and open them by handle")
	}
	mount, err := V2Mount()
	if err != nil {
		t.Skipf("skipped: %v", err)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(mount, "pktid-"+hex.EncodeToString(b))
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroup(t, parent) })
	for _, n := range []string{"a", "b", "c"} {
		d := filepath.Join(parent, n)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeCgroup(t, d) })
		dirs = append(dirs, d)
	}
	return mount, dirs
}

func TestV2Mount(t *testing.T) {
	m, err := V2Mount()
	if err != nil {
		t.Skipf("skipped: %v", err)
	}
	if !slices.Contains(Mounts("cgroup2"), m) {
		t.Errorf("V2Mount() = %s, not among the cgroup2 mounts %v", m, Mounts("cgroup2"))
	}
	if _, err := Open(m); err != nil {
		t.Errorf("V2Mount() = %s, which Open refuses: %v", m, err)
	}
}

// TestIDResolverByHandle names cgroups anywhere below the mount by file
// handle, without ever walking the tree; a removed cgroup's id names
// nothing, and asking again does not walk either.
func TestIDResolverByHandle(t *testing.T) {
	mount, dirs := idTree(t)
	r, err := NewIDResolver(DefaultMaxDirs)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Mount() != mount || !r.UsesHandles() {
		t.Fatalf("resolver on %s, handles %v; want %s with handles (as root)", r.Mount(), r.UsesHandles(), mount)
	}
	ids := []uint64{idOf(t, mount), idOf(t, dirs[0]), idOf(t, dirs[1])}
	got, err := r.Paths(ids)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]string{ids[0]: mount, ids[1]: dirs[0], ids[2]: dirs[1]}
	if !maps.Equal(got, want) {
		t.Errorf("Paths = %v, want %v", got, want)
	}

	gone := idOf(t, dirs[2])
	removeCgroup(t, dirs[2])
	for range 2 {
		got, err = r.Paths([]uint64{gone, ids[1]})
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, map[uint64]string{ids[1]: dirs[0]}) {
			t.Errorf("after removing %s: Paths = %v, want only %s", dirs[2], got, dirs[0])
		}
	}
	if r.walker != nil {
		t.Errorf("the resolver walked the tree although handles work")
	}
}

// TestIDResolverWalks: without handles (no CAP_DAC_READ_SEARCH), the same
// names come from a walk of the tree.
func TestIDResolverWalks(t *testing.T) {
	mount, dirs := idTree(t)
	r, err := newIDResolver(mount, DefaultMaxDirs, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.UsesHandles() {
		t.Fatal("handles in use")
	}
	ids := []uint64{idOf(t, dirs[0]), idOf(t, dirs[2])}
	got, err := r.Paths(ids)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uint64]string{ids[0]: dirs[0], ids[1]: dirs[2]}; !maps.Equal(got, want) {
		t.Errorf("Paths = %v, want %v", got, want)
	}
	if r.walker == nil {
		t.Error("no walk happened")
	}
}

// TestIDResolverBound: the cache holds at most max ids, forgetting the
// oldest; a forgotten id is looked up again.
func TestIDResolverBound(t *testing.T) {
	_, dirs := idTree(t)
	r, err := NewIDResolver(2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for round := range 2 {
		for _, d := range dirs {
			got, err := r.Paths([]uint64{idOf(t, d)})
			if err != nil {
				t.Fatal(err)
			}
			if got[idOf(t, d)] != d {
				t.Errorf("round %d: %s named %q", round, d, got[idOf(t, d)])
			}
			if r.Cached() > 2 {
				t.Fatalf("%d ids cached, bound 2", r.Cached())
			}
		}
	}
}
