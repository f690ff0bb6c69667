package flowtable

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// The array table (bpf/include/account.h, array_add): a slot is a state
// word, the key and the counters. The state is 0 while the slot is free,
// else the key's 32-bit tag in its low half, with slotReady set once the
// key is written.
const (
	slotReady = 1 << 63
	// probes is how many slots a key may be from its home
	// (FLOW_PROBES).
	probes = 32
)

// slot is one slot of an array table keyed by K, laid out as the kernel
// lays it out: 8 bytes of state, the key, a struct flow_val.
type slot[K comparable] struct {
	State uint64
	Key   K
	Val   bpfprog.FlowVal
}

// slotSize is the size of a slot whose key has keySize bytes.
func slotSize(keySize uint32) uint32 {
	return 8 + keySize + uint32(unsafe.Sizeof(bpfprog.FlowVal{}))
}

// Slots is how many slots an array table of entries flows has for them:
// the power of 2 at or above a quarter more than entries, so that the
// table is at most four-fifths full, and a key is found, or finds a free
// slot, within a few probes. The chance that a new key finds none within
// its 32 (untracked, counted exactly like traffic that finds a hash table
// full) is about the fill ratio to the 32nd power: 1 in 1,300 at
// four-fifths, 1 in 4 billion at half.
func Slots(entries uint32) uint32 {
	n := uint32(1)
	for n < entries+entries/4 {
		n <<= 1
	}
	return n
}

// tagOf is the tag of a key whose first 48 bytes are a flow key: the high
// half of the hash that the untracked sketch uses too, never 0.
func tagOf[K comparable](k *K) uint32 {
	return uint32(flow.KeyHash(*(*[12]uint32)(unsafe.Pointer(k)))>>32) | 1
}

// home is the slot where a key of tag tag starts probing, in a table of n
// slots: the tag scaled to n.
func home(tag uint32, n int) int { return int(uint64(tag) * uint64(n) >> 32) }

// probe is the slot a key whose previous probe was at pos tries on its
// i-th probe (from 0), in a table of n slots, a power of 2: home, then 1,
// 2, 3, ... slots on.
func probe(pos, i, n int) int { return (pos + i) & (n - 1) }

// mapSlots maps the array table m into memory, as a slice of slots.
func mapSlots[K comparable](m *ebpf.Map) ([]slot[K], error) {
	n := int(m.MaxEntries())
	if want := unsafe.Sizeof(slot[K]{}); uintptr(m.ValueSize()) != want {
		return nil, fmt.Errorf("the array flow table's slots have %d bytes, not %d", m.ValueSize(), want)
	}
	size := n * int(m.ValueSize())
	page := os.Getpagesize()
	mem, err := unix.Mmap(m.FD(), 0, (size+page-1)/page*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the flow table into memory: %w", err)
	}
	return unsafe.Slice((*slot[K])(unsafe.Pointer(unsafe.SliceData(mem))), n), nil
}

// unmapSlots undoes mapSlots.
func unmapSlots[K comparable](s []slot[K]) error {
	if s == nil {
		return nil
	}
	size := uintptr(len(s)) * unsafe.Sizeof(s[0])
	page := uintptr(os.Getpagesize())
	return unix.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), (size+page-1)/page*page))
}

// scan appends a row for every flow in the array table all, adding up
// the slots that two CPUs claimed for one flow at once, and frees each
// slot when free is set, with the rows given out. No program may write
// all meanwhile.
func (t *Table[K]) scan(all []slot[K], rows []flow.Flow, free bool) []flow.Flow {
	s := all[t.base:]
	// Room for every row given out (slot 0 counts them, with the rows
	// CPUs took but have not used): the slice grows once, if at all.
	rows = slices.Grow(rows, int(min(all[0].State, uint64(t.entries))))
	first := len(rows)
	var dups []int
	// A slot is freed once no later slot's probe path can reach back to
	// it, so that duplicate still sees it.
	lag := probes * (probes + 1) / 2
	for i := range s {
		e := &s[i]
		if e.State != 0 {
			if t.duplicate(s, i) {
				dups = append(dups, i)
			} else {
				rows = append(rows, flow.Flow{
					Key:      t.conv(&e.Key),
					Counters: flow.Counters{Packets: e.Val.Packets, Bytes: e.Val.Bytes},
					L7:       flow.L7(e.Val.L7),
				})
			}
		}
		// Only a slot in use is written: a store to a free one would
		// dirty its cache line for nothing.
		if free && i >= lag && s[i-lag].State != 0 {
			s[i-lag].State = 0
		}
	}
	if free {
		for i := max(0, len(s)-lag); i < len(s); i++ {
			s[i].State = 0
		}
		// The rows given out, and each CPU's batch of them.
		for i := range all[:t.base] {
			all[i].State = 0
		}
	}
	if len(dups) > 0 {
		t.merge(rows[first:], s, dups)
	}
	return rows
}

