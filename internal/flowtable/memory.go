package flowtable

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
)

// Bytes estimates the kernel memory that the two flow tables of
// entries flows in layout lock on a machine with ncpu possible CPUs: per
// entry, a preallocated hash element (list node, hash and padded key:
// about 96 bytes) and a 16-byte bucket, with the counters (and application
// protocol, 24 bytes) in the element when shared, or behind an 8-byte
// pointer on every CPU when per-CPU; and the two generations of the flow
// cache on every CPU (TC and XDP; 32 KiB a CPU).
func Bytes(entries uint32, ncpu int, layout Layout) uint64 {
	val := uint64(unsafe.Sizeof(bpfprog.FlowVal{}))
	per := 96 + 16 + val
	if layout == PerCPU {
		per = 96 + 16 + 8 + val*uint64(ncpu)
	}
	cache := 2 * CacheSlots * uint64(unsafe.Sizeof(bpfprog.FlowCacheEntry{})) * uint64(ncpu)
	return 2*uint64(entries)*per + cache
}

// CacheSlots is how many flows the flow cache holds per CPU and
// generation (FLOW_CACHE_SLOTS in bpf/include/account_l7.h).
const CacheSlots = 256

// CheckMemory refuses a flow table that would take more than half of
// the memory the machine has available, before anything is loaded.
func CheckMemory(entries uint32) error {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("count possible CPUs: %w", err)
	}
	avail, err := memAvailable()
	if err != nil {
		return nil // without /proc/meminfo, the kernel has the last word
	}
	if need := Bytes(entries, ncpu, LayoutFor(ncpu)); need > avail/2 {
		return fmt.Errorf("--max-entries %d would lock about %s of kernel memory (two flow tables of %d flows), more than half of the %s available: lower --max-entries",
			entries, MiB(need), entries, MiB(avail))
	}
	return nil
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
