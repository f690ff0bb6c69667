package testnet

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
)

// MakeCgroups creates <cgroup v2 mount>/<prefix>-<random>/{names...} and
// removes them when the test ends, waiting up to 5s each for the processes
// in them to be gone. It skips the test on a host without cgroup v2.
func MakeCgroups(t testing.TB, prefix string, names ...string) (parent string, dirs map[string]string) {
	t.Helper()
	mount, err := cgroups.V2Mount()
	if err != nil {
		t.Skipf("skipped: %v", err)
	}
	parent = filepath.Join(mount, prefix+"-"+strconv.FormatInt(time.Now().UnixNano()%1e9, 36)+strconv.Itoa(os.Getpid()))
	dirs = map[string]string{}
	all := []string{parent}
	for _, n := range names {
		dirs[n] = filepath.Join(parent, n)
		all = append(all, dirs[n])
	}
	for _, d := range all {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		// Cleanups run last first: children go before their parent.
		t.Cleanup(func() {
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				err := os.Remove(d)
				if err == nil || errors.Is(err, os.ErrNotExist) {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("remove cgroup %s: %v", d, err)
					return
				}
			}
		})
	}
	return parent, dirs
}

// CgroupPrograms lists the programs attached directly to the cgroup dir at
// each of cgroup mode's three hooks.
func CgroupPrograms(t testing.TB, dir string) map[ebpf.AttachType][]ebpf.ProgramID {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[ebpf.AttachType][]ebpf.ProgramID{}
	for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInetIngress, ebpf.AttachCGroupInetEgress, ebpf.AttachCGroupInetSockCreate} {
		res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: at})
		if err != nil {
			t.Fatalf("query %s programs of %s: %v", at, dir, err)
		}
		for _, p := range res.Programs {
			out[at] = append(out[at], p.ID)
		}
	}
	return out
}
