package app

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
)

// capability is one Linux capability, by number and name.
type capability struct {
	bit  int
	name string
}

var (
	capBPF      = capability{unix.CAP_BPF, "CAP_BPF"}
	capNetAdmin = capability{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}
	capPerfmon  = capability{unix.CAP_PERFMON, "CAP_PERFMON"}
	capSysAdmin = capability{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}
)

// neededCaps are the capabilities that loading and attaching a mode's
// programs need on Linux 5.8+, found by running the binary with each one
// left out (e2e_caps_test.go): CAP_BPF creates maps and programs,
// CAP_PERFMON lets the verifier accept the pointer arithmetic of the
// parser, and CAP_NET_ADMIN attaches TC, XDP and cgroup_skb programs.
func neededCaps(cli.Mode) []capability {
	return []capability{capBPF, capNetAdmin, capPerfmon}
}

// withCapsHint explains a failed start by the capabilities the process
// lacks, if it lacks any: the kernel's own answer can be as unhelpful as
// "bad address" (a missing CAP_PERFMON).
func withCapsHint(err error, mode cli.Mode) error {
	eff, ok := effectiveCaps()
	if !ok {
		return err
	}
	var missing, all []string
	for _, c := range neededCaps(mode) {
		all = append(all, c.name)
		has := eff&(1<<c.bit) != 0
		// CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON.
		if !has && (c == capBPF || c == capPerfmon) {
			has = eff&(1<<capSysAdmin.bit) != 0
		}
		if !has {
			missing = append(missing, c.name)
		}
	}
	if len(missing) == 0 {
		return err
	}
	// The cause is known now: keep the kernel's answer, and leave out the
	// loader's guesses about it (such as a MEMLOCK limit, which does not
	// apply where CAP_BPF exists) and its own advice.
	cause := err
	var errno unix.Errno
	if errors.As(err, &errno) {
		cause = errno
	}
	return fmt.Errorf("missing %s: %s mode needs %s (or root); the kernel answered: %w",
		strings.Join(missing, ", "), mode, strings.Join(all, ", "), cause)
}

// effectiveCaps returns the process's effective capability set.
func effectiveCaps() (uint64, bool) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, false
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, true
}
