package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// fileIDKernfs is FILEID_KERNFS (include/linux/exportfs.h): a handle of a
// kernfs file system, cgroup2 among them, that holds the node's 64-bit id.
// A cgroup's id, as eBPF sees it, is that id.
const fileIDKernfs = 0xfe

// IDResolver names cgroup v2 ids anywhere in the hierarchy, for captures
// that see the whole host. It asks the kernel for each id it does not know,
// through a file handle (open_by_handle_at on the cgroup2 mount), which
// costs one lookup per id instead of a walk of the tree. Where handles are
// refused (they need CAP_DAC_READ_SEARCH) it falls back to a Resolver
// rooted at the mount, which walks the tree at most once per batch of new
// ids. Names, and ids that name no cgroup (removed ones), are cached up to a
// bound; past it the oldest are forgotten. It is not safe for concurrent
// use.
type IDResolver struct {
	mount   string
	mountFD int // -1 when handles are not used
	max     int
	paths   map[uint64]string // "" for an id that names no cgroup
	order   []uint64          // cached ids, oldest first from next on
	next    int
	walker  *Resolver // the fallback, made on first need
}

// V2Mount returns where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup
// on a unified host, /sys/fs/cgroup/unified on a hybrid one, else the first
// cgroup2 mount.
func V2Mount() (string, error) {
	mounts := Mounts("cgroup2")
	if len(mounts) == 0 {
		return "", errors.New("no cgroup v2 hierarchy is mounted on this host")
	}
	for _, want := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if slices.Contains(mounts, want) {
			return want, nil
		}
	}
	return mounts[0], nil
}

// NewIDResolver opens the cgroup v2 mount and caches at most max names.
func NewIDResolver(max int) (*IDResolver, error) {
	mount, err := V2Mount()
	if err != nil {
		return nil, err
	}
	return newIDResolver(mount, max, true)
}

func newIDResolver(mount string, max int, handles bool) (*IDResolver, error) {
	r := &IDResolver{mount: mount, mountFD: -1, max: max, paths: map[uint64]string{}}
	if !handles {
		return r, nil
	}
	fd, err := unix.Open(mount, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup v2 mount %s: %w", mount, err)
	}
	r.mountFD = fd
	// The mount's own id tells whether the kernel takes handles from us.
	root, err := ID(mount)
	if err != nil {
		r.Close()
		return nil, err
	}
	if _, err := r.byHandle(root); err != nil {
		r.closeMount()
	}
	return r, nil
}

// Mount is the cgroup v2 mount the ids are named under.
func (r *IDResolver) Mount() string { return r.mount }

// UsesHandles reports whether ids are looked up by file handle rather than
// by walking the tree.
func (r *IDResolver) UsesHandles() bool { return r.mountFD >= 0 }

// byHandle asks the kernel for the path of cgroup id.
func (r *IDResolver) byHandle(id uint64) (string, error) {
	var raw [8]byte
	binary.NativeEndian.PutUint64(raw[:], id)
	fd, err := unix.OpenByHandleAt(r.mountFD, unix.NewFileHandle(fileIDKernfs, raw[:]), unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("open cgroup %d by handle: %w", id, err)
	}
	defer unix.Close(fd)
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", fmt.Errorf("name cgroup %d: %w", id, err)
	}
	return p, nil
}

// Paths returns the path of each id it can name; ids that name no cgroup
// (removed, or never a cgroup) are left out.
func (r *IDResolver) Paths(ids []uint64) (map[uint64]string, error) {
	out := make(map[uint64]string, len(ids))
	var unknown []uint64
	var errs []error
	for _, id := range ids {
		if p, ok := r.paths[id]; ok {
			if p != "" {
				out[id] = p
			}
			continue
		}
		if r.mountFD < 0 {
			unknown = append(unknown, id)
			continue
		}
		p, err := r.byHandle(id)
		switch {
		case err == nil:
		case errors.Is(err, unix.ESTALE) || errors.Is(err, unix.ENOENT):
			p = "" // no such cgroup (any more): ids are never reused
		case errors.Is(err, unix.EPERM):
			// CAP_DAC_READ_SEARCH is gone (a run drops it once attached):
			// the tree walk names this id and every later one.
			r.closeMount()
			unknown = append(unknown, id)
			continue
		default:
			errs = append(errs, err)
			continue
		}
		r.remember(id, p)
		if p != "" {
			out[id] = p
		}
	}
	if len(unknown) > 0 {
		if r.walker == nil {
			w, err := NewResolver(r.mount, r.max)
			if err != nil {
				return out, err
			}
			r.walker = w
		}
		found, err := r.walker.Paths(unknown)
		for _, id := range unknown {
			if p, ok := found[id]; ok {
				r.remember(id, p)
				out[id] = p
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// remember caches the path of id, forgetting the oldest entry when full.
func (r *IDResolver) remember(id uint64, path string) {
	if r.max <= 0 {
		return
	}
	if len(r.order) < r.max {
		r.order = append(r.order, id)
	} else {
		delete(r.paths, r.order[r.next])
		r.order[r.next] = id
		r.next = (r.next + 1) % r.max
	}
	r.paths[id] = path
}

// Cached is the number of ids the resolver holds a name (or a miss) for.
func (r *IDResolver) Cached() int { return len(r.paths) }

func (r *IDResolver) closeMount() {
	if r.mountFD >= 0 {
		unix.Close(r.mountFD)
		r.mountFD = -1
	}
}

// Close releases the mount's file descriptor.
func (r *IDResolver) Close() error {
	r.closeMount()
	return nil
}
