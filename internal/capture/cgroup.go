package capture

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// CgroupOptions configure a cgroup capture.
type CgroupOptions struct {
	Dir        cgroups.Dir // the cgroup v2 directory to watch (cgroups.Open)
	MaxEntries uint32
	Log        *slog.Logger
}

// Cgroup counts the traffic of the sockets in one cgroup v2 directory and
// below it, both directions, with the owner of each socket on its rows.
type Cgroup struct {
	objs   bpfprog.CgroupObjects
	table  *table[bpfprog.CgroupOwnedFlowKey]
	cg     *attach.Cgroup
	dir    cgroups.Dir
	names  *cgroups.Resolver
	log    *slog.Logger
	closed bool
	// rowCgroups holds the cgroup id of each row of the drain under way.
	rowCgroups []uint64
}

// StartCgroup loads the cgroup programs and attaches them. Counting starts
// when it returns.
//
// The order makes every socket's rows carry one owner from its first
// counted packet on: sock_create is attached first, so that every socket
// created from then on records its creator; then the sockets that already
// exist get the process that holds them (seedOwners); only then are the
// counting programs attached.
func StartCgroup(o CgroupOptions) (*Cgroup, error) {
	if err := checkTableMemory(o.MaxEntries); err != nil {
		return nil, err
	}
	spec, err := bpfprog.LoadCgroup()
	if err != nil {
		return nil, fmt.Errorf("load cgroup object: %w", err)
	}
	sizeFlowTables(spec, o.MaxEntries)
	mptcp, err := ProbeMPTCPOwner()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables[bpfprog.CgroupVarMptcpAware].Set(mptcp); err != nil {
		return nil, fmt.Errorf("set mptcp_aware: %w", err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cgroup{dir: o.Dir, log: log}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		return nil, loadError(err, o.MaxEntries)
	}
	c.table, err = newTable(tableMaps{
		Slot:      c.objs.FlowTables,
		Flows:     c.objs.Flows,
		Untracked: c.objs.Untracked,
		HLL:       c.objs.UntrackedHll,
		Gen:       c.objs.UntrackedGen,
	}, spec.Maps[bpfprog.CgroupMapFlows], c.ownedKey)
	if err != nil {
		c.objs.Close()
		return nil, err
	}
	if err := c.start(); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// ProbeMPTCPOwner reports whether cgroup_skb programs may call
// bpf_skc_to_mptcp_sock (Linux 5.19+, and CAP_PERFMON), which finds the
// MPTCP socket, and with it the owner, of a subflow. Without it, traffic of
// MPTCP sockets is counted without a PID. Go's net.Listen makes MPTCP
// listeners by default since Go 1.24, so this is not rare.
func ProbeMPTCPOwner() (bool, error) {
	return haveHelper(ebpf.CGroupSKB, asm.FnSkcToMptcpSock, "bpf_skc_to_mptcp_sock")
}

func (c *Cgroup) start() error {
	var err error
	c.names, err = cgroups.NewResolver(c.dir.Path, cgroups.DefaultMaxDirs)
	if err != nil {
		return err
	}
	if c.cg, err = attach.OpenCgroup(c.dir.Path); err != nil {
		return err
	}
	if err := c.cg.Attach(c.objs.PktstatCgSock, ebpf.AttachCGroupInetSockCreate); err != nil {
		return err
	}
	st, err := seedOwners(c.dir.Path, c.objs.SockOwners, c.objs.Comms)
	if err != nil {
		return err
	}
	if st.denied > 0 {
		c.log.Warn("could not read the sockets of some processes (pidfd_getfd needs CAP_SYS_PTRACE over them): their connections opened before start-up are counted without a PID",
			"processes", st.denied, "first_error", st.deniedErr)
	}
	c.log.Debug("recorded the owners of existing sockets", "processes", st.procs, "sockets", st.sockets)
	if err := c.cg.Attach(c.objs.PktstatCgIn, ebpf.AttachCGroupInetIngress); err != nil {
		return err
	}
	return c.cg.Attach(c.objs.PktstatCgOut, ebpf.AttachCGroupInetEgress)
}

// seedStats says what seedOwners did.
type seedStats struct {
	procs     int   // processes whose sockets were read
	sockets   int   // inet sockets given an owner
	denied    int   // processes whose sockets could not be read
	deniedErr error // the first such error
}

// seedOwners records the owner of every inet socket that a process in the
// cgroup tree at root holds open, in the socket-local storage that the
// counting programs read.
//
// A socket iterator (iter/tcp, iter/udp) sees every socket but no process,
// and only those of the network namespace it runs in; the processes of a
// cgroup may live in many. So this walks the processes instead: each
// process's fd table names its sockets, pidfd_getfd lends us a descriptor
// for each, and the kernel accepts a socket descriptor as the key of a
// socket-storage map. A socket shared by several processes (inherited, or
// passed over a unix socket) goes to the lowest PID that holds it. Sockets
// that no process holds any longer (closed while still sending) stay
// ownerless.
func seedOwners(root string, owners, comms *ebpf.Map) (seedStats, error) {
	var st seedStats
	pids, err := cgroups.Procs(root, cgroups.DefaultMaxDirs)
	if err != nil {
		return st, err
	}
	seen := map[uint64]bool{} // socket inodes already handled
	for _, pid := range pids {
		n, err := seedProcess(pid, owners, seen)
		switch {
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			st.denied++
			if st.deniedErr == nil {
				st.deniedErr = err
			}
			continue
		case err != nil:
			return st, err
		}
		st.procs++
		st.sockets += n
		if n == 0 {
			continue
		}
		var name bpfprog.CgroupOwnerComm
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
// exits meanwhile has nothing left to record.
func seedProcess(pid int, owners *ebpf.Map, seen map[uint64]bool) (int, error) {
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
		recorded, err := recordOwner(fd, pid, owners)
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
func recordOwner(fd, pid int, owners *ebpf.Map) (bool, error) {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || (domain != unix.AF_INET && domain != unix.AF_INET6) {
		return false, nil
	}
	err = owners.Update(uint32(fd), &bpfprog.CgroupSockOwner{Pid: uint32(pid)}, ebpf.UpdateNoExist)
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

// Path is the watched cgroup directory.
func (c *Cgroup) Path() string { return c.dir.Path }

// Stop detaches the programs; counting ends, and the table stays readable.
func (c *Cgroup) Stop() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.cg == nil {
		return nil
	}
	return c.cg.Close()
}

// Close detaches the programs and frees the kernel objects.
func (c *Cgroup) Close() error {
	errs := []error{c.Stop()}
	if c.table != nil {
		errs = append(errs, c.table.close())
	}
	return errors.Join(append(errs, c.objs.Close())...)
}

// Describe names the mode.
func (c *Cgroup) Describe() string { return "cgroup" }

// Drain returns every count since the previous Drain, with each row's
// owner named: the process name from the comms map (or /proc, for a name
// the map has forgotten) and the cgroup's path from its id.
func (c *Cgroup) Drain() (Snapshot, error) {
	c.rowCgroups = c.rowCgroups[:0]
	s, err := c.table.drain(nil)
	if err != nil {
		return Snapshot{}, err
	}
	nameOwners(&s, c.rowCgroups, c.names, c.objs.Comms, c.log)
	return s, nil
}

// ownedKey converts a cgroup-mode key into the model's key with the
// owner's PID, and notes the row's cgroup id for Drain to name.
func (c *Cgroup) ownedKey(k *bpfprog.CgroupOwnedFlowKey) flow.Key {
	return ownedKey(k, &c.rowCgroups)
}
