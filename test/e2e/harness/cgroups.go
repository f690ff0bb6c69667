package harness

import (
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// MakeCgroupTree creates <cgroup v2 mount>/pktcg-<random>/child, removed
// when the test ends.
func MakeCgroupTree(t *testing.T) (parent, child string) {
	t.Helper()
	parent, dirs := testnet.MakeCgroups(t, "pktcg", "child")
	return parent, dirs["child"]
}

// MakeProcessCgroups creates <cgroup v2 mount>/pktproc-<random>/{names...}
// and removes them when the test ends, after the processes in them.
func MakeProcessCgroups(t *testing.T, names ...string) map[string]string {
	t.Helper()
	_, dirs := testnet.MakeCgroups(t, "pktproc", names...)
	return dirs
}
