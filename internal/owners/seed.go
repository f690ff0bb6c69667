package owners

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
)

// Stats says what Walk did.
type Stats struct {
	Procs     int   // processes whose sockets were read
	Sockets   int   // inet sockets given an owner
	Denied    int   // processes whose sockets could not be read
	DeniedErr error // the first such error
}

// Seed seeds the owners of the sockets that the processes pids
// hold (Walk), and warns once, naming what is lost, when some
// processes' sockets could not be read.
func Seed(pids []int, owners, comms *ebpf.Map, log *slog.Logger) error {
	st, err := Walk(pids, owners, comms)
	if err != nil {
		return err
	}
	if st.Denied > 0 {
		log.Warn("could not read the sockets of some processes (pidfd_getfd needs CAP_SYS_PTRACE over them): their connections opened before start-up are counted without a PID",
			"processes", st.Denied, "first_error", st.DeniedErr)
	}
	log.Debug("recorded the owners of existing sockets", "processes", st.Procs, "sockets", st.Sockets)
	return nil
}

// Walk records the owner of every inet socket that one of the
// processes pids (in ascending order) holds open, in the socket-local
// storage map owners that the counting programs read. Every value of
// owners starts with a struct sock_owner (bpf/include/owner.h); seeding
// sets its pid and leaves the rest zero.
//
// A socket iterator (iter/tcp, iter/udp) sees every socket but no process,
// and only those of the network namespace it runs in; the processes of a
// host or a cgroup may live in many. So this walks the processes instead:
// each process's fd table names its sockets, pidfd_getfd lends us a
// descriptor for each, and the kernel accepts a socket descriptor as the
// key of a socket-storage map. A socket shared by several processes
// (inherited, or passed over a unix socket) goes to the lowest PID that
// holds it. Sockets that no process holds any longer (closed while still
// sending) stay ownerless.
func Walk(pids []int, owners, comms *ebpf.Map) (Stats, error) {
	var st Stats
	seen := map[uint64]bool{} // socket inodes already handled
	value := make([]byte, owners.ValueSize())
	for _, pid := range pids {
		n, err := seedProcess(pid, owners, value, seen)
		switch {
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			st.Denied++
			if st.DeniedErr == nil {
				st.DeniedErr = err
			}
			continue
		case err != nil:
			return st, err
		}
		st.Procs++
		st.Sockets += n
		if n == 0 {
			continue
		}
		var name bpfprog.OwnerComm
		if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil {
			for i, ch := range bytes.TrimSuffix(comm, []byte("\n")) {
				if i < len(name.Comm)-1 {
					name.Comm[i] = int8(ch)
				}
			}
			if err := comms.Update(uint32(pid), &name, ebpf.UpdateAny); err != nil {
				return st, fmt.Errorf("record the name of process %d: %w", pid, err)
			}
		}
	}
	return st, nil
}

// seedProcess records pid as the owner of the inet sockets in its fd table
// that have no owner yet, and returns how many it recorded. A process that
// exits meanwhile has nothing left to record. value is scratch space of
// the owners map's value size.
func seedProcess(pid int, owners *ebpf.Map, value []byte, seen map[uint64]bool) (int, error) {
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return 0, nil
		}
		return 0, fmt.Errorf("list the files of process %d: %w", pid, err)
	}
	pidfd := -1
	defer func() {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
	}()
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(fdDir + "/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		ino, ok := socketInode(target)
		if !ok || seen[ino] {
			continue
		}
		fdNum, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pidfd < 0 {
			if pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
				if errors.Is(err, unix.ESRCH) {
					return n, nil
				}
				return n, fmt.Errorf("pidfd_open(%d): %w", pid, err)
			}
		}
		fd, err := unix.PidfdGetfd(pidfd, fdNum, 0)
		if err != nil {
			if errors.Is(err, unix.EBADF) || errors.Is(err, unix.ESRCH) {
				continue // closed, or the process exited
			}
			return n, fmt.Errorf("pidfd_getfd(%d, fd %d): %w", pid, fdNum, err)
		}
		seen[ino] = true
		recorded, err := recordOwner(fd, pid, owners, value)
		unix.Close(fd)
		if err != nil {
			return n, err
		}
		if recorded {
			n++
		}
	}
	return n, nil
}

// recordOwner gives the socket behind fd the owner pid, unless it is not an
// inet socket or already has an owner.
func recordOwner(fd, pid int, owners *ebpf.Map, value []byte) (bool, error) {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || (domain != unix.AF_INET && domain != unix.AF_INET6) {
		return false, nil
	}
	clear(value)
	binary.NativeEndian.PutUint32(value, uint32(pid)) // sock_owner.pid
	err = owners.Update(uint32(fd), value, ebpf.UpdateNoExist)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ebpf.ErrKeyExist):
		return false, nil // created after sock_create was attached: it knows its owner
	default:
		return false, fmt.Errorf("record the owner of a socket of process %d: %w", pid, err)
	}
}

// socketInode reads the inode number out of a /proc/PID/fd link to a
// socket, "socket:[12345]".
func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(s, 10, 64)
	return ino, err == nil
}

// HostPIDs lists the processes that /proc shows, in ascending order.
func HostPIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}
