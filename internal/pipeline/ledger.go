package pipeline

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Ledger is the sink behind reports: it adds up the drains since the
// previous Take into one report's rows. It holds at most max rows, as the
// kernel's table does: traffic of further flows counts as untracked, with
// its flows estimated by a HyperLogLog sketch.
//
// One drain per report is the usual case (a report without a daemon
// drains only for itself): that drain passes through unfolded, so a
// report's read of a million rows costs no more than the drain.
type Ledger struct {
	mu     sync.Mutex
	max    int
	seed   maphash.Seed
	drains int           // since the previous Take
	first  flow.Snapshot // the only drain, while drains == 1
	rows   map[flow.Key]row
	// untracked is what the kernel's table or this one had no room for.
	untracked [flow.NumDirections]flow.Counters
	// kernelFlows adds up each drain's estimate of the flows the kernel
	// had no room for: an upper bound, since a flow without room in two
	// drains is estimated twice.
	kernelFlows uint64
	dropped     flow.HLL
	filtered    flow.Counters // what the filter dropped
}

// NewLedger returns a ledger of at most maxRows rows.
func NewLedger(maxRows uint32) *Ledger {
	return &Ledger{max: int(maxRows), seed: maphash.MakeSeed(), rows: map[flow.Key]row{}}
}

// row is a flow's counts over the drains folded, and its application
// protocol as the drains found it.
type row struct {
	c   flow.Counters
	l7  flow.L7
	est bool // flow.Flow.Estimated
}

// Fold adds one drain.
func (l *Ledger) Fold(s *flow.Snapshot, _ time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drains++
	switch l.drains {
	case 1:
		l.first = *s
		return
	case 2:
		l.add(&l.first)
		l.first = flow.Snapshot{}
	}
	l.add(s)
}

// add folds s into the rows. l.mu is held.
func (l *Ledger) add(s *flow.Snapshot) {
	for _, f := range s.Flows {
		r, ok := l.rows[f.Key]
		if !ok && len(l.rows) >= l.max {
			l.untracked[f.Dir].Add(f.Counters)
			l.dropped.Add(maphash.Comparable(l.seed, f.Key))
			continue
		}
		r.c.Add(f.Counters)
		r.l7 = flow.MergeL7(r.l7, f.L7)
		r.est = r.est || f.Estimated
		l.rows[f.Key] = r
	}
	for dir, u := range s.Untracked {
		l.untracked[dir].Add(u)
	}
	l.kernelFlows += s.UntrackedFlows
	l.filtered.Add(s.Filtered)
}

// Take returns what was folded since the previous Take, and starts anew.
func (l *Ledger) Take() flow.Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() { l.drains = 0 }()
	switch l.drains {
	case 0:
		return flow.Snapshot{}
	case 1:
		s := l.first
		l.first = flow.Snapshot{}
		return s
	}
	s := flow.Snapshot{Flows: make([]flow.Flow, 0, len(l.rows)), Untracked: l.untracked, UntrackedFlows: l.kernelFlows, Filtered: l.filtered}
	for k, r := range l.rows {
		s.Flows = append(s.Flows, flow.Flow{Key: k, Counters: r.c, L7: r.l7, Estimated: r.est})
	}
	if l.dropped != (flow.HLL{}) {
		s.UntrackedFlows += l.dropped.Estimate()
	}
	clear(l.rows)
	l.untracked = [flow.NumDirections]flow.Counters{}
	l.kernelFlows = 0
	l.filtered = flow.Counters{}
	l.dropped = flow.HLL{}
	return s
}
