package tui

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/capture"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

var (
	ipA  = netip.MustParseAddr("198.18.0.1")
	ipB  = netip.MustParseAddr("198.18.0.2")
	ipC  = netip.MustParseAddr("198.19.7.9")
	ip6A = netip.MustParseAddr("2001:2::1")
	ip6B = netip.MustParseAddr("2001:2::2")
	t0   = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
)

func udp(src, dst netip.Addr, sport, dport uint16) flow.Key {
	et := flow.EtherTypeIPv4
	if src.Is6() {
		et = flow.EtherTypeIPv6
	}
	return flow.Key{EtherType: et, Proto: flow.ProtoUDP, Src: src, Dst: dst, SrcPort: sport, DstPort: dport}
}

func snap(flows map[flow.Key]flow.Counters) capture.Snapshot {
	return capture.Snapshot{Flows: flows}
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// get returns the tracker's row for k, failing the test if it has none.
func get(t *testing.T, tr *Tracker, k flow.Key) *Flow {
	t.Helper()
	f := tr.lookup(k)
	if f == nil {
		t.Fatalf("tracker has no row for %v", k)
	}
	return f
}

func wantRate(t *testing.T, what string, got Rate, bps, pps float64) {
	t.Helper()
	if got.BPS != bps || got.PPS != pps {
		t.Errorf("%s: rate = %v bps, %v pps; want %v bps, %v pps", what, got.BPS, got.PPS, bps, pps)
	}
}

func TestTrackerRateFromDeltas(t *testing.T) {
	k := udp(ipB, ipA, 40000, 9001)
	tr := NewTracker(t0, nil, nil)

	// The first reading: rates over the time since the start.
	tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: 10, Bytes: 15_000}}), at(2*time.Second))
	f := get(t, tr, k)
	wantRate(t, "first reading", f.Rate, 15_000*8/2, 5)
	if f.Total != (flow.Counters{Packets: 10, Bytes: 15_000}) || !f.LastActive.Equal(at(2*time.Second)) {
		t.Errorf("first reading: total %+v, last active %v", f.Total, f.LastActive)
	}
	if tr.Interval != 2*time.Second {
		t.Errorf("interval = %v, want 2s", tr.Interval)
	}

	// Half a second later, 20 packets and 30000 bytes more: the rate is
	// over those, not over the whole 2.5 s (which would be 96 Kbps).
	tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: 30, Bytes: 45_000}}), at(2500*time.Millisecond))
	wantRate(t, "second reading", f.Rate, 30_000*8/0.5, 40)
	if f.Total != (flow.Counters{Packets: 30, Bytes: 45_000}) {
		t.Errorf("second reading: total %+v, want the kernel's cumulative counters", f.Total)
	}

	// No growth: the flow went quiet, its rate is 0, totals stay.
	tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: 30, Bytes: 45_000}}), at(3500*time.Millisecond))
	wantRate(t, "quiet", f.Rate, 0, 0)
	if f.Total.Packets != 30 || !f.LastActive.Equal(at(2500*time.Millisecond)) {
		t.Errorf("quiet: total %+v, last active %v; want 30 packets, active at 2.5s", f.Total, f.LastActive)
	}
}

func TestTrackerNewFlowAndReset(t *testing.T) {
	a, b := udp(ipB, ipA, 40000, 9001), udp(ipB, ipA, 40001, 9002)
	tr := NewTracker(t0, nil, nil)
	tr.Update(snap(map[flow.Key]flow.Counters{a: {Packets: 100, Bytes: 100_000}}), at(time.Second))
	// b appears: everything it holds arrived since the last reading.
	tr.Update(snap(map[flow.Key]flow.Counters{
		a: {Packets: 100, Bytes: 100_000},
		b: {Packets: 4, Bytes: 1000},
	}), at(1250*time.Millisecond))
	wantRate(t, "new flow", get(t, tr, b).Rate, 1000*8*4, 16)
	// a's counters went down: the kernel dropped the key and counted it
	// afresh, so all of it is new.
	tr.Update(snap(map[flow.Key]flow.Counters{
		a: {Packets: 5, Bytes: 500},
		b: {Packets: 4, Bytes: 1000},
	}), at(1500*time.Millisecond))
	wantRate(t, "reset flow", get(t, tr, a).Rate, 500*8*4, 20)
	wantRate(t, "quiet flow", get(t, tr, b).Rate, 0, 0)
	// a leaves the kernel table: the tracker forgets it...
	tr.Update(snap(map[flow.Key]flow.Counters{b: {Packets: 4, Bytes: 1000}}), at(2*time.Second))
	if tr.lookup(a) != nil || tr.Len() != 1 {
		t.Fatalf("a key gone from the kernel table is still tracked (%d rows)", tr.Len())
	}
	if got := tr.Active(nil, 0); len(got) != 1 || got[0].Key != b {
		t.Fatalf("Active = %v, want only b", got)
	}
	// ... and when it comes back, its counters are new.
	tr.Update(snap(map[flow.Key]flow.Counters{
		a: {Packets: 2, Bytes: 200},
		b: {Packets: 4, Bytes: 1000},
	}), at(3*time.Second))
	wantRate(t, "returning flow", get(t, tr, a).Rate, 1600, 2)
}

