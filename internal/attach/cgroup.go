package attach

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Cgroup is a set of programs attached to one cgroup v2 directory. Every
// attachment is a bpf_link, never a legacy BPF_PROG_ATTACH: a link goes
// away with the last file descriptor that holds it, so even a killed run
// leaves nothing behind. Programs attached this way run beside any others
// on the cgroup (multi-attach) and apply to its descendants too.
type Cgroup struct {
	path  string
	dir   *os.File
	links []link.Link
}

// OpenCgroup opens the cgroup v2 directory at path for attaching.
func OpenCgroup(path string) (*Cgroup, error) {
	dir, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s: %w", path, err)
	}
	return &Cgroup{path: path, dir: dir}, nil
}

// Attach links prog to the cgroup at attach point at.
func (c *Cgroup) Attach(prog *ebpf.Program, at ebpf.AttachType) error {
	l, err := link.AttachRawLink(link.RawLinkOptions{
		Target:  int(c.dir.Fd()),
		Program: prog,
		Attach:  at,
	})
	if err != nil {
		err = fmt.Errorf("attach %s program to cgroup %s: %w", at, c.path, err)
		switch {
		case errors.Is(err, ebpf.ErrNotSupported):
			return fmt.Errorf("%w (cgroup bpf links need Linux 5.7 or later)", err)
		case errors.Is(err, unix.EPERM):
			// An exclusive (non-multi) program attached with the legacy API
			// refuses company.
			return fmt.Errorf("%w (is an exclusive program already attached there? see bpftool cgroup show %s)", err, c.path)
		}
		return err
	}
	c.links = append(c.links, l)
	return nil
}

// Close detaches every program this Cgroup attached.
func (c *Cgroup) Close() error {
	errs := detachAll(c.links, "cgroup link")
	c.links = nil
	if c.dir != nil {
		if err := c.dir.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close cgroup %s: %w", c.path, err))
		}
		c.dir = nil
	}
	return errors.Join(errs...)
}

// detachAll closes links in order and returns the errors, each naming the
// links as what ("cgroup link", "TCX link").
func detachAll(links []link.Link, what string) []error {
	var errs []error
	for _, l := range links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach %s: %w", what, err))
		}
	}
	return errs
}
