// Package cgroups checks that a path names a cgroup v2 directory, lists the
// processes below it, and names cgroups by their id.
//
// On cgroup v2 a cgroup's id, which eBPF helpers such as
// bpf_get_current_cgroup_id and bpf_skb_cgroup_id return, is the inode
// number of its directory. Mapping ids back to paths is therefore a walk of
// the tree; Resolver does it once and caches the result, with a bound.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is a cgroup v2 directory that Open checked.
type Dir struct {
	Path string // absolute and clean
	ID   uint64 // the cgroup's id: its directory's inode number
}

// Open checks that path exists, is a directory and lies on a cgroup2 file
// system. Its errors name the problem and, where it helps, where cgroup v2
// is mounted on this host.
func Open(path string) (Dir, error) {
	if path == "" {
		return Dir{}, errors.New("no cgroup path given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Dir{}, fmt.Errorf("cgroup path %q: %w", path, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Dir{}, fmt.Errorf("cgroup path %s does not exist%s", abs, mountHint())
	case err != nil:
		return Dir{}, fmt.Errorf("cgroup path %s: %w", abs, err)
	case !fi.IsDir():
		return Dir{}, fmt.Errorf("cgroup path %s is a file, not a directory: a cgroup is a directory of a cgroup v2 hierarchy%s", abs, mountHint())
	}
	var st unix.Statfs_t
	if err := unix.Statfs(abs, &st); err != nil {
		return Dir{}, fmt.Errorf("cgroup path %s: statfs: %w", abs, err)
	}
	switch uint64(st.Type) {
	case unix.CGROUP2_SUPER_MAGIC:
	case unix.CGROUP_SUPER_MAGIC:
		return Dir{}, fmt.Errorf("cgroup path %s is on a cgroup v1 hierarchy; cgroup mode needs cgroup v2%s", abs, mountHint())
	default:
		return Dir{}, fmt.Errorf("cgroup path %s is not a cgroup v2 directory: it is on %s, not cgroup2%s", abs, fsName(abs, st.Type), mountHint())
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Dir{}, fmt.Errorf("cgroup path %s: no inode number", abs)
	}
	return Dir{Path: abs, ID: sys.Ino}, nil
}

// ID returns the id of the cgroup v2 directory at path.
func ID(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat cgroup %s: %w", path, err)
	}
	return st.Ino, nil
}

// mountHint says where cgroup v2 is mounted, as the tail of an error.
func mountHint() string {
	mounts := Mounts("cgroup2")
	if len(mounts) == 0 {
		return " (no cgroup v2 hierarchy is mounted on this host)"
	}
	return " (cgroup v2 is mounted at " + strings.Join(mounts, ", ") + ")"
}

// mount is one line of /proc/self/mountinfo, with what this package uses.
type mount struct {
	point  string
	fstype string
}

func readMounts() []mount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		if m, ok := parseMountInfo(sc.Text()); ok {
			out = append(out, m)
		}
	}
	return out
}

// parseMountInfo reads one line of mountinfo (proc(5)): the mount point is
// the fifth field, and the file-system type follows the " - " separator.
func parseMountInfo(line string) (mount, bool) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return mount{}, false
	}
	f, p := strings.Fields(pre), strings.Fields(post)
	if len(f) < 5 || len(p) < 1 {
		return mount{}, false
	}
	return mount{point: unescapeOctal(f[4]), fstype: p[0]}, true
}

// unescapeOctal undoes the \ooo escapes that mountinfo uses for spaces,
// tabs, newlines and backslashes in paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Mounts returns the mount points of file systems of type fstype.
func Mounts(fstype string) []string {
	var out []string
	for _, m := range readMounts() {
		if m.fstype == fstype {
			out = append(out, m.point)
		}
	}
	return out
}

// fsName names the file system that path lies on: the type of the deepest
// mount that contains it, else the statfs magic number.
func fsName(path string, magic int64) string {
	best := ""
	name := ""
	for _, m := range readMounts() {
		if within(path, m.point) && len(m.point) >= len(best) {
			best, name = m.point, m.fstype
		}
	}
	if name == "" {
		return fmt.Sprintf("a file system with magic %#x", magic)
	}
	return name
}

// within reports whether path is dir or lies below it.
func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}