func TestTrackerExpiry(t *testing.T) {
	a, b := udp(ipB, ipA, 40000, 9001), udp(ipB, ipA, 40001, 9002)
	tr := NewTracker(t0, nil, nil)
	const expire = 2 * time.Second
	read := func(d time.Duration, ca, cb uint64) []*Flow {
		tr.Update(snap(map[flow.Key]flow.Counters{
			a: {Packets: ca, Bytes: ca * 100},
			b: {Packets: cb, Bytes: cb * 100},
		}), at(d))
		return tr.Active(nil, expire)
	}
	keys := func(fs []*Flow) map[flow.Key]bool {
		m := map[flow.Key]bool{}
		for _, f := range fs {
			m[f.Key] = true
		}
		return m
	}
	// a sends until 1s, b keeps sending.
	read(1*time.Second, 10, 10)
	if got := keys(read(2*time.Second, 10, 20)); !got[a] || !got[b] {
		t.Fatalf("at 2s: active %v, want both", got)
	}
	// At exactly expire after a's last growth it is still shown...
	if got := keys(read(3*time.Second, 10, 30)); !got[a] || !got[b] {
		t.Fatalf("at 3s (quiet for 2s): active %v, want both", got)
	}
	// ... and gone once it has been quiet for longer.
	if got := keys(read(3100*time.Millisecond, 10, 31)); got[a] || !got[b] {
		t.Fatalf("at 3.1s (quiet for 2.1s): active %v, want only b", got)
	}
	if got := tr.Active(nil, 0); len(got) != 2 {
		t.Fatalf("with expiry off: %d active, want 2", len(got))
	}
	// a resumes: it is back, with the rate of its new traffic only, though
	// the kernel's counter holds its whole history.
	got := read(3600*time.Millisecond, 15, 36)
	if !keys(got)[a] {
		t.Fatalf("a resumed but is not active")
	}
	wantRate(t, "resumed flow", get(t, tr, a).Rate, 5*100*8*2, 10)
	if get(t, tr, a).Total.Packets != 15 {
		t.Errorf("resumed flow: total %d packets, want 15", get(t, tr, a).Total.Packets)
	}
}

func TestTrackerDirectionAndTotals(t *testing.T) {
	out4 := udp(ipA, ipB, 5000, 9001)
	in4 := udp(ipB, ipA, 9001, 5000)
	fwd := udp(ipC, ipB, 1, 2) // neither end is ours: forwarded, so "in"
	out6 := udp(ip6A, ip6B, 5000, 9001)
	arp := flow.Key{EtherType: 0x0806}
	tr := NewTracker(t0, []netip.Addr{ipA, ip6A, netip.MustParseAddr("fe80::1")}, nil)
	tr.Update(capture.Snapshot{
		Flows: map[flow.Key]flow.Counters{
			out4: {Packets: 10, Bytes: 1000},
			in4:  {Packets: 20, Bytes: 3000},
			fwd:  {Packets: 1, Bytes: 100},
			out6: {Packets: 5, Bytes: 500},
			arp:  {Packets: 2, Bytes: 84},
		},
		Untracked: flow.Counters{Packets: 7, Bytes: 700},
	}, at(time.Second))
	for k, want := range map[flow.Key]string{out4: "out", in4: "in", fwd: "in", out6: "out", arp: "in"} {
		if got := get(t, tr, k).Direction(); got != want {
			t.Errorf("%v: direction %q, want %q", k, got, want)
		}
	}
	wantRate(t, "out total", tr.Out, (1000+500)*8, 15)
	wantRate(t, "in total", tr.In, (3000+100+84)*8, 23)
	wantRate(t, "untracked", tr.UntrackedRate, 700*8, 7)
	if tr.TableSize != 5 || tr.Untracked.Packets != 7 {
		t.Errorf("table size %d, untracked %+v", tr.TableSize, tr.Untracked)
	}
	// Half a second on: only in4 and the overflow grew.
	tr.Update(capture.Snapshot{
		Flows: map[flow.Key]flow.Counters{
			out4: {Packets: 10, Bytes: 1000},
			in4:  {Packets: 30, Bytes: 4000},
			fwd:  {Packets: 1, Bytes: 100},
			out6: {Packets: 5, Bytes: 500},
			arp:  {Packets: 2, Bytes: 84},
		},
		Untracked: flow.Counters{Packets: 8, Bytes: 800},
	}, at(1500*time.Millisecond))
	wantRate(t, "out total", tr.Out, 0, 0)
	wantRate(t, "in total", tr.In, 1000*8*2, 20)
	wantRate(t, "untracked", tr.UntrackedRate, 100*8*2, 2)
}

