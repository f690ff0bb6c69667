package flowtable

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
)

// The flow cache's size (bpf/include/account_l7.h, flow_cache_bits) is set
// at load time, as log2 of its entries per CPU and generation.
const (
	cacheMinBits = 8
	cacheMaxBits = 12
	// cacheBudget is what every CPU's cache may take together, both
	// generations: 8 MiB.
	cacheBudget = 8 << 20
)

// cacheEntryBytes is the size of one CPU's copy of a cache entry.
const cacheEntryBytes = uint64(unsafe.Sizeof(bpfprog.FlowCacheEntry{}))

// CacheBits is the flow cache's size for ncpu possible CPUs, as log2 of
// its entries per CPU and generation. A CPU's cache holds at most 4096
// flows (2^12): the most that fits every CPU's in 8 MiB, and never fewer
// than 256 (2^8). batch says whether the kernel reads and clears per-CPU
// arrays in batches (HaveCacheBatch); without them (Linux 5.10) a drain
// reads the cache slot by slot, so it stays at 256.
//
// A cache that holds a CPU's flows spares every packet of theirs the
// table; one that holds too few sends most packets past it, to the
// table, which costs more than no cache (docs/performance.md). The budget keeps
// the maps within 64 MiB at the default table size up to 227 CPUs, and
// bounds what a drain reads: 4096 entries a CPU up to 14 CPUs, 2048 up
// to 28, 1024 up to 56, 512 up to 113, and 256 beyond.
func CacheBits(ncpu int, batch bool) uint32 {
	bits := uint32(cacheMaxBits)
	if !batch {
		bits = cacheMinBits
	}
	for bits > cacheMinBits && 2<<bits*cacheEntryBytes*uint64(ncpu) > cacheBudget {
		bits--
	}
	return bits
}

// cacheBytes is what the flow cache of 2^bits entries per generation
// takes on ncpu CPUs.
func cacheBytes(bits uint32, ncpu int) uint64 {
	return 2 << bits * cacheEntryBytes * uint64(ncpu)
}

// SizeCache sizes the flow cache of spec, if it has one (TC and XDP), to
// 2^bits entries per CPU and generation: the map and the programs'
// flow_cache_bits. With bits 0 it takes CacheBits for this machine: its
// possible CPUs, and whether its kernel reads per-CPU arrays in batches.
func SizeCache(spec *ebpf.CollectionSpec, bits uint32) error {
	m, ok := spec.Maps[bpfprog.TCMapFlowCache]
	if !ok {
		return nil
	}
	if bits == 0 {
		ncpu, err := ebpf.PossibleCPU()
		if err != nil {
			return fmt.Errorf("count possible CPUs: %w", err)
		}
		batch, err := HaveCacheBatch()
		if err != nil {
			return err
		}
		bits = CacheBits(ncpu, batch)
	}
	if bits < cacheMinBits || bits > cacheMaxBits {
		return fmt.Errorf("size the flow cache: 2^%d entries, want 2^%d to 2^%d", bits, cacheMinBits, cacheMaxBits)
	}
	v, ok := spec.Variables[bpfprog.TCVarFlowCacheBits]
	if !ok {
		return fmt.Errorf("size the flow cache: the object has no %s", bpfprog.TCVarFlowCacheBits)
	}
	if err := v.Set(bits); err != nil {
		return fmt.Errorf("size the flow cache: %w", err)
	}
	m.MaxEntries = 2 << bits
	return nil
}

// HaveCacheBatch reports whether the kernel reads per-CPU arrays in
// batches (BPF_MAP_LOOKUP_BATCH), which Linux 5.10 refuses for them.
func HaveCacheBatch() (bool, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return false, fmt.Errorf("probe for batch reads of per-CPU arrays: %w", err)
	}
	defer m.Close()
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return false, fmt.Errorf("count possible CPUs: %w", err)
	}
	var cursor ebpf.MapBatchCursor
	_, err = m.BatchLookup(&cursor, make([]uint32, 1), make([]uint64, ncpu), nil)
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		return false, nil
	case err == nil, errors.Is(err, ebpf.ErrKeyNotExist):
		return true, nil
	}
	return false, fmt.Errorf("probe for batch reads of per-CPU arrays: %w", err)
}
