// Package privs gives up the privileges a run no longer needs once its
// programs are attached: the capabilities that only loading and attaching
// use, the ambient set, and the right to gain privileges again. A daemon
// then serves HTTP and TLS for its whole life with only what draining and
// detaching still need.
package privs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cap is a Linux capability number.
type Cap uint

// The capabilities this tool uses, by number (linux/capability.h).
const (
	CapDACReadSearch Cap = 2
	CapNetAdmin      Cap = 12
	CapSysPtrace     Cap = 19
	CapSysAdmin      Cap = 21
	CapPerfmon       Cap = 38
	CapBPF           Cap = 39
)

var capNames = map[Cap]string{
	CapDACReadSearch: "CAP_DAC_READ_SEARCH", CapNetAdmin: "CAP_NET_ADMIN", CapSysPtrace: "CAP_SYS_PTRACE",
	CapSysAdmin: "CAP_SYS_ADMIN", CapPerfmon: "CAP_PERFMON", CapBPF: "CAP_BPF",
}

func (c Cap) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return fmt.Sprintf("cap_%d", c)
}

// Set is a set of capabilities, bit n for capability n.
type Set uint64

// Of is the set of caps.
func Of(caps ...Cap) Set {
	var s Set
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return s&(1<<c) != 0 }

func (s Set) String() string {
	var names []string
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			names = append(names, c.String())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, " ")
}

// capHeader and capData are the kernel's __user_cap_header_struct and
// __user_cap_data_struct, version 3: two 32-bit words per set.
type capHeader struct {
	version uint32
	pid     int32
}

type capData struct {
	effective, permitted, inheritable uint32
}

const capVersion3 = 0x20080522

// current reads this thread's effective and permitted sets.
func current() (eff, perm Set, err error) {
	h := capHeader{version: capVersion3}
	var d [2]capData
	if _, _, e := syscall.RawSyscall(unix.SYS_CAPGET, uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(&d[0])), 0); e != 0 {
		return 0, 0, fmt.Errorf("capget: %w", e)
	}
	eff = Set(d[0].effective) | Set(d[1].effective)<<32
	perm = Set(d[0].permitted) | Set(d[1].permitted)<<32
	return eff, perm, nil
}

// Effective returns this process's effective capabilities.
func Effective() (Set, error) {
	eff, _, err := current()
	return eff, err
}

// Result says what Drop did.
type Result struct {
	Kept, Dropped Set
	// Bounding is whether the bounding set was cleared too; it takes
	// CAP_SETPCAP, which a run given only the capabilities it needs has
	// not (a systemd unit or a container bounds it already).
	Bounding bool
	// User is the account the process switched to, nil if it kept its own.
	User *User
}

// User is an account to run as: its name, user and group ids. (Looking
// one up by name is the caller's: os/user would make every binary that
// imports this package a cgo binary where cgo is on, and Drop refuses to
// run in one.)
type User struct {
	Name     string
	UID, GID int
}

// CanRead reports whether u may read path by its permission bits, as the
// kernel decides for a process with u's ids, no supplementary groups and
// no capability that bypasses them.
func (u *User) CanRead(path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	switch {
	case int(st.Uid) == u.UID:
		return st.Mode&unix.S_IRUSR != 0
	case int(st.Gid) == u.GID:
		return st.Mode&unix.S_IRGRP != 0
	default:
		return st.Mode&unix.S_IROTH != 0
	}
}

// startDeathSignal is the parent-death signal the process started with.
// The kernel keeps it per thread and sends it when the parent dies if any
// thread has it; only the main thread inherits it across exec, and Go runs
// package initialization there, so it is read then, once.
var startDeathSignal = func() int {
	var sig int
	if unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0, 0, 0) != nil {
		return 0
	}
	return sig
}()

// become switches every thread to u, with no supplementary groups,
// keeping the permitted capabilities across the change (the effective
// ones are cleared by it; capset restores what is kept). The kernel
// forgets the parent-death signal when credentials change; whoever
// started the process asked for it (unshare --kill-child, a supervisor),
// so it is set again, and sent at once if the parent died meanwhile.
func become(u *User) error {
	deathSig := startDeathSignal
	parent := os.Getppid()
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0); e != 0 {
		return fmt.Errorf("keep capabilities across the switch to %s: %w", u.Name, e)
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("clear the supplementary groups: %w", err)
	}
	if err := syscall.Setresgid(u.GID, u.GID, u.GID); err != nil {
		return fmt.Errorf("switch to group %d of %s: %w", u.GID, u.Name, err)
	}
	if err := syscall.Setresuid(u.UID, u.UID, u.UID); err != nil {
		return fmt.Errorf("switch to user %s (%d): %w", u.Name, u.UID, err)
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0); e != 0 {
		return fmt.Errorf("reset keep-capabilities: %w", e)
	}
	if deathSig != 0 {
		if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(deathSig), 0); e != 0 {
			return fmt.Errorf("set the parent-death signal again: %w", e)
		}
		if os.Getppid() != parent {
			return syscall.Kill(os.Getpid(), syscall.Signal(deathSig))
		}
	}
	return nil
}

// Drop keeps only keep of this process's capabilities, in every thread:
// the effective, permitted and inheritable sets shrink to keep, the
// ambient set is cleared, the bounding set too where the process may, and
// no_new_privs is set, so that nothing this process runs gains a
// privilege. With as not nil, the process also becomes that user (which
// takes CAP_SETUID and CAP_SETGID), keeping keep. It needs a binary built
// without cgo: Go changes every thread's credentials only then
// (syscall.AllThreadsSyscall).
func Drop(keep Set, as *User) (Result, error) {
	eff, perm, err := current()
	if err != nil {
		return Result{}, err
	}
	r := Result{Kept: perm & keep, Dropped: perm &^ keep}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e != 0 {
		if e == syscall.ENOTSUP {
			return Result{}, errors.New("this binary was built with cgo, so it cannot change every thread's capabilities; build it with CGO_ENABLED=0")
		}
		return Result{}, fmt.Errorf("set no_new_privs: %w", e)
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); e != 0 && e != syscall.EINVAL {
		return Result{}, fmt.Errorf("clear the ambient capabilities: %w", e)
	}
	if eff.Has(Cap(unix.CAP_SETPCAP)) {
		r.Bounding = true
		for c := Cap(0); c <= Cap(unix.CAP_LAST_CAP); c++ {
			if keep.Has(c) {
				continue
			}
			if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); e != 0 && e != syscall.EINVAL {
				return Result{}, fmt.Errorf("drop %s from the bounding set: %w", c, e)
			}
		}
	}
	if as != nil {
		if err := become(as); err != nil {
			return Result{}, err
		}
		r.User = as
	}
	h := capHeader{version: capVersion3}
	k := perm & keep
	d := [2]capData{
		{effective: uint32(k), permitted: uint32(k)},
		{effective: uint32(k >> 32), permitted: uint32(k >> 32)},
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(&d[0])), 0); e != 0 {
		return Result{}, fmt.Errorf("capset: %w", e)
	}
	return r, nil
}

// Status reads the capability sets (CapInh, CapPrm, CapEff, CapBnd,
// CapAmb) and NoNewPrivs of process pid (0: this one) as the kernel
// reports them in /proc/PID/status.
func Status(pid int) (map[string]uint64, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (!strings.HasPrefix(k, "Cap") && k != "NoNewPrivs") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, line, err)
		}
		out[k] = n
	}
	return out, nil
}
