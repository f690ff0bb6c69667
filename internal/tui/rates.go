package tui

import (
	"cmp"
	"hash/maphash"
	"slices"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
)

// Rate is traffic per second over one refresh interval.
type Rate struct {
	BPS float64 // bits per second
	PPS float64 // packets per second
}

// add adds the rate of delta over dt seconds to r.
func (r *Rate) add(delta flow.Counters, secs float64) {
	if secs <= 0 {
		return
	}
	r.BPS += float64(delta.Bytes) * 8 / secs
	r.PPS += float64(delta.Packets) / secs
}

// Flow is one row of the table.
type Flow struct {
	Key flow.Key
	// L7 is the application protocol found in the flow's payload, or "".
	L7 string
	// Total is what the kernel counted for the flow since the capture began
	// (or since the flow last came back after expiring).
	Total flow.Counters
	// Rate is over the interval between the last two readings, from what
	// the kernel counted in it: a flow that went quiet has a zero rate.
	Rate Rate
	// Out is true for traffic the watched interface (or cgroup) sent.
	Out bool
	// LastActive is the time of the last reading at which Total grew.
	LastActive time.Time

	gen  uint64 // the reading that last counted traffic of the flow
	slot int    // index in Tracker.all
	row  int    // index in the last drain (Tracker.order)
	hash uint64 // Tracker.hash of Key
	next *Flow  // the next flow with the same hash (almost never any)

	// Display and search text, built the first time a row is shown or
	// filtered and kept, since keys never change.
	src, dst, proto string
	search          string
	// group is the grouping of a grouped row (group.go), whose text
	// setGroupText builds; 0 for a flow.
	group   group.By
	groupL7 flow.L7
}

// Tracker turns successive drains of the kernel's table into per-flow
// totals and current rates. Each drain holds what was counted since the one
// before, so a drain's counters over the time between them are the rates.
// A flow quiet for longer than the expiry is forgotten, which bounds the
// memory a long run with changing flows takes.
//
// Flows are found by a 64-bit hash of the key rather than by the key
// itself: a map of 8-byte keys stays in the CPU caches where one keyed by
// the ~100-byte flow.Key does not, which makes a refresh at 100,000 flows
// about twice as fast. Flows whose hashes collide are chained.
//
// Before the map, a row is compared with the flow that came next in the
// previous drain: a drain lists a table's flows in the order of their
// slots, which stays the same from one drain to the next while the flows
// do, so most rows are found without hashing the key or touching the map.
// A row that is not the one expected is looked up, and the expectation
// moves on from the flow it finds.
type Tracker struct {
	byHash map[uint64]*Flow
	seed   maphash.Seed
	seed64 uint64 // random, so that traffic cannot be crafted to collide
	mask   uint64 // all ones; tests clear it to make every hash collide
	all    []*Flow
	// order is the last drain's flows in its order, and spare the buffer
	// the next one is built in.
	order, spare []*Flow
	orderHits    uint64 // rows found through order, for the tests
	expire       time.Duration
	// maxFlows caps the flows kept (0: no cap): past it, the flows quiet
	// the longest go first, down to nine tenths of it, so that a flood of
	// new flows with --expire 0 cannot take all memory.
	maxFlows int

	last time.Time // time of the last reading; the start before the first
	gen  uint64

	// Results of the last Update.
	Interval      time.Duration // time between the last two readings
	In, Out       Rate          // sums over every flow, split by Flow.Out
	Untracked     flow.Counters // cumulative traffic without a row
	UntrackedRate Rate
	// UntrackedFlows estimates the distinct flows without a row in the last
	// interval (estimates of different intervals cannot be added up).
	UntrackedFlows uint64
	TableSize      int    // entries the kernel flow table took in the last interval
	Readings       int    // number of Updates so far
	Evicted        uint64 // flows forgotten so far to keep within the cap
}

// SetMaxFlows caps the flows the tracker keeps; 0 lifts the cap.
func (t *Tracker) SetMaxFlows(n int) { t.maxFlows = max(n, 0) }

// NewTracker starts tracking at start, when counting began: the first
// reading's rates are over the time since then. A flow quiet for longer
// than expire is forgotten; 0 keeps every flow.
func NewTracker(start time.Time, expire time.Duration) *Tracker {
	t := &Tracker{
		byHash: make(map[uint64]*Flow),
		seed:   maphash.MakeSeed(),
		mask:   ^uint64(0),
		expire: expire,
		last:   start,
	}
	t.seed64 = maphash.String(t.seed, "pktstat-bpf")
	return t
}

