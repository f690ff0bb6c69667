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

// The array table (bpf/include/account.h, array_add): elements of one
// size (a slot: a state word, the key, the counters) in three parts: the
// reservations (the rows given out, each CPU's batch of them), the index
// (indexSlots 64-bit slots to an element) and the rows, handed out in
// order. An index slot is 0 while free, else the key's 32-bit tag, its
// row's number from bit 32, and slotReady once the row holds the key. A
// row's state word is its tag, from bit 32 its index slot, and rowCrowded
// when the CPU that claimed it passed a slot of its tag not yet ready: a
// row without it cannot be a flow's second.
const (
	slotReady  = 1 << 63
	rowCrowded = 1 << 63
	// probes is how many slots a key may be from its home
	// (FLOW_PROBES).
	probes = 32
	// indexSlots is how many index slots an element holds
	// (FLOW_INDEX_SLOTS).
	indexSlots = 8
)

// slot is one element of an array table keyed by K, laid out as the
// kernel lays it out: 8 bytes of state, the key, a struct flow_val. A row
// is one; an element of the index holds indexSlots slots of 8 bytes.
type slot[K comparable] struct {
	State uint64
	Key   K
	Val   bpfprog.FlowVal
}

// slotSize is the size of a slot whose key has keySize bytes.
func slotSize(keySize uint32) uint32 {
	return 8 + keySize + uint32(unsafe.Sizeof(bpfprog.FlowVal{}))
}

// Slots is how many index slots an array table of entries flows has: the
// power of 2 at or above a quarter more than entries, so that the index
// is at most four-fifths full, and a key is found, or finds a free slot,
// within a few probes. The chance that a new key finds none within its 32
// (untracked, counted exactly like traffic that finds a hash table full)
// is about the fill ratio to the 32nd power: 1 in 1,300 at four-fifths, 1
// in 4 billion at half.
func Slots(entries uint32) uint32 {
	n := uint32(1)
	for n < entries+entries/4 {
		n <<= 1
	}
	return n
}

// indexElems is how many elements an index of slots slots takes.
func indexElems(slots uint32) uint32 { return (slots + indexSlots - 1) / indexSlots }

// arrayElems is how many elements an array table of entries rows has, with
// base elements of reservations before its index.
func arrayElems(entries, base uint32) uint32 { return base + indexElems(Slots(entries)) + entries }

// layArray sets where the array table's index and rows are, for a table
// of rows rows with base elements of reservations before its index.
func (t *Table[K]) layArray(rows uint32, base int) {
	t.entries, t.base, t.nslots = int(rows), base, int(Slots(rows))
	t.rowsAt = base + int(indexElems(uint32(t.nslots)))
}

// ArrayRows finds where the rows of an array table of elems elements,
// laid out for ncpu possible CPUs, start and how many there are: the
// inverse of arrayElems, for tests that read a table's rows directly.
func ArrayRows(elems uint32, ncpu int) (first, rows uint32, err error) {
	base := uint32(1 + ncpu)
	for n := uint32(1); n != 0; n <<= 1 {
		if at := base + indexElems(n); at <= elems && Slots(elems-at) == n {
			return at, elems - at, nil
		}
	}
	return 0, 0, fmt.Errorf("no array flow table has %d elements with %d CPUs", elems, ncpu)
}

// tableHash is the array table's hash of a key's first 48 bytes, a flow
// key as six little-endian 64-bit words (table_hash in
// bpf/include/account.h).
func tableHash(w *[6]uint64) uint64 {
	h := w[0]*0x9E3779B97F4A7C15 + w[1]*0xC2B2AE3D27D4EB4F + w[2]*0x165667B19E3779F9 +
		w[3]*0xD6E8FEB86659FD93 + w[4]*0xFF51AFD7ED558CCD + w[5]*0xC4CEB9FE1A85EC53
	h ^= h >> 32
	h *= 0x9E3779B97F4A7C15
	h ^= h >> 29
	return h
}

// tagOf is the tag of a key whose first 48 bytes are a flow key: the high
// half of its tableHash, never 0.
func tagOf[K comparable](k *K) uint32 {
	return uint32(tableHash((*[6]uint64)(unsafe.Pointer(k)))>>32) | 1
}

// home is the slot where a key of tag tag starts probing, in an index of
// n slots: the tag scaled to n.
func home(tag uint32, n int) int { return int(uint64(tag) * uint64(n) >> 32) }

// probe is the slot a key whose previous probe was at pos tries on its
// i-th probe (from 0), in an index of n slots, a power of 2: home, then 1,
// 2, 3, ... slots on.
func probe(pos, i, n int) int { return (pos + i) & (n - 1) }

// link is what bits 32 to 62 of a word name: an index slot's row, or a
// row's index slot.
func link(word uint64) int { return int(word >> 32 & 0x7FFFFFFF) }

// index is index slot pos of the array table all.
func (t *Table[K]) index(all []slot[K], pos int) *uint64 {
	return &(*[indexSlots]uint64)(unsafe.Pointer(&all[t.base+pos/indexSlots]))[pos%indexSlots]
}

