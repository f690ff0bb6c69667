package tui

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

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

// snap is a drain: what the kernel counted since the previous one.
func snap(flows map[flow.Key]flow.Counters) flow.Snapshot {
	s := flow.Snapshot{}
	for k, c := range flows {
		s.Flows = append(s.Flows, flow.Flow{Key: k, Counters: c})
	}
	return s
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

func TestTrackerRateFromDrains(t *testing.T) {
	k := udp(ipB, ipA, 40000, 9001)
	tr := NewTracker(t0, 0)

	// The first drain: rates over the time since the start.
	tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: 10, Bytes: 15_000}}), at(2*time.Second))
	f := get(t, tr, k)
	wantRate(t, "first drain", f.Rate, 15_000*8/2, 5)
	if f.Total != (flow.Counters{Packets: 10, Bytes: 15_000}) || !f.LastActive.Equal(at(2*time.Second)) {
		t.Errorf("first drain: total %+v, last active %v", f.Total, f.LastActive)
	}
	if tr.Interval != 2*time.Second {
		t.Errorf("interval = %v, want 2s", tr.Interval)
	}

	// Half a second later, 20 packets and 30000 bytes more: the rate is
	// over those, not over the whole 2.5 s (which would be 96 Kbps).
	tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: 20, Bytes: 30_000}}), at(2500*time.Millisecond))
	wantRate(t, "second drain", f.Rate, 30_000*8/0.5, 40)
	if f.Total != (flow.Counters{Packets: 30, Bytes: 45_000}) {
		t.Errorf("second drain: total %+v, want the sum of both drains", f.Total)
	}

	// Not in the drain: the flow went quiet, its rate is 0, totals stay.
	tr.Update(snap(nil), at(3500*time.Millisecond))
	wantRate(t, "quiet", f.Rate, 0, 0)
	if f.Total.Packets != 30 || !f.LastActive.Equal(at(2500*time.Millisecond)) {
		t.Errorf("quiet: total %+v, last active %v; want 30 packets, active at 2.5s", f.Total, f.LastActive)
	}
	wantRate(t, "in total while quiet", tr.In, 0, 0)
}

func TestTrackerNewFlow(t *testing.T) {
	a, b := udp(ipB, ipA, 40000, 9001), udp(ipB, ipA, 40001, 9002)
	tr := NewTracker(t0, 0)
	tr.Update(snap(map[flow.Key]flow.Counters{a: {Packets: 100, Bytes: 100_000}}), at(time.Second))
	// b appears; a is quiet.
	tr.Update(snap(map[flow.Key]flow.Counters{b: {Packets: 4, Bytes: 1000}}), at(1250*time.Millisecond))
	wantRate(t, "new flow", get(t, tr, b).Rate, 1000*8*4, 16)
	wantRate(t, "quiet flow", get(t, tr, a).Rate, 0, 0)
	if tr.Len() != 2 {
		t.Fatalf("%d flows tracked, want 2: a quiet flow stays without an expiry", tr.Len())
	}
	// a comes back: its rate is its new traffic, its total the whole.
	tr.Update(snap(map[flow.Key]flow.Counters{a: {Packets: 5, Bytes: 500}}), at(1500*time.Millisecond))
	wantRate(t, "returning flow", get(t, tr, a).Rate, 500*8*4, 20)
	if got := get(t, tr, a).Total; got != (flow.Counters{Packets: 105, Bytes: 100_500}) {
		t.Errorf("returning flow: total %+v, want 105 packets, 100500 bytes", got)
	}
}

