package flowtable

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
)

// Bytes estimates the kernel memory that the two flow tables of
// entries flows in layout (resolved) lock on a machine with ncpu possible
// CPUs, with TC's and XDP's key: per entry, in a hash table, a
// preallocated element (list node, hash and padded key: about 96 bytes)
// and a 16-byte bucket, with the counters (and application protocol, 24
// bytes) in the element when shared, or behind an 8-byte pointer on every
// CPU when per-CPU; in an array table, entries rows of state, key and
// counters, and an index of Slots(entries) 8-byte slots, eight to a row's
// size; and the two generations of the flow cache on every CPU
// (TC and XDP; CacheBits: 576 KiB a CPU up to 14 CPUs, at most 8 MiB in
// all up to 227, 36 KiB a CPU beyond).
func Bytes(entries uint32, ncpu int, layout Layout) uint64 {
	val := uint64(unsafe.Sizeof(bpfprog.FlowVal{}))
	var table uint64
	switch layout {
	case Array:
		table = uint64(arrayElems(entries, uint32(1+ncpu))) * uint64(unsafe.Sizeof(slot[bpfprog.FlowKey]{}))
	case PerCPU:
		table = uint64(entries) * (96 + 16 + 8 + val*uint64(ncpu))
	default:
		table = uint64(entries) * (96 + 16 + val)
	}
	return 2*table + cacheBytes(CacheBits(ncpu, true), ncpu)
}

// CheckMemory refuses a flow table that would take more than half of
// the memory available to this process, before anything is loaded: the
// machine's, or less in a memory cgroup (a container, a systemd unit with
// MemoryMax=), which the maps are charged to. layout is the tables'
// (resolved).
func CheckMemory(entries uint32, layout Layout) error {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("count possible CPUs: %w", err)
	}
	avail, err := memAvailable()
	if err != nil {
		return nil // without /proc/meminfo, the kernel has the last word
	}
	where := "available"
	if self, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, root := range cgroups.Mounts("cgroup2") {
			if left, ok := cgroupMemoryLeft(self, root); ok && left < avail {
				avail, where = left, "left under this process's cgroup memory limit"
			}
		}
	}
	if need := Bytes(entries, ncpu, layout); need > avail/2 {
		return fmt.Errorf("--max-entries %d would lock about %s of kernel memory (two flow tables of %d flows), more than half of the %s %s: lower --max-entries",
			entries, MiB(need), entries, MiB(avail), where)
	}
	return nil
}

// cgroupMemoryLeft is how much memory the cgroup v2 group of this process
// (self, the text of /proc/self/cgroup; root, where cgroup2 is mounted)
// and its ancestors still allow: the least memory.max - memory.current
// among those that set a limit. ok is false when none does.
func cgroupMemoryLeft(self []byte, root string) (left uint64, ok bool) {
	var rel string
	for _, line := range strings.Split(string(self), "\n") {
		if r, found := strings.CutPrefix(line, "0::"); found {
			rel = r
		}
	}
	if rel == "" {
		return 0, false
	}
	for dir := filepath.Join(root, rel); strings.HasPrefix(dir, root); dir = filepath.Dir(dir) {
		limit, err1 := readCgroupValue(filepath.Join(dir, "memory.max"))
		used, err2 := readCgroupValue(filepath.Join(dir, "memory.current"))
		if err1 == nil && err2 == nil {
			free := uint64(0)
			if limit > used {
				free = limit - used
			}
			if !ok || free < left {
				left, ok = free, true
			}
		}
		if dir == root {
			break
		}
	}
	return left, ok
}

// readCgroupValue reads a cgroup file that holds one number; "max" (no
// limit) is an error, as is a missing file.
func readCgroupValue(path string) (uint64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
}

// MiB renders a byte count in whole mebibytes, for messages.
func MiB(b uint64) string { return fmt.Sprintf("%d MiB", b>>20) }

// memAvailable reads MemAvailable from /proc/meminfo, in bytes.
func memAvailable() (uint64, error) {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var kb uint64
		if f := bytes.Fields(sc.Bytes()); len(f) >= 2 && string(f[0]) == "MemAvailable:" {
			kb, err = strconv.ParseUint(string(f[1]), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no MemAvailable in /proc/meminfo")
}
