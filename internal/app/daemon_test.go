package app

import (
	"net/netip"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/capture"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// TestAccumulator checks that a daemon's report adds up every drain since
// the previous report exactly, holds at most max rows (the rest counts as
// untracked, by direction), and starts anew after each report.
func TestAccumulator(t *testing.T) {
	key := func(port uint16, dir flow.Direction) flow.Key {
		return flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoUDP, Src: netip.MustParseAddr("198.18.0.1"),
			Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: port, DstPort: 53, Dir: dir}
	}
	a := newAccumulator(2)
	a.add(capture.Snapshot{
		Flows:          []flow.Flow{{Key: key(1, flow.Out), Counters: flow.Counters{Packets: 1, Bytes: 100}}},
		Untracked:      [flow.NumDirections]flow.Counters{flow.In: {Packets: 5, Bytes: 500}},
		UntrackedFlows: 3,
	})
	a.add(capture.Snapshot{Flows: []flow.Flow{
		{Key: key(1, flow.Out), Counters: flow.Counters{Packets: 2, Bytes: 200}},
		{Key: key(2, flow.In), Counters: flow.Counters{Packets: 1, Bytes: 10}},
		{Key: key(3, flow.Out), Counters: flow.Counters{Packets: 4, Bytes: 40}}, // no room
	}})
	s := a.take()
	got := map[flow.Key]flow.Counters{}
	for _, f := range s.Flows {
		got[f.Key] = f.Counters
	}
	want := map[flow.Key]flow.Counters{key(1, flow.Out): {Packets: 3, Bytes: 300}, key(2, flow.In): {Packets: 1, Bytes: 10}}
	if len(got) != len(want) || got[key(1, flow.Out)] != want[key(1, flow.Out)] || got[key(2, flow.In)] != want[key(2, flow.In)] {
		t.Errorf("rows %v, want %v", got, want)
	}
	if s.Untracked[flow.In] != (flow.Counters{Packets: 5, Bytes: 500}) || s.Untracked[flow.Out] != (flow.Counters{Packets: 4, Bytes: 40}) {
		t.Errorf("untracked %v, want in 5/500 and out 4/40", s.Untracked)
	}
	// 3 estimated by the kernel, 1 flow this table had no room for.
	if s.UntrackedFlows != 4 {
		t.Errorf("untracked flows %d, want 4", s.UntrackedFlows)
	}
	if s := a.take(); len(s.Flows) != 0 || s.UntrackedTotal() != (flow.Counters{}) || s.UntrackedFlows != 0 {
		t.Errorf("a second take is not empty: %+v", s)
	}
}