func TestTrackerExpiry(t *testing.T) {
	a, b := udp(ipB, ipA, 40000, 9001), udp(ipB, ipA, 40001, 9002)
	const expire = 2 * time.Second
	tr := NewTracker(t0, expire)
	read := func(d time.Duration, ca, cb uint64) []*Flow {
		m := map[flow.Key]flow.Counters{}
		if ca > 0 {
			m[a] = flow.Counters{Packets: ca, Bytes: ca * 100}
		}
		if cb > 0 {
			m[b] = flow.Counters{Packets: cb, Bytes: cb * 100}
		}
		tr.Update(snap(m), at(d))
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
	if got := keys(read(2*time.Second, 0, 10)); !got[a] || !got[b] {
		t.Fatalf("at 2s: active %v, want both", got)
	}
	// At exactly expire after a's last traffic it is still shown...
	if got := keys(read(3*time.Second, 0, 10)); !got[a] || !got[b] {
		t.Fatalf("at 3s (quiet for 2s): active %v, want both", got)
	}
	// ... and forgotten once it has been quiet for longer.
	if got := keys(read(3100*time.Millisecond, 0, 1)); got[a] || !got[b] {
		t.Fatalf("at 3.1s (quiet for 2.1s): active %v, want only b", got)
	}
	if tr.Len() != 1 || tr.lookup(a) != nil {
		t.Fatalf("an expired flow is still held in memory (%d flows)", tr.Len())
	}
	// a resumes: it is back, counted afresh from its return.
	got := read(3600*time.Millisecond, 5, 5)
	if !keys(got)[a] {
		t.Fatalf("a resumed but is not active")
	}
	wantRate(t, "resumed flow", get(t, tr, a).Rate, 5*100*8*2, 10)
	if get(t, tr, a).Total.Packets != 5 {
		t.Errorf("resumed flow: total %d packets, want 5 (counted since it came back)", get(t, tr, a).Total.Packets)
	}
}

func TestTrackerDirectionAndTotals(t *testing.T) {
	out4 := udp(ipA, ipB, 5000, 9001)
	out4.Dir = flow.Out
	in4 := udp(ipB, ipA, 9001, 5000)
	fwd := udp(ipC, ipB, 1, 2) // received, though neither end is ours
	out6 := udp(ip6A, ip6B, 5000, 9001)
	out6.Dir = flow.Out
	arp := flow.Key{EtherType: 0x0806}
	tr := NewTracker(t0, 0)
	s := snap(map[flow.Key]flow.Counters{
		out4: {Packets: 10, Bytes: 1000},
		in4:  {Packets: 20, Bytes: 3000},
		fwd:  {Packets: 1, Bytes: 100},
		out6: {Packets: 5, Bytes: 500},
		arp:  {Packets: 2, Bytes: 84},
	})
	s.Untracked[flow.In] = flow.Counters{Packets: 4, Bytes: 400}
	s.Untracked[flow.Out] = flow.Counters{Packets: 3, Bytes: 300}
	tr.Update(s, at(time.Second))
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
	// Half a second on: only in4 and the overflow counted more.
	s = snap(map[flow.Key]flow.Counters{in4: {Packets: 10, Bytes: 1000}})
	s.Untracked[flow.In] = flow.Counters{Packets: 1, Bytes: 100}
	tr.Update(s, at(1500*time.Millisecond))
	wantRate(t, "out total", tr.Out, 0, 0)
	wantRate(t, "in total", tr.In, 1000*8*2, 20)
	wantRate(t, "untracked", tr.UntrackedRate, 100*8*2, 2)
	if tr.Untracked.Packets != 8 || tr.TableSize != 1 {
		t.Errorf("untracked total %+v, table size %d; want 8 packets, 1 row", tr.Untracked, tr.TableSize)
	}
}

func TestTrackerNoTimePassed(t *testing.T) {
	k := udp(ipB, ipA, 1, 2)
	tr := NewTracker(t0, 0)
	tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: 1, Bytes: 60}}), t0)
	tr.Update(snap(map[flow.Key]flow.Counters{k: {Packets: 1, Bytes: 60}}), t0.Add(-time.Second))
	r := get(t, tr, k).Rate
	if r.BPS != 0 || r.PPS != 0 || math.IsNaN(tr.In.BPS) {
		t.Errorf("zero or negative interval gave rate %+v, totals %+v; want 0", r, tr.In)
	}
	if get(t, tr, k).Total.Packets != 2 {
		t.Errorf("counters not taken when no time passed")
	}
}

func TestTrackerL7(t *testing.T) {
	k := udp(ipA, ipB, 40000, 53)
	tr := NewTracker(t0, 0)
	drain := func(l7 flow.L7) flow.Snapshot {
		return flow.Snapshot{Flows: []flow.Flow{{Key: k, Counters: flow.Counters{Packets: 1, Bytes: 60}, L7: l7}}}
	}
	tr.Update(drain(flow.L7Unchecked), at(time.Second))
	if l := get(t, tr, k).L7; l != "" {
		t.Errorf("before any payload: l7 = %q, want none", l)
	}
	tr.Update(drain(flow.L7DNS), at(2*time.Second))
	// A later drain in which no CPU recognised the protocol keeps the label.
	tr.Update(drain(flow.L7Unknown), at(3*time.Second))
	if l := get(t, tr, k).L7; l != "DNS" {
		t.Errorf("l7 = %q, want DNS from the drain that named it", l)
	}
}