// duplicate reports whether slot i holds a key that a slot before it on
// its probe path holds too: two CPUs claimed a slot each for a new flow.
func (t *Table[K]) duplicate(s []slot[K], i int) bool {
	tag := uint32(s[i].State)
	pos := home(tag, len(s))
	for p := 0; p < probes; p++ {
		if pos = probe(pos, p, len(s)); pos == i {
			return false
		}
		if uint32(s[pos].State) == tag && s[pos].Key == s[i].Key {
			return true
		}
	}
	return false
}

// merge adds the duplicate slots dups of s into their flows' rows.
func (t *Table[K]) merge(rows []flow.Flow, s []slot[K], dups []int) {
	extra := make(map[flow.Key]*slot[K], len(dups))
	for _, i := range dups {
		k := t.conv(&s[i].Key)
		if e, ok := extra[k]; ok {
			e.Val.Packets += s[i].Val.Packets
			e.Val.Bytes += s[i].Val.Bytes
			e.Val.L7 = bpfprog.TCL7Proto(flow.MergeL7(flow.L7(e.Val.L7), flow.L7(s[i].Val.L7)))
			continue
		}
		c := s[i]
		extra[k] = &c
	}
	for r := range rows {
		if e, ok := extra[rows[r].Key]; ok {
			rows[r].Counters.Add(flow.Counters{Packets: e.Val.Packets, Bytes: e.Val.Bytes})
			rows[r].L7 = flow.MergeL7(rows[r].L7, flow.L7(e.Val.L7))
		}
	}
}

// insert adds vals to the rows of keys in the array table all as the
// kernel does, for tests and benchmarks that fill a table directly: a
// new key takes one of the rows (of limit) and the first free slot on its
// probe path. It fails when a new key finds no row or no free slot.
func (t *Table[K]) insert(all []slot[K], keys []K, vals []bpfprog.FlowVal) error {
	s, given := all[t.base:], &all[0].State
	for i := range keys {
		tag := tagOf(&keys[i])
		pos := home(tag, len(s))
		for p := 0; ; p++ {
			if p == probes {
				return fmt.Errorf("fill flow table: no free slot for key %d within %d probes", i, probes)
			}
			pos = probe(pos, p, len(s))
			e := &s[pos]
			if e.State == 0 {
				if *given >= uint64(t.entries) {
					return fmt.Errorf("fill flow table: all %d rows taken", t.entries)
				}
				*given++
				*e = slot[K]{State: uint64(tag) | slotReady, Key: keys[i], Val: vals[i]}
				break
			}
			if uint32(e.State) == tag && e.Key == keys[i] {
				e.Val.Packets += vals[i].Packets
				e.Val.Bytes += vals[i].Bytes
				break
			}
		}
	}
	return nil
}

// HaveAtomics reports whether the kernel accepts a program with the
// atomic instructions that the array table uses: compare-and-exchange,
// which claims a slot, and fetch-and-add, which takes rows (Linux 5.12
// and later; Debian's 5.10 accepts the first and not the second).
func HaveAtomics() (bool, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SocketFilter,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.StoreMem(asm.R10, -8, asm.R0, asm.DWord),
			asm.Mov.Imm(asm.R2, 1),
			atomicInsn(asm.CmpXchg, asm.R10, asm.R2, -8),
			atomicInsn(asm.FetchAdd, asm.R10, asm.R2, -8),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
		License: "MIT",
	})
	if err == nil {
		prog.Close()
		return true, nil
	}
	if errors.Is(err, unix.EINVAL) {
		return false, nil
	}
	return false, fmt.Errorf("probe for BPF atomics: %w", err)
}

// atomicInsn is op on the 64-bit word at dst+off with src. cilium/ebpf
// v0.22 writes an instruction's immediate before it moves an atomic
// operation from the opcode into it, so an instruction that op.Mem builds
// goes to the kernel as a plain atomic add; the immediate is set here as
// the kernel reads it (the operation, with BPF_FETCH), as clang emits it
// and as cilium/ebpf keeps it for instructions read from an object.
func atomicInsn(op asm.AtomicOp, dst, src asm.Register, off int16) asm.Instruction {
	ins := op.Mem(dst, src, asm.DWord, off)
	ins.Constant = int64(op >> 8)
	return ins
}