func TestTrackerNoTimePassed(t *testing.T) {
	k := udp(ipB, ipA, 1, 2)
	tr := NewTracker(t0, nil, nil)
	tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: 1, Bytes: 60}}), t0)
	tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: 2, Bytes: 120}}), t0.Add(-time.Second))
	r := get(t, tr, k).Rate
	if r.BPS != 0 || r.PPS != 0 || math.IsNaN(tr.In.BPS) {
		t.Errorf("zero or negative interval gave rate %+v, totals %+v; want 0", r, tr.In)
	}
	if get(t, tr, k).Total.Packets != 2 {
		t.Errorf("counters not taken when no time passed")
	}
}

func TestTrackerL7(t *testing.T) {
	k := udp(ipA, ipB, 53, 2)
	calls := 0
	tr := NewTracker(t0, nil, func(k flow.Key) string {
		calls++
		if k.SrcPort == 53 {
			return "DNS"
		}
		return ""
	})
	for i := range 3 {
		tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: uint64(i + 1), Bytes: 60}}), at(time.Duration(i+1)*time.Second))
	}
	if l := get(t, tr, k).L7; l != "DNS" {
		t.Errorf("l7 = %q, want DNS", l)
	}
	if calls != 1 {
		t.Errorf("l7 looked up %d times for one key, want once", calls)
	}
}

// TestTrackerHashCollisions runs flows through a tracker whose hashes all
// collide, so every lookup, insert and removal walks a chain.
func TestTrackerHashCollisions(t *testing.T) {
	tr := NewTracker(t0, nil, nil)
	tr.mask = 0
	keys := []flow.Key{udp(ipB, ipA, 1, 2), udp(ipB, ipA, 1, 3), udp(ip6B, ip6A, 1, 2),
		{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoTCP, Src: ipB, Dst: ipA, Owner: flow.Owner{PID: 7, Comm: "a"}},
		{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoTCP, Src: ipB, Dst: ipA, Owner: flow.Owner{PID: 7, Comm: "b"}}}
	table := func(pkts uint64, idx ...int) capture.Snapshot {
		m := map[flow.Key]flow.Counters{}
		for _, i := range idx {
			m[keys[i]] = flow.Counters{Packets: pkts + uint64(i), Bytes: 100 * (pkts + uint64(i))}
		}
		return snap(m)
	}
	steps := []struct {
		pkts uint64
		idx  []int
	}{
		{10, []int{0, 1, 2, 3, 4}},
		{20, []int{0, 2, 4}}, // drop from the middle and the chain's ends
		{30, []int{1, 2, 3}}, // re-add
		{40, []int{}},        // empty
		{50, []int{4, 3, 2, 1, 0}},
	}
	for i, st := range steps {
		tr.Update(table(st.pkts, st.idx...), at(time.Duration(i+1)*time.Second))
		if tr.Len() != len(st.idx) || len(tr.byHash) > 1 {
			t.Fatalf("step %d: %d flows, %d hash heads; want %d flows in one chain", i, tr.Len(), len(tr.byHash), len(st.idx))
		}
		n := 0
		for f := tr.byHash[0]; f != nil; f = f.next {
			n++
		}
		if n != len(st.idx) {
			t.Fatalf("step %d: chain holds %d flows, want %d", i, n, len(st.idx))
		}
		for _, j := range st.idx {
			f := get(t, tr, keys[j])
			if f.Total.Packets != st.pkts+uint64(j) || tr.all[f.slot] != f {
				t.Fatalf("step %d: key %d has %d packets at slot %d", i, j, f.Total.Packets, f.slot)
			}
		}
	}
}
