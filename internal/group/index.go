package group

import (
	"hash/maphash"
	"slices"
)

// Index finds the group a key belongs to among the groups found so far,
// which the caller keeps in a slice of its own, numbered from 0 in the
// order they were found. It is an open-addressing table, placed by a
// 64-bit hash of the group's key, whose slots hold a group's number and
// the top half of its hash: a probe reads one slot, and reads the key
// only when the halves agree. At a million groups a Go map keyed by the
// ~100-byte Key moves and scans far more memory, and costs about ten
// times as much (BenchmarkGroupMillion). The zero Index is empty and
// ready.
type Index struct {
	seed   maphash.Seed
	seed64 uint64   // random, so that traffic cannot be crafted to collide
	slots  []uint64 // the hash's top 32 bits, then group number + 1; 0 is free
	hashes []uint64 // per group, to move the groups when the table grows
	// touched is what touch read: its only use is to be written.
	touched uint64
}

// Len is the number of groups found.
func (x *Index) Len() int { return len(x.hashes) }

// Reset forgets every group, keeping the memory.
func (x *Index) Reset() {
	clear(x.slots)
	x.hashes = x.hashes[:0]
}

// Reserve makes room for n groups, so that finding up to n groups never
// grows the table: 24 bytes per group reserved, most of which a few
// groups never touch.
func (x *Index) Reserve(n int) {
	x.init()
	size := len(x.slots)
	for size < 2*n {
		size *= 2
	}
	if size > len(x.slots) {
		x.slots = make([]uint64, size)
		for j, h := range x.hashes {
			x.put(h, j)
		}
	}
	if n > cap(x.hashes) {
		x.hashes = slices.Grow(x.hashes, n-len(x.hashes))
	}
}

func (x *Index) init() {
	if x.slots == nil {
		x.seed = maphash.MakeSeed()
		x.seed64 = maphash.String(x.seed, "pktstat-bpf group")
		x.slots = make([]uint64, 64)
	}
}

// Slot returns the number of g's group, and whether g starts a new one,
// which then gets the number Len had before the call. same(j) reports
// whether group j's key equals g; it is asked only for groups whose hash
// equals g's.
func (x *Index) Slot(g *Key, same func(j int) bool) (int, bool) {
	x.init()
	return x.slot(g, x.hash(g), same)
}

// slot is Slot for g of hash h.
func (x *Index) slot(g *Key, h uint64, same func(j int) bool) (int, bool) {
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			break
		}
		if s>>32 == h>>32 && same(int(uint32(s)-1)) {
			return int(uint32(s) - 1), false
		}
	}
	j := len(x.hashes)
	x.hashes = append(x.hashes, h)
	// At most half full, so that probes stay short.
	if 2*len(x.hashes) > len(x.slots) {
		x.grow()
	} else {
		x.put(h, j)
	}
	return j, true
}

// touch reads the first slot of each hash, so that the CPU loads them from
// memory together (the loads do not depend on each other); what it reads
// is kept only so that the compiler keeps the reads.
func (x *Index) touch(hs []uint64) {
	mask := uint64(len(x.slots) - 1)
	var sum uint64
	for _, h := range hs {
		sum += x.slots[h&mask]
	}
	x.touched += sum
}

// put writes group j, of hash h, into the first free slot from h's.
func (x *Index) put(h uint64, j int) {
	mask := uint64(len(x.slots) - 1)
	i := h & mask
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = h>>32<<32 | uint64(j+1)
}

// grow doubles the table and puts every group in again.
func (x *Index) grow() { x.Reserve(len(x.slots)) }

// hash is the hash of the group's flow key (flow.Key.Hash), with its
// application protocol and direction mixed in.
func (x *Index) hash(g *Key) uint64 {
	const odd = 0x9e3779b97f4a7c15
	return g.Key.Hash(x.seed64, x.seed) ^ (uint64(g.L7)<<8|uint64(g.Dir))*odd
}
