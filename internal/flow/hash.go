package flow

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// Hash mixes the key's fields into 64 bits (wyhash's multiply-fold), for
// tables that find a key by its hash: at 100,000s of keys, a table of
// 8-byte hashes stays in the CPU caches where a Go map keyed by the
// ~100-byte Key does not. seed should be random, so that traffic cannot be
// crafted to collide. The owner hashes by its interned handle's identity,
// through maphash with ownerSeed. The direction and the interface's name
// (which its index stands for) are left out: keys that differ only there
// collide, and callers compare the keys of equal hashes.
func (k *Key) Hash(seed uint64, ownerSeed maphash.Seed) uint64 {
	const (
		m1 = 0xa0761d6478bd642f
		m2 = 0xe7037ed1a0b428db
		m3 = 0x8ebc6af09c88c6e3
	)
	mum := func(a, b uint64) uint64 {
		hi, lo := bits.Mul64(a, b)
		return hi ^ lo
	}
	s, d := k.Src.As16(), k.Dst.As16()
	h := mum(binary.LittleEndian.Uint64(s[:8])^seed^m1, binary.LittleEndian.Uint64(s[8:])^m2)
	h = mum(h^binary.LittleEndian.Uint64(d[:8])^m3, binary.LittleEndian.Uint64(d[8:])^m1)
	h = mum(h^(uint64(k.EtherType)<<48|uint64(k.Proto)<<40|uint64(k.Flags)<<32|uint64(k.VLAN)<<16)^m2,
		(uint64(k.SrcPort)<<48|uint64(k.DstPort)<<32|uint64(k.Ifindex))^m3)
	if !k.Owner.IsZero() {
		// Equal owners share one interned handle, so its identity hashes them.
		h ^= maphash.Comparable(ownerSeed, k.Owner)
	}
	return h
}