// Update takes the drain s, made at now: everything the kernel counted
// since the previous drain. Rates are over the time between the two.
func (t *Tracker) Update(s flow.Snapshot, now time.Time) {
	t.gen++
	t.Readings++
	t.Interval = now.Sub(t.last)
	secs := t.Interval.Seconds()
	t.In, t.Out = Rate{}, Rate{}
	order, next := t.spare[:0], 0
	for i := range s.Flows {
		k, d := &s.Flows[i].Key, s.Flows[i].Counters
		var f *Flow
		if next < len(t.order) && t.order[next].Key == *k {
			f = t.order[next]
			t.orderHits++
		} else {
			f = t.find(k)
		}
		if f.gen == t.gen-1 {
			// In the previous drain: expect the flow that followed it
			// there. A flow that was not leaves the expectation alone.
			next = f.row + 1
		}
		f.row = len(order)
		order = append(order, f)
		f.Total.Add(d)
		f.gen = t.gen
		if l7 := s.Flows[i].L7; l7.Known() {
			f.L7 = l7.String()
		}
		f.Rate = Rate{}
		f.Rate.add(d, secs)
		if d.Packets > 0 || d.Bytes > 0 {
			f.LastActive = now
		}
		if f.Out {
			t.Out.add(d, secs)
		} else {
			t.In.add(d, secs)
		}
	}
	cutoff := now.Add(-t.expire)
	for i := 0; i < len(t.all); {
		f := t.all[i]
		if f.gen == t.gen {
			i++
			continue
		}
		// Not in this drain: nothing was counted, so its rate is 0.
		f.Rate = Rate{}
		if t.expire <= 0 || !f.LastActive.Before(cutoff) {
			i++
			continue
		}
		t.unlink(f)
		last := t.all[len(t.all)-1]
		t.all[i], last.slot = last, i
		t.all[len(t.all)-1] = nil
		t.all = t.all[:len(t.all)-1]
	}
	clear(t.order) // no stale pointers kept alive in the spare buffer
	t.spare, t.order = t.order[:0], order
	if t.maxFlows > 0 && len(t.all) > t.maxFlows {
		t.evict(len(t.all) - t.maxFlows*9/10)
		// Evicted flows may be in the order; the next drain uses the map.
		clear(t.order)
		t.order = t.order[:0]
	}
	lost := s.UntrackedTotal()
	t.UntrackedRate = Rate{}
	t.UntrackedRate.add(lost, secs)
	t.Untracked.Add(lost)
	t.UntrackedFlows = s.UntrackedFlows
	t.TableSize = len(s.Flows)
	t.last = now
}

// find returns the flow of k, adding it if the tracker has none.
func (t *Tracker) find(k *flow.Key) *Flow {
	h := t.hash(k)
	f := t.byHash[h]
	for f != nil && f.Key != *k {
		f = f.next
	}
	if f == nil {
		f = &Flow{Key: *k, slot: len(t.all), hash: h, next: t.byHash[h], Out: k.Dir == flow.Out}
		t.byHash[h] = f
		t.all = append(t.all, f)
	}
	return f
}

// evict forgets the n flows quiet the longest (the oldest LastActive;
// among equals, those counted least).
func (t *Tracker) evict(n int) {
	order := slices.Clone(t.all)
	slices.SortFunc(order, func(a, b *Flow) int {
		if c := a.LastActive.Compare(b.LastActive); c != 0 {
			return c
		}
		return cmp.Compare(a.Total.Bytes, b.Total.Bytes)
	})
	for _, f := range order[:n] {
		t.unlink(f)
		f.slot = -1
	}
	kept := t.all[:0]
	for _, f := range t.all {
		if f.slot >= 0 {
			f.slot = len(kept)
			kept = append(kept, f)
		}
	}
	clear(t.all[len(kept):])
	t.all = kept
	t.Evicted += uint64(n)
}

// lookup returns the flow of k, or nil.
func (t *Tracker) lookup(k flow.Key) *Flow {
	f := t.byHash[t.hash(&k)]
	for f != nil && f.Key != k {
		f = f.next
	}
	return f
}

// unlink removes f from its hash chain.
func (t *Tracker) unlink(f *Flow) {
	p := t.byHash[f.hash]
	if p == f {
		if f.next == nil {
			delete(t.byHash, f.hash)
		} else {
			t.byHash[f.hash] = f.next
		}
		return
	}
	for p.next != f {
		p = p.next
	}
	p.next = f.next
}

// hash is the key's hash (flow.Key.Hash) under the tracker's seeds.
func (t *Tracker) hash(k *flow.Key) uint64 {
	return k.Hash(t.seed64, t.seed) & t.mask
}

// Last is the time of the last reading (the start before the first).
func (t *Tracker) Last() time.Time { return t.last }

// Len is the number of flows the tracker knows.
func (t *Tracker) Len() int { return len(t.all) }

// Active appends to dst the flows whose counters grew within expire of the
// last reading, and returns it. An expire of 0 keeps every flow.
func (t *Tracker) Active(dst []*Flow, expire time.Duration) []*Flow {
	if expire <= 0 {
		return append(dst, t.all...)
	}
	cutoff := t.last.Add(-expire)
	for _, f := range t.all {
		if !f.LastActive.Before(cutoff) {
			dst = append(dst, f)
		}
	}
	return dst
}
