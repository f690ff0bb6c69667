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
}

// Drop keeps only keep of this process's capabilities, in every thread:
// the effective, permitted and inheritable sets shrink to keep, the
// ambient set is cleared, the bounding set too where the process may, and
// no_new_privs is set, so that nothing this process runs gains a
// privilege. It needs a binary built without cgo: Go changes every
// thread's capabilities only then (syscall.AllThreadsSyscall).
func Drop(keep Set) (Result, error) {
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
