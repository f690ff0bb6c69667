package flow

import "math"

// HLLRegisters is the number of HyperLogLog registers the eBPF programs
// keep for flows that found the flow table full. It equals the C constant
// HLL_REGISTERS; a test in internal/capture checks it.
const HLLRegisters = 1024

// hllBits is log2(HLLRegisters): the hash bits that pick a register.
const hllBits = 10

// HLL is a HyperLogLog sketch of distinct flow keys. The kernel fills it
// with the ranks of hashed keys; it answers "about how many distinct
// flows" with a standard error of 1.04/sqrt(1024), about 3.3%.
type HLL [HLLRegisters]uint8

// Merge folds o into h (a per-CPU slot, or an earlier sketch).
func (h *HLL) Merge(o *HLL) {
	for i, r := range o {
		if r > h[i] {
			h[i] = r
		}
	}
}

// Add records a key hash, as the kernel does.
func (h *HLL) Add(hash uint64) {
	idx := hash >> (64 - hllBits)
	rest := hash<<hllBits | 1<<(hllBits-1) // a set bit bounds the rank
	rank := uint8(1)
	for rest&(1<<63) == 0 {
		rank++
		rest <<= 1
	}
	if rank > h[idx] {
		h[idx] = rank
	}
}

// Estimate returns the estimated number of distinct keys added, with the
// usual small-range (linear counting) correction.
func (h *HLL) Estimate() uint64 {
	const m = float64(HLLRegisters)
	alpha := 0.7213 / (1 + 1.079/m)
	var sum float64
	zeros := 0
	for _, r := range h {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	est := alpha * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros))
	}
	return uint64(math.Round(est))
}

// KeyHash is the hash the kernel applies to a flow key's 48 raw bytes,
// read as twelve little-endian 32-bit words: each word is mixed in with a
// multiply and shift, then murmur3's 64-bit finalizer spreads the bits.
func KeyHash(words [12]uint32) uint64 {
	h := uint64(0x9E3779B97F4A7C15)
	for _, w := range words {
		h ^= uint64(w)
		h *= 0xFF51AFD7ED558CCD
		h ^= h >> 33
	}
	h ^= h >> 33
	h *= 0xC4CEB9FE1A85EC53
	h ^= h >> 33
	return h
}