// mapSlots maps the array table m into memory, as a slice of slots.
func mapSlots[K comparable](m *ebpf.Map) ([]slot[K], error) {
	n := int(m.MaxEntries())
	if want := unsafe.Sizeof(slot[K]{}); uintptr(m.ValueSize()) != want || want < indexSlots*8 {
		return nil, fmt.Errorf("the array flow table's slots have %d bytes, not %d (at least %d)", m.ValueSize(), want, indexSlots*8)
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
// the rows that two CPUs claimed for one flow at once, and frees each
// row, its index slot and the rows given out when free is set. It reads
// only the rows given out, which sit together from the first. No program
// may write all meanwhile.
func (t *Table[K]) scan(all []slot[K], rows []flow.Flow, free bool) []flow.Flow {
	// The rows given out (element 0 counts them, with any that CPUs
	// took but have not used, and may run past the last).
	rs := all[t.rowsAt : t.rowsAt+int(min(all[0].State, uint64(t.entries)))]
	rows = slices.Grow(rows, len(rs))
	first := len(rows)
	var dups []int
	for i := range rs {
		e := &rs[i]
		if e.State == 0 {
			continue // taken by a CPU, not used
		}
		if t.duplicate(all, i) {
			dups = append(dups, i)
			continue
		}
		rows = append(rows, flow.Flow{
			Key:      t.conv(&e.Key),
			Counters: flow.Counters{Packets: e.Val.Packets, Bytes: e.Val.Bytes},
			L7:       flow.L7(e.Val.L7),
		})
	}
	if len(dups) > 0 {
		t.merge(rows[first:], rs, dups)
	}
	if free {
		t.free(all, rs)
	}
	return rows
}

// free frees the rows rs of the array table all, their index slots and
// the rows given out. Only what is in use is written, since a store to a
// free slot would dirty its cache line for nothing; but where there is a
// row for every eight index slots or more, the index is cleared whole, in
// order, rather than slot by slot at random.
func (t *Table[K]) free(all []slot[K], rs []slot[K]) {
	index := all[t.base:t.rowsAt]
	whole := len(rs) >= len(index)
	if whole {
		clear(index)
	}
	for i := range rs {
		if rs[i].State != 0 {
			if !whole {
				*t.index(all, link(rs[i].State)) = 0
			}
			rs[i].State = 0
		}
	}
	for i := range all[:t.base] {
		all[i].State = 0
	}
}

// duplicate reports whether row i of the array table all holds a key that
// an index slot before its own, on its probe path, names the row of too:
// two CPUs claimed a slot and a row each for a new flow. Only a crowded
// row can be one, and only those are looked up in the index.
func (t *Table[K]) duplicate(all []slot[K], i int) bool {
	r := &all[t.rowsAt+i]
	if r.State&rowCrowded == 0 {
		return false
	}
	tag, own := uint32(r.State), link(r.State)
	pos := home(tag, t.nslots)
	for p := 0; p < probes; p++ {
		if pos = probe(pos, p, t.nslots); pos == own {
			return false
		}
		if s := *t.index(all, pos); s != 0 && uint32(s) == tag && all[t.rowsAt+link(s)].Key == r.Key {
			return true
		}
	}
	return false
}

// merge adds the duplicate rows dups of rs into their flows' rows.
func (t *Table[K]) merge(rows []flow.Flow, rs []slot[K], dups []int) {
	extra := make(map[flow.Key]*slot[K], len(dups))
	for _, i := range dups {
		k := t.conv(&rs[i].Key)
		if e, ok := extra[k]; ok {
			e.Val.Packets += rs[i].Val.Packets
			e.Val.Bytes += rs[i].Val.Bytes
			e.Val.L7 = bpfprog.TCL7Proto(flow.MergeL7(flow.L7(e.Val.L7), flow.L7(rs[i].Val.L7)))
			continue
		}
		c := rs[i]
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
// new key takes the next row (of t.entries) and the first free index
// slot on its probe path. It fails when a new key finds no row or no free
// slot.
func (t *Table[K]) insert(all []slot[K], keys []K, vals []bpfprog.FlowVal) error {
	given := &all[0].State
	for i := range keys {
		tag := tagOf(&keys[i])
		pos := home(tag, t.nslots)
		for p := 0; ; p++ {
			if p == probes {
				return fmt.Errorf("fill flow table: no free slot for key %d within %d probes", i, probes)
			}
			pos = probe(pos, p, t.nslots)
			s := t.index(all, pos)
			if *s == 0 {
				if *given >= uint64(t.entries) {
					return fmt.Errorf("fill flow table: all %d rows taken", t.entries)
				}
				row := *given
				*given++
				all[t.rowsAt+int(row)] = slot[K]{State: uint64(pos)<<32 | uint64(tag), Key: keys[i], Val: vals[i]}
				*s = row<<32 | uint64(tag) | slotReady
				break
			}
			if r := &all[t.rowsAt+link(*s)]; uint32(*s) == tag && r.Key == keys[i] {
				r.Val.Packets += vals[i].Packets
				r.Val.Bytes += vals[i].Bytes
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
