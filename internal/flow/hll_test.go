package flow

import (
	"math/rand/v2"
	"testing"
)

func TestHLLEstimateWithinErrorBounds(t *testing.T) {
	for _, n := range []int{0, 1, 100, 4096, 100000, 1000000} {
		var h HLL
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		for i := 0; i < n; i++ {
			var w [12]uint32
			for j := range w {
				w[j] = rng.Uint32()
			}
			h.Add(KeyHash(w))
			if i%3 == 0 { // repeats must not count twice
				h.Add(KeyHash(w))
			}
		}
		got := h.Estimate()
		// Four standard errors (4 * 3.25%) bound a correct sketch with
		// overwhelming probability; small counts are exact enough to check tightly.
		tol := 0.13*float64(n) + 1
		if d := float64(got) - float64(n); d > tol || d < -tol {
			t.Errorf("estimate of %d distinct keys = %d, off by more than %.0f", n, got, tol)
		}
	}
}

func TestHLLMergeIsUnion(t *testing.T) {
	var a, b, both HLL
	for i := uint32(0); i < 20000; i++ {
		var w [12]uint32
		w[0] = i
		h := KeyHash(w)
		if i < 12000 {
			a.Add(h)
		}
		if i >= 8000 {
			b.Add(h)
		}
		both.Add(h)
	}
	a.Merge(&b)
	if a != both {
		t.Fatal("merging two sketches differs from one sketch of the union")
	}
}

func TestKeyHashSpreadsSingleBitChanges(t *testing.T) {
	var w [12]uint32
	base := KeyHash(w)
	for i := range w {
		for bit := 0; bit < 32; bit += 7 {
			v := w
			v[i] ^= 1 << bit
			if d := popcount(base ^ KeyHash(v)); d < 12 {
				t.Errorf("flipping word %d bit %d changed only %d hash bits", i, bit, d)
			}
		}
	}
}

func popcount(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
