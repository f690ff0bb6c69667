package pipeline

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

func key(port uint16, dir flow.Direction) flow.Key {
	return flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoUDP, Src: netip.MustParseAddr("198.18.0.1"),
		Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: port, DstPort: 53, Dir: dir}
}

// counting is a source whose every drain holds one packet of 100 bytes of
// a flow of its own, or fails when fail says so.
type counting struct {
	n    uint16
	fail bool
}

func (c *counting) Drain() (flow.Snapshot, error) {
	if c.fail {
		return flow.Snapshot{}, errors.New("read flow table: no")
	}
	c.n++
	return flow.Snapshot{Flows: []flow.Flow{{Key: key(c.n, flow.In), Counters: flow.Counters{Packets: 1, Bytes: 100}}}}, nil
}

// TestPipelineHandsEveryDrainToEverySink drains from several goroutines
// at once: every sink must see every drain exactly once, in the same
// order, and a failed drain reaches none.
func TestPipelineHandsEveryDrainToEverySink(t *testing.T) {
	src := &counting{}
	p := New(src, nil)
	var seen [2][]uint16
	for i := range seen {
		p.Register(SinkFunc(func(s *flow.Snapshot, _ time.Time) {
			seen[i] = append(seen[i], s.Flows[0].SrcPort)
		}))
	}
	const drains = 200
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range drains / 4 {
				if _, _, err := p.Drain(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	src.fail = true
	if _, _, err := p.Drain(); err == nil {
		t.Error("a failed drain returned no error")
	}
	for i := range seen {
		if len(seen[i]) != drains {
			t.Fatalf("sink %d saw %d drains, want %d", i, len(seen[i]), drains)
		}
		for j, port := range seen[i] {
			if port != uint16(j+1) {
				t.Fatalf("sink %d saw drain %d as its %dth", i, port, j+1)
			}
		}
	}
}

// TestLedger checks that a report adds up every drain since the previous
// report exactly, holds at most max rows (the rest counts as untracked, by
// direction), keeps each row's application protocol, and starts anew
// after each report; and that a lone drain passes through as it came.
func TestLedger(t *testing.T) {
	l := NewLedger(2)
	l.Fold(&flow.Snapshot{
		Flows:          []flow.Flow{{Key: key(1, flow.Out), Counters: flow.Counters{Packets: 1, Bytes: 100}, L7: flow.L7DNS}},
		Untracked:      [flow.NumDirections]flow.Counters{flow.In: {Packets: 5, Bytes: 500}},
		UntrackedFlows: 3,
	}, time.Time{})
	l.Fold(&flow.Snapshot{Flows: []flow.Flow{
		{Key: key(1, flow.Out), Counters: flow.Counters{Packets: 2, Bytes: 200}, L7: flow.L7Unknown},
		{Key: key(2, flow.In), Counters: flow.Counters{Packets: 1, Bytes: 10}},
		{Key: key(3, flow.Out), Counters: flow.Counters{Packets: 4, Bytes: 40}}, // no room
	}}, time.Time{})
	s := l.Take()
	got := map[flow.Key]flow.Flow{}
	for _, f := range s.Flows {
		got[f.Key] = f
	}
	if len(got) != 2 || got[key(1, flow.Out)].Counters != (flow.Counters{Packets: 3, Bytes: 300}) ||
		got[key(1, flow.Out)].L7 != flow.L7DNS || got[key(2, flow.In)].Counters != (flow.Counters{Packets: 1, Bytes: 10}) {
		t.Errorf("rows %v, want 3/300 DNS and 1/10", got)
	}
	if s.Untracked[flow.In] != (flow.Counters{Packets: 5, Bytes: 500}) || s.Untracked[flow.Out] != (flow.Counters{Packets: 4, Bytes: 40}) {
		t.Errorf("untracked %v, want in 5/500 and out 4/40", s.Untracked)
	}
	// 3 estimated by the kernel, 1 flow this table had no room for.
	if s.UntrackedFlows != 4 {
		t.Errorf("untracked flows %d, want 4", s.UntrackedFlows)
	}
	if s := l.Take(); len(s.Flows) != 0 || s.UntrackedTotal() != (flow.Counters{}) || s.UntrackedFlows != 0 {
		t.Errorf("a second take is not empty: %+v", s)
	}

	lone := flow.Snapshot{Flows: []flow.Flow{{Key: key(9, flow.In), Counters: flow.Counters{Packets: 7, Bytes: 70}}}, UntrackedFlows: 2}
	l.Fold(&lone, time.Time{})
	if s := l.Take(); len(s.Flows) != 1 || &s.Flows[0] != &lone.Flows[0] || s.UntrackedFlows != 2 {
		t.Errorf("a lone drain did not pass through as it came: %+v", s)
	}
}

// partial is a source whose drain fails part of the way, with the rows it
// read before the failure.
type partial struct{}

func (partial) Drain() (flow.Snapshot, error) {
	s := flow.Snapshot{Flows: []flow.Flow{{Key: key(7, flow.In), Counters: flow.Counters{Packets: 3, Bytes: 300}}}}
	return s, fmt.Errorf("%w (1 rows read, kept): read flow table: no", flow.ErrPartialDrain)
}

// TestPipelinePartialDrain: the rows of a drain that failed part of the
// way are in no other drain, so every sink gets them, and the caller gets
// the error.
func TestPipelinePartialDrain(t *testing.T) {
	p := New(partial{}, nil)
	var got flow.Counters
	p.Register(SinkFunc(func(s *flow.Snapshot, _ time.Time) {
		for _, r := range s.Flows {
			got.Add(r.Counters)
		}
	}))
	s, _, err := p.Drain()
	if !errors.Is(err, flow.ErrPartialDrain) || len(s.Flows) != 1 {
		t.Fatalf("Drain = %d rows, %v; want the row read and the error", len(s.Flows), err)
	}
	if got != (flow.Counters{Packets: 3, Bytes: 300}) {
		t.Errorf("the sink got %+v, want the 3 packets read", got)
	}
}
