package app

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/privs"
)

// afterAttach is what the rest of a run needs once src is attached:
// CAP_NET_ADMIN to take legacy tc filters off at the end (TCX, XDP and
// cgroup links go with their file descriptors), and CAP_BPF on kernels
// before 6.5, where every bpf() command needs it while unprivileged BPF is
// off (6.5 checks only where maps are created and programs loaded). The
// drains read and update maps the run already holds, and name owners from
// /proc and the cgroup file system, which need neither. With -i any
// (follow), interfaces that appear during the run are attached to then,
// which takes both for the whole run.
func afterAttach(mode, release string, follow bool) privs.Set {
	var keep privs.Set
	// "tc/legacy", or on several interfaces "tc/legacy,tcx".
	if strings.Contains(mode, "legacy") || follow {
		keep |= privs.Of(privs.CapNetAdmin)
	}
	if kernel.Before(release, 6, 5) || follow {
		keep |= privs.Of(privs.CapBPF)
	}
	return keep
}

// dropPrivileges gives up every capability the rest of the run does not
// need (afterAttach), the ambient and bounding sets where it may, and the
// right to gain privileges. A binary that cannot (built with cgo) says so
// and runs on with what it has.
func dropPrivileges(mode string, follow bool, log *slog.Logger) {
	release, _ := kernel.Release()
	r, err := privs.Drop(afterAttach(mode, release, follow))
	if err != nil {
		log.Warn("could not drop capabilities after attaching; the run keeps them", "error", err)
		return
	}
	attrs := []any{"kept", r.Kept.String(), "dropped", r.Dropped.String(), "bounding_set_cleared", r.Bounding}
	if st, err := privs.Status(0); err == nil {
		// What the kernel says is left, as a reader of /proc would see it.
		attrs = append(attrs, "CapEff", fmt.Sprintf("%#x", st["CapEff"]), "CapBnd", fmt.Sprintf("%#x", st["CapBnd"]), "NoNewPrivs", st["NoNewPrivs"])
	}
	log.Debug("dropped the capabilities the rest of the run does not need", attrs...)
}
