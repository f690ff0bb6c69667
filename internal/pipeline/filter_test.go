package pipeline

import (
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// TestLedgerFiltered: what the filter dropped adds up over the drains of
// one take, a lone drain's passes through, and a take starts anew.
func TestLedgerFiltered(t *testing.T) {
	l := NewLedger(8)
	l.Fold(&flow.Snapshot{Filtered: flow.Counters{Packets: 5, Bytes: 500}}, time.Time{})
	l.Fold(&flow.Snapshot{Filtered: flow.Counters{Packets: 2, Bytes: 84}}, time.Time{})
	if got := l.Take().Filtered; got != (flow.Counters{Packets: 7, Bytes: 584}) {
		t.Errorf("two drains: filtered %+v, want 7 packets, 584 bytes", got)
	}
	l.Fold(&flow.Snapshot{Filtered: flow.Counters{Packets: 1, Bytes: 60}}, time.Time{})
	if got := l.Take().Filtered; got != (flow.Counters{Packets: 1, Bytes: 60}) {
		t.Errorf("a lone drain: filtered %+v, want 1 packet, 60 bytes", got)
	}
	if got := l.Take().Filtered; got != (flow.Counters{}) {
		t.Errorf("no drain: filtered %+v, want none", got)
	}
}