// TestTrackerHashCollisions runs flows through a tracker whose hashes all
// collide, so every lookup, insert and removal walks a chain.
func TestTrackerHashCollisions(t *testing.T) {
	tr := NewTracker(t0, 1500*time.Millisecond)
	tr.mask = 0
	keys := []flow.Key{udp(ipB, ipA, 1, 2), udp(ipB, ipA, 1, 3), udp(ip6B, ip6A, 1, 2),
		{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoTCP, Src: ipB, Dst: ipA, Owner: flow.NewOwner(flow.OwnerInfo{PID: 7, Comm: "a"})},
		{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoTCP, Src: ipB, Dst: ipA, Owner: flow.NewOwner(flow.OwnerInfo{PID: 7, Comm: "b"})}}
	steps := []struct {
		idx  []int // flows in this drain (one packet each)
		want []int // flows held after it: the expiry is 1.5 drains
	}{
		{[]int{0, 1, 2, 3, 4}, []int{0, 1, 2, 3, 4}},
		{[]int{0, 2, 4}, []int{0, 1, 2, 3, 4}},
		{[]int{2}, []int{0, 2, 4}}, // 1 and 3 expire: from the middle of the chain
		{[]int{}, []int{2}},        // 0 and 4: the chain's ends
		{[]int{4, 3, 2, 1, 0}, []int{0, 1, 2, 3, 4}},
	}
	sent := make([]uint64, len(keys))
	for i, st := range steps {
		m := map[flow.Key]flow.Counters{}
		for _, j := range st.idx {
			m[keys[j]] = flow.Counters{Packets: 1, Bytes: 100}
			sent[j]++
		}
		tr.Update(snap(m), at(time.Duration(i+1)*time.Second))
		if tr.Len() != len(st.want) || len(tr.byHash) > 1 {
			t.Fatalf("step %d: %d flows, %d hash heads; want %d flows in one chain", i, tr.Len(), len(tr.byHash), len(st.want))
		}
		n := 0
		for f := tr.byHash[0]; f != nil; f = f.next {
			n++
		}
		if n != len(st.want) {
			t.Fatalf("step %d: chain holds %d flows, want %d", i, n, len(st.want))
		}
		for _, j := range st.want {
			f := get(t, tr, keys[j])
			if tr.all[f.slot] != f || f.Total.Packets == 0 {
				t.Fatalf("step %d: key %d has %d packets at slot %d", i, j, f.Total.Packets, f.slot)
			}
		}
		for j := range keys {
			if f := tr.lookup(keys[j]); f == nil {
				sent[j] = 0 // forgotten: counted afresh if it returns
			} else if f.Total.Packets != sent[j] {
				t.Fatalf("step %d: key %d totals %d packets, want %d", i, j, f.Total.Packets, sent[j])
			}
		}
	}
}

