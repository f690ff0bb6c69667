package app

import (
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/privs"
)

// TestAfterAttach: what a run keeps once attached. Legacy tc, on any of
// its interfaces, keeps CAP_NET_ADMIN to take its filters off; kernels
// before 6.5 keep CAP_BPF for every bpf() call; -i any keeps both for the
// whole run, since interfaces that appear are attached to then.
func TestAfterAttach(t *testing.T) {
	netAdmin, bpf := privs.Of(privs.CapNetAdmin), privs.Of(privs.CapBPF)
	for _, c := range []struct {
		mode, release string
		follow        bool
		want          privs.Set
	}{
		{"tc/tcx", "6.18.44-fc", false, 0},
		{"tc/legacy", "6.18.44-fc", false, netAdmin},
		{"tc/legacy,tcx", "6.18.44-fc", false, netAdmin},
		{"tc/legacy", "6.1.0-28-amd64", false, netAdmin | bpf},
		{"xdp/native", "6.18.44-fc", false, 0},
		{"xdp/generic,native", "5.10.0-33-amd64", false, bpf},
		{"cgroup", "6.18.44-fc", false, 0},
		{"tc/tcx", "6.18.44-fc", true, netAdmin | bpf},
		{"tc/none yet", "6.18.44-fc", true, netAdmin | bpf},
		{"xdp/native", "6.12.9-amd64", true, netAdmin | bpf},
	} {
		if got := afterAttach(c.mode, c.release, c.follow); got != c.want {
			t.Errorf("afterAttach(%q, %q, follow %v) = %s, want %s", c.mode, c.release, c.follow, got, c.want)
		}
	}
}
