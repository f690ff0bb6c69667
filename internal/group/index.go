package group

import "hash/maphash"

// Index finds the group a key belongs to among the groups found so far,
// which the caller keeps in a slice of its own, numbered from 0 in the
// order they were found. It is an open-addressing table of 32-bit group
// numbers, found by a 64-bit hash of the group's key: at a million groups
// a Go map keyed by the ~100-byte Key moves and scans far more memory,
// and costs over ten times as much (BenchmarkGroupMillion). The zero
// Index is empty and ready.
type Index struct {
	seed   maphash.Seed
	seed64 uint64   // random, so that traffic cannot be crafted to collide
	slots  []int32  // group number + 1; 0 is a free slot
	hashes []uint64 // per group, to move the groups when the table grows
}

// Len is the number of groups found.
func (x *Index) Len() int { return len(x.hashes) }

// Reset forgets every group, keeping the memory.
func (x *Index) Reset() {
	clear(x.slots)
	x.hashes = x.hashes[:0]
}

// Slot returns the number of g's group, and whether g starts a new one,
// which then gets the number Len had before the call. same(j) reports
// whether group j's key equals g; it is asked only for groups whose hash
// equals g's.
func (x *Index) Slot(g *Key, same func(j int) bool) (int, bool) {
	if x.slots == nil {
		x.seed = maphash.MakeSeed()
		x.seed64 = maphash.String(x.seed, "pktstat-bpf group")
		x.slots = make([]int32, 64)
	}
	h := x.hash(g)
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			break
		}
		if j := int(s - 1); x.hashes[j] == h && same(j) {
			return j, false
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

// put writes group j, of hash h, into the first free slot from h's.
func (x *Index) put(h uint64, j int) {
	mask := uint64(len(x.slots) - 1)
	i := h & mask
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = int32(j + 1)
}

// grow doubles the table and puts every group in again.
func (x *Index) grow() {
	x.slots = make([]int32, 2*len(x.slots))
	for j, h := range x.hashes {
		x.put(h, j)
	}
}

// hash is the hash of the group's flow key (flow.Key.Hash), with its
// application protocol and direction mixed in.
func (x *Index) hash(g *Key) uint64 {
	const odd = 0x9e3779b97f4a7c15
	return g.Key.Hash(x.seed64, x.seed) ^ (uint64(g.L7)<<8|uint64(g.Dir))*odd
}