// TestTrackerCap: past its cap, the tracker forgets the flows quiet the
// longest (among equals, the smallest), down to nine tenths of the cap,
// and counts them; the flows of the last drain stay. A flood of new flows
// with --expire 0 then holds at most the cap.
func TestTrackerCap(t *testing.T) {
	tr := NewTracker(t0, 0)
	tr.SetMaxFlows(10)
	first := map[flow.Key]flow.Counters{}
	for i := range 10 {
		first[udp(ipB, ipA, uint16(41000+i), 53)] = flow.Counters{Packets: 1, Bytes: uint64(100 + i)}
	}
	tr.Update(snap(first), at(time.Second))
	if tr.Len() != 10 || tr.Evicted != 0 {
		t.Fatalf("at the cap: %d flows, %d evicted", tr.Len(), tr.Evicted)
	}
	second := map[flow.Key]flow.Counters{}
	for i := range 5 {
		second[udp(ipB, ipA, uint16(42000+i), 53)] = flow.Counters{Packets: 1, Bytes: 100}
	}
	tr.Update(snap(second), at(2*time.Second))
	// 15 flows > 10: 6 go, the smallest of the quiet ones (bytes 100..105).
	if tr.Len() != 9 || tr.Evicted != 6 {
		t.Fatalf("over the cap: %d flows, %d evicted; want 9 and 6", tr.Len(), tr.Evicted)
	}
	for i := range 10 {
		k := udp(ipB, ipA, uint16(41000+i), 53)
		if kept := tr.lookup(k) != nil; kept != (i >= 6) {
			t.Errorf("flow of %d bytes kept %v", 100+i, kept)
		}
	}
	for k := range second {
		if tr.lookup(k) == nil {
			t.Errorf("a flow of the last drain was forgotten: %+v", k)
		}
	}
	for n := range 50 {
		flood := map[flow.Key]flow.Counters{}
		for i := range 7 {
			flood[udp(ipA, ipB, uint16(n*7+i), 80)] = flow.Counters{Packets: 1, Bytes: 60}
		}
		tr.Update(snap(flood), at(time.Duration(3+n)*time.Second))
		if tr.Len() > 10 {
			t.Fatalf("flood round %d: %d flows, over the cap of 10", n, tr.Len())
		}
	}
}

// TestTrackerDrainOrder feeds drains whose order mostly repeats, as a
// table's drains do, with flows coming, going, moving and expiring, and
// a cap that evicts: every flow's total must be what its drains held
// since the tracker last forgot it, whether the row was found through
// the previous drain's order or through the map. With an order that
// repeats exactly, every row after the first drain is found through it.
func TestTrackerDrainOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]flow.Key, 3000)
	for i := range keys {
		keys[i] = udp(ipA, ipB, uint16(i), uint16(i>>3))
	}
	for _, c := range []struct {
		name   string
		expire time.Duration
		cap    int
		churn  bool // flows come, go and move between drains
	}{
		{"same order", 0, 0, false},
		{"churn", 0, 0, true},
		{"churn and expiry", 2500 * time.Millisecond, 0, true},
		{"churn, expiry and a cap", 2500 * time.Millisecond, 1500, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := NewTracker(t0, c.expire)
			tr.SetMaxFlows(c.cap)
			order := rng.Perm(len(keys))[:2000] // the table's order of its flows
			want := make(map[flow.Key]uint64)
			rows := 0
			for step := range 40 {
				if c.churn {
					// A tenth of the flows leave, others arrive at random
					// places, and a few pairs swap places.
					for range len(order) / 10 {
						i := rng.IntN(len(order))
						order = append(order[:i], order[i+1:]...)
					}
					for range 200 {
						i := rng.IntN(len(order) + 1)
						order = append(order[:i], append([]int{rng.IntN(len(keys))}, order[i:]...)...)
					}
					for range 20 {
						i, j := rng.IntN(len(order)), rng.IntN(len(order))
						order[i], order[j] = order[j], order[i]
					}
				}
				var s flow.Snapshot
				seen := make(map[int]bool)
				for _, i := range order {
					if seen[i] || (c.churn && rng.IntN(8) == 0) {
						continue // one row per flow; some flows idle in this drain
					}
					seen[i] = true
					n := uint64(1 + rng.IntN(5))
					s.Flows = append(s.Flows, flow.Flow{Key: keys[i], Counters: flow.Counters{Packets: n, Bytes: 100 * n}})
					want[keys[i]] += n
				}
				tr.Update(s, at(time.Duration(step+1)*time.Second))
				if step > 0 {
					rows += len(s.Flows)
				}
				for _, k := range keys {
					f := tr.lookup(k)
					if f == nil {
						delete(want, k) // forgotten: counted afresh if it returns
						continue
					}
					if f.Total.Packets != want[k] || f.Total.Bytes != 100*want[k] {
						t.Fatalf("drain %d: %v totals %+v, its drains held %d packets", step, k, f.Total, want[k])
					}
				}
				if tr.Len() != len(want) {
					t.Fatalf("drain %d: the tracker holds %d flows, the drains %d", step, tr.Len(), len(want))
				}
			}
			t.Logf("%d of %d rows after the first drain found through the order", tr.orderHits, rows)
			if !c.churn && tr.orderHits != uint64(rows) {
				t.Errorf("the same order every drain: %d of %d rows found through it, want all", tr.orderHits, rows)
			}
		})
	}
}
