package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// DefaultMaxDirs bounds every walk of a cgroup tree, and with it the
// Resolver's cache: a host with more cgroups below the watched one than this
// gets rows whose cgroup is not named, rather than unbounded memory.
const DefaultMaxDirs = 1 << 16

// walk calls fn for root and for every cgroup below it, parents first, and
// stops after maxDirs directories; truncated says that it stopped early.
// Cgroups that disappear during the walk are skipped.
func walk(root string, maxDirs int, fn func(path string, id uint64)) (truncated bool, err error) {
	n := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			return nil // removed while we walked, or unreadable: skip it
		}
		if !d.IsDir() {
			return nil
		}
		if n == maxDirs {
			truncated = true
			return filepath.SkipAll
		}
		n++
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			fn(path, st.Ino)
		}
		return nil
	})
	if err != nil {
		return truncated, fmt.Errorf("walk cgroup tree %s: %w", root, err)
	}
	return truncated, nil
}

// Resolver names the cgroups below one root by id. It is not safe for
// concurrent use.
type Resolver struct {
	root    string
	maxDirs int
	paths   map[uint64]string
	// unknown holds ids that the last walk did not find: asking for them
	// again does not walk again (a TUI reads every second).
	unknown map[uint64]bool
}

// NewResolver walks root once and caches the id of every cgroup in it, up
// to maxDirs of them.
func NewResolver(root string, maxDirs int) (*Resolver, error) {
	r := &Resolver{root: root, maxDirs: maxDirs}
	if err := r.refresh(); err != nil {
		return nil, err
	}
	return r, nil
}

// refresh walks the tree again. Cgroups removed since the last walk keep
// their names while the cache has room: their rows still deserve one.
func (r *Resolver) refresh() error {
	paths := make(map[uint64]string, len(r.paths))
	if _, err := walk(r.root, r.maxDirs, func(path string, id uint64) { paths[id] = path }); err != nil {
		return err
	}
	for id, p := range r.paths {
		if len(paths) >= r.maxDirs {
			break
		}
		if _, ok := paths[id]; !ok {
			paths[id] = p
		}
	}
	r.paths = paths
	r.unknown = map[uint64]bool{}
	return nil
}

// Paths returns the path of each id it can name. If an id is new to it,
// the tree is walked once more first, to find cgroups created since the
// last walk; ids still unknown (not below the root, removed before a walk
// saw them, or beyond the bound) are left out of the result, and only a
// new id walks the tree again.
func (r *Resolver) Paths(ids []uint64) (map[uint64]string, error) {
	out := make(map[uint64]string, len(ids))
	walk := false
	for _, id := range ids {
		if p, ok := r.paths[id]; ok {
			out[id] = p
		} else if !r.unknown[id] {
			walk = true
		}
	}
	if !walk {
		return out, nil
	}
	if err := r.refresh(); err != nil {
		return out, err
	}
	for _, id := range ids {
		if p, ok := r.paths[id]; ok {
			out[id] = p
		} else if len(r.unknown) < r.maxDirs {
			r.unknown[id] = true
		}
	}
	return out, nil
}

// Procs returns the PIDs of the processes in root and in every cgroup
// below it (at most maxDirs cgroups), sorted and without duplicates.
func Procs(root string, maxDirs int) ([]int, error) {
	var (
		pids []int
		errs []error
	)
	_, err := walk(root, maxDirs, func(path string, _ uint64) {
		raw, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if pid, err := strconv.Atoi(sc.Text()); err == nil {
				pids = append(pids, pid)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if len(pids) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("list processes of cgroup %s: %w", root, errors.Join(errs...))
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}
