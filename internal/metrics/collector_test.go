package metrics

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
)

// script is a fake capture: each Drain returns the next snapshot (an empty
// one when the script has run out) and fails if two drains overlap.
type script struct {
	mu       sync.Mutex
	snaps    []flow.Snapshot
	errs     []error
	drains   atomic.Int64
	inFlight atomic.Int32
	overlap  atomic.Bool
	hold     time.Duration // how long a drain takes
}

func (s *script) Drain() (flow.Snapshot, error) {
	if s.inFlight.Add(1) > 1 {
		s.overlap.Store(true)
	}
	defer s.inFlight.Add(-1)
	s.drains.Add(1)
	time.Sleep(s.hold)
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if len(s.errs) > 0 {
		err, s.errs = s.errs[0], s.errs[1:]
		if err != nil {
			return flow.Snapshot{}, err
		}
	}
	if len(s.snaps) == 0 {
		return flow.Snapshot{}, nil
	}
	snap := s.snaps[0]
	s.snaps = s.snaps[1:]
	return snap, nil
}

// clock is a fake time that each reading advances by step.
type clock struct {
	t    time.Time
	step time.Duration
}

func (c *clock) now() time.Time {
	c.t = c.t.Add(c.step)
	return c.t
}

var (
	a1 = netip.MustParseAddr("198.18.0.1")
	a2 = netip.MustParseAddr("198.18.0.2")
	b1 = netip.MustParseAddr("2001:2::1")
	b2 = netip.MustParseAddr("2001:2::2")
)

func udp(src, dst netip.Addr, sport, dport uint16, dir flow.Direction, packets, bytes uint64) flow.Flow {
	et := flow.EtherTypeIPv4
	if src.Is6() {
		et = flow.EtherTypeIPv6
	}
	return flow.Flow{
		Key:      flow.Key{EtherType: et, Proto: flow.ProtoUDP, Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Dir: dir},
		Counters: flow.Counters{Packets: packets, Bytes: bytes},
	}
}

func icmp(src, dst netip.Addr, typ, code uint16, dir flow.Direction, packets, bytes uint64) flow.Flow {
	return flow.Flow{
		Key:      flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoICMP, Src: src, Dst: dst, SrcPort: typ, DstPort: code, Dir: dir},
		Counters: flow.Counters{Packets: packets, Bytes: bytes},
	}
}

// TestCountersAddUpDrains checks that the traffic counters are the sums of
// every drain by direction and protocol, whatever flows they came in, and
// that the untracked counters add up by direction.
func TestCountersAddUpDrains(t *testing.T) {
	src := &script{snaps: []flow.Snapshot{
		{
			Flows: []flow.Flow{
				udp(a1, a2, 1000, 53, flow.Out, 3, 300),
				udp(a2, a1, 53, 1000, flow.In, 3, 450),
				udp(b1, b2, 1000, 53, flow.Out, 2, 220), // IPv6 UDP adds to UDP
				icmp(a1, a2, 8, 0, flow.Out, 5, 490),
			},
			Untracked:      [flow.NumDirections]flow.Counters{flow.In: {Packets: 7, Bytes: 700}},
			UntrackedFlows: 4,
		},
		{
			Flows: []flow.Flow{
				udp(a1, a2, 1000, 53, flow.Out, 1, 100),
				{Key: flow.Key{EtherType: 0x0806, Dir: flow.In}, Counters: flow.Counters{Packets: 1, Bytes: 42}},
			},
			Untracked: [flow.NumDirections]flow.Counters{flow.In: {Packets: 1, Bytes: 100}, flow.Out: {Packets: 2, Bytes: 120}},
		},
	}}
	c := New(Options{Pipeline: pipeline.New(src, nil), Iface: "pa0", MaxEntries: 4096})
	names := []string{"pktstat_packets_total", "pktstat_bytes_total", "pktstat_untracked_packets_total",
		"pktstat_untracked_bytes_total", "pktstat_untracked_flows", "pktstat_flow_table_entries"}
	// Both scrapes' expositions are written out whole, HELP lines and all:
	// the text a scraper reads is what this test checks, so it is not built
	// from the same values by a helper.
	first := `
# HELP pktstat_bytes_total Bytes counted by the eBPF programs in flows with a row of their own, by direction and protocol.
# TYPE pktstat_bytes_total counter
pktstat_bytes_total{direction="in",iface="pa0",protocol="UDP"} 450
pktstat_bytes_total{direction="out",iface="pa0",protocol="ICMPv4"} 490
pktstat_bytes_total{direction="out",iface="pa0",protocol="UDP"} 520
# HELP pktstat_flow_table_entries Flows in the kernel's flow table when it was drained for this scrape.
# TYPE pktstat_flow_table_entries gauge
pktstat_flow_table_entries{iface="pa0"} 4
# HELP pktstat_packets_total Packets counted by the eBPF programs in flows with a row of their own, by direction and protocol.
# TYPE pktstat_packets_total counter
pktstat_packets_total{direction="in",iface="pa0",protocol="UDP"} 3
pktstat_packets_total{direction="out",iface="pa0",protocol="ICMPv4"} 5
pktstat_packets_total{direction="out",iface="pa0",protocol="UDP"} 5
# HELP pktstat_untracked_bytes_total Bytes counted while the flow table was full, so without a flow of their own.
# TYPE pktstat_untracked_bytes_total counter
pktstat_untracked_bytes_total{direction="in",iface="pa0"} 700
pktstat_untracked_bytes_total{direction="out",iface="pa0"} 0
# HELP pktstat_untracked_flows Estimated distinct flows (HyperLogLog, about 3% error) that found the flow table full, over the time since the previous scrape.
# TYPE pktstat_untracked_flows gauge
pktstat_untracked_flows{iface="pa0"} 4
# HELP pktstat_untracked_packets_total Packets counted while the flow table was full, so without a flow of their own.
# TYPE pktstat_untracked_packets_total counter
pktstat_untracked_packets_total{direction="in",iface="pa0"} 7
pktstat_untracked_packets_total{direction="out",iface="pa0"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(first), names...); err != nil {
		t.Fatalf("first scrape: %v", err)
	}
	second := `
# HELP pktstat_bytes_total Bytes counted by the eBPF programs in flows with a row of their own, by direction and protocol.
# TYPE pktstat_bytes_total counter
pktstat_bytes_total{direction="in",iface="pa0",protocol="ARP"} 42
pktstat_bytes_total{direction="in",iface="pa0",protocol="UDP"} 450
pktstat_bytes_total{direction="out",iface="pa0",protocol="ICMPv4"} 490
pktstat_bytes_total{direction="out",iface="pa0",protocol="UDP"} 620
# HELP pktstat_flow_table_entries Flows in the kernel's flow table when it was drained for this scrape.
# TYPE pktstat_flow_table_entries gauge
pktstat_flow_table_entries{iface="pa0"} 2
# HELP pktstat_packets_total Packets counted by the eBPF programs in flows with a row of their own, by direction and protocol.
# TYPE pktstat_packets_total counter
pktstat_packets_total{direction="in",iface="pa0",protocol="ARP"} 1
pktstat_packets_total{direction="in",iface="pa0",protocol="UDP"} 3
pktstat_packets_total{direction="out",iface="pa0",protocol="ICMPv4"} 5
pktstat_packets_total{direction="out",iface="pa0",protocol="UDP"} 6
# HELP pktstat_untracked_bytes_total Bytes counted while the flow table was full, so without a flow of their own.
# TYPE pktstat_untracked_bytes_total counter
pktstat_untracked_bytes_total{direction="in",iface="pa0"} 800
pktstat_untracked_bytes_total{direction="out",iface="pa0"} 120
# HELP pktstat_untracked_flows Estimated distinct flows (HyperLogLog, about 3% error) that found the flow table full, over the time since the previous scrape.
# TYPE pktstat_untracked_flows gauge
pktstat_untracked_flows{iface="pa0"} 0
# HELP pktstat_untracked_packets_total Packets counted while the flow table was full, so without a flow of their own.
# TYPE pktstat_untracked_packets_total counter
pktstat_untracked_packets_total{direction="in",iface="pa0"} 8
pktstat_untracked_packets_total{direction="out",iface="pa0"} 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(second), names...); err != nil {
		t.Fatalf("second scrape: %v", err)
	}
	if n := src.drains.Load(); n != 2 {
		t.Errorf("%d drains for 2 scrapes, want 2", n)
	}
}

// TestTopFlows checks the top-N series: the N fastest flows of the time
// since the previous scrape, with rates over exactly that time, and no
// series for the rest or for flows that went quiet.
func TestTopFlows(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0), step: 2 * time.Second}
	src := &script{snaps: []flow.Snapshot{
		{Flows: []flow.Flow{
			udp(a1, a2, 1000, 53, flow.Out, 10, 4000), // 2000 B/s over 2s
			udp(a2, a1, 53, 1000, flow.In, 4, 1000),   // 500 B/s
			icmp(a1, a2, 8, 0, flow.Out, 2, 196),      // 98 B/s: third, left out
		}},
		{Flows: []flow.Flow{
			icmp(a1, a2, 8, 0, flow.Out, 1, 98),
		}},
	}}
	c := New(Options{Pipeline: pipeline.New(src, clk.now), Iface: "pa0", Top: 2, MaxEntries: 4096, Now: clk.now})
	want := `
# HELP pktstat_flow_bytes_per_second Rate of one of the top --metrics-top flows, in bytes per second over the time since the previous scrape.
# TYPE pktstat_flow_bytes_per_second gauge
pktstat_flow_bytes_per_second{direction="in",dst="198.18.0.1",dst_port="1000",flags="",icmp_code="",icmp_type="",iface="pa0",protocol="UDP",src="198.18.0.2",src_port="53",vlan=""} 500
pktstat_flow_bytes_per_second{direction="out",dst="198.18.0.2",dst_port="53",flags="",icmp_code="",icmp_type="",iface="pa0",protocol="UDP",src="198.18.0.1",src_port="1000",vlan=""} 2000
# HELP pktstat_flow_packets_per_second Rate of one of the top --metrics-top flows, in packets per second over the time since the previous scrape.
# TYPE pktstat_flow_packets_per_second gauge
pktstat_flow_packets_per_second{direction="in",dst="198.18.0.1",dst_port="1000",flags="",icmp_code="",icmp_type="",iface="pa0",protocol="UDP",src="198.18.0.2",src_port="53",vlan=""} 2
pktstat_flow_packets_per_second{direction="out",dst="198.18.0.2",dst_port="53",flags="",icmp_code="",icmp_type="",iface="pa0",protocol="UDP",src="198.18.0.1",src_port="1000",vlan=""} 5
`
	names := []string{"pktstat_flow_bytes_per_second", "pktstat_flow_packets_per_second"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// The UDP flows went quiet: their series are gone, and the ping alone
	// is left, at 98 bytes over 2 s.
	want = `
# HELP pktstat_flow_bytes_per_second Rate of one of the top --metrics-top flows, in bytes per second over the time since the previous scrape.
# TYPE pktstat_flow_bytes_per_second gauge
pktstat_flow_bytes_per_second{direction="out",dst="198.18.0.2",dst_port="",flags="",icmp_code="0",icmp_type="8",iface="pa0",protocol="ICMPv4",src="198.18.0.1",src_port="",vlan=""} 49
# HELP pktstat_flow_packets_per_second Rate of one of the top --metrics-top flows, in packets per second over the time since the previous scrape.
# TYPE pktstat_flow_packets_per_second gauge
pktstat_flow_packets_per_second{direction="out",dst="198.18.0.2",dst_port="",flags="",icmp_code="0",icmp_type="8",iface="pa0",protocol="ICMPv4",src="198.18.0.1",src_port="",vlan=""} 0.5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// A quiet scrape has no flow series at all.
	if n := testutil.CollectAndCount(c, names...); n != 0 {
		t.Errorf("a scrape without traffic has %d flow series, want 0", n)
	}
}

// TestTopFlowsOwnersAndNoTop checks the owner labels of the modes that know
// owners, the merging of keys that only differ in what no label shows, and
// that --metrics-top 0 exports no flow at all.
func TestTopFlowsOwnersAndNoTop(t *testing.T) {
	owned := func(f flow.Flow, pid uint32, comm, cg string) flow.Flow {
		f.Owner = flow.NewOwner(flow.OwnerInfo{PID: pid, Comm: comm, Cgroup: cg})
		return f
	}
	rows := func() []flow.Flow {
		return []flow.Flow{
			owned(udp(a1, a2, 1000, 53, flow.Out, 1, 100), 42, "dig", "/test.slice"),
			// The same flow split by the drain into two rows (the same key
			// twice cannot happen in one drain, but two keys that differ
			// only in a field that is not a label can): one series.
			owned(udp(a1, a2, 1000, 53, flow.Out, 1, 100), 42, "dig", "/test.slice"),
			owned(udp(a1, a2, 1001, 53, flow.Out, 1, 50), 0, "", ""),
		}
	}
	clk := &clock{t: time.Unix(1_800_000_000, 0), step: time.Second}
	c := New(Options{Pipeline: pipeline.New(&script{snaps: []flow.Snapshot{{Flows: rows()}}}, clk.now), Top: 5, Owners: true, MaxEntries: 10, Now: clk.now})
	want := `
# HELP pktstat_flow_bytes_per_second Rate of one of the top --metrics-top flows, in bytes per second over the time since the previous scrape.
# TYPE pktstat_flow_bytes_per_second gauge
pktstat_flow_bytes_per_second{cgroup="",comm="",direction="out",dst="198.18.0.2",dst_port="53",flags="",icmp_code="",icmp_type="",iface="",pid="",protocol="UDP",src="198.18.0.1",src_port="1001",vlan=""} 50
pktstat_flow_bytes_per_second{cgroup="/test.slice",comm="dig",direction="out",dst="198.18.0.2",dst_port="53",flags="",icmp_code="",icmp_type="",iface="",pid="42",protocol="UDP",src="198.18.0.1",src_port="1000",vlan=""} 200
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pktstat_flow_bytes_per_second"); err != nil {
		t.Fatal(err)
	}

	c = New(Options{Pipeline: pipeline.New(&script{snaps: []flow.Snapshot{{Flows: rows()}}}, nil), Top: 0, MaxEntries: 10})
	if n := testutil.CollectAndCount(c, "pktstat_flow_bytes_per_second", "pktstat_flow_packets_per_second"); n != 0 {
		t.Errorf("--metrics-top 0 exported %d flow series", n)
	}
}

// TestProtocolLabelIsBounded checks that a sender of random EtherTypes
// cannot make a series per EtherType: unnamed ones share "other".
func TestProtocolLabelIsBounded(t *testing.T) {
	var rows []flow.Flow
	for et := uint16(0x9000); et < 0x9000+1000; et++ {
		rows = append(rows, flow.Flow{Key: flow.Key{EtherType: et}, Counters: flow.Counters{Packets: 1, Bytes: 60}})
	}
	c := New(Options{Pipeline: pipeline.New(&script{snaps: []flow.Snapshot{{Flows: rows}}}, nil), Iface: "pa0", MaxEntries: 4096})
	want := `
# HELP pktstat_bytes_total Bytes counted by the eBPF programs in flows with a row of their own, by direction and protocol.
# TYPE pktstat_bytes_total counter
pktstat_bytes_total{direction="in",iface="pa0",protocol="other"} 60000
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pktstat_bytes_total"); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentScrapesDrainOnce checks that scrapes from many scrapers at
// once never overlap their drains, and that the counters then hold every
// drained packet exactly once.
func TestConcurrentScrapesDrainOnce(t *testing.T) {
	const scrapes = 40
	snaps := make([]flow.Snapshot, scrapes)
	for i := range snaps {
		snaps[i] = flow.Snapshot{Flows: []flow.Flow{udp(a1, a2, uint16(1000+i), 53, flow.Out, uint64(i+1), 100)}}
	}
	src := &script{snaps: snaps, hold: time.Millisecond}
	c := New(Options{Pipeline: pipeline.New(src, nil), Iface: "pa0", Top: 3, MaxEntries: 4096})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, scrapes)
	for range scrapes {
		wg.Go(func() {
			if _, err := reg.Gather(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if src.overlap.Load() {
		t.Fatal("two drains ran at once")
	}
	if n := src.drains.Load(); n != scrapes {
		t.Fatalf("%d drains for %d scrapes", n, scrapes)
	}
	// 1 + 2 + ... + 40 packets and 40 * 100 bytes went through the drains.
	want := `
# HELP pktstat_packets_total Packets counted by the eBPF programs in flows with a row of their own, by direction and protocol.
# TYPE pktstat_packets_total counter
pktstat_packets_total{direction="out",iface="pa0",protocol="UDP"} 820
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pktstat_packets_total"); err != nil {
		t.Fatal(err)
	}
}

// TestDrainBetweenScrapes checks that a report's drain between two scrapes
// loses nothing: its counts are in the counters, and its flows are ranked
// with the next scrape's, with rates over the whole time between scrapes.
func TestDrainBetweenScrapes(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0), step: time.Second}
	src := &script{snaps: []flow.Snapshot{
		{Flows: []flow.Flow{udp(a1, a2, 1000, 53, flow.Out, 3, 300)}},
		{Flows: []flow.Flow{udp(a1, a2, 1000, 53, flow.Out, 1, 100), udp(a1, a2, 1001, 53, flow.Out, 1, 10)}},
	}}
	pipe := pipeline.New(src, clk.now)
	ledger := pipeline.NewLedger(4096)
	pipe.Register(ledger)
	c := New(Options{Pipeline: pipe, Iface: "pa0", Top: 1, MaxEntries: 4096, Now: clk.now})
	// New reads the clock once (t+1s), the report's drain at t+2s and the
	// scrape's at t+3s: the window is 2s.
	if s, _, err := pipe.Drain(); err != nil || len(s.Flows) != 1 {
		t.Fatalf("Drain = %v, %v", s, err)
	}
	want := `
# HELP pktstat_flow_bytes_per_second Rate of one of the top --metrics-top flows, in bytes per second over the time since the previous scrape.
# TYPE pktstat_flow_bytes_per_second gauge
pktstat_flow_bytes_per_second{direction="out",dst="198.18.0.2",dst_port="53",flags="",icmp_code="",icmp_type="",iface="pa0",protocol="UDP",src="198.18.0.1",src_port="1000",vlan=""} 200
# HELP pktstat_packets_total Packets counted by the eBPF programs in flows with a row of their own, by direction and protocol.
# TYPE pktstat_packets_total counter
pktstat_packets_total{direction="out",iface="pa0",protocol="UDP"} 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pktstat_flow_bytes_per_second", "pktstat_packets_total"); err != nil {
		t.Fatal(err)
	}
	// The ledger, another sink of the same pipeline, saw both drains.
	if got := ledger.Take(); len(got.Flows) != 2 || got.Flows[0].Packets+got.Flows[1].Packets != 5 {
		t.Errorf("the ledger holds %+v, want both drains' 5 packets in 2 rows", got.Flows)
	}
}

// TestReadErrors checks that a failed drain is counted, and that the
// counters keep what earlier drains gave them.
func TestReadErrors(t *testing.T) {
	src := &script{
		snaps: []flow.Snapshot{{Flows: []flow.Flow{udp(a1, a2, 1000, 53, flow.Out, 2, 200)}}},
		errs:  []error{nil, errors.New("read flow table: boom")},
	}
	c := New(Options{Pipeline: pipeline.New(src, nil), Iface: "pa0", MaxEntries: 4096})
	testutil.CollectAndCount(c)
	want := `
# HELP pktstat_packets_total Packets counted by the eBPF programs in flows with a row of their own, by direction and protocol.
# TYPE pktstat_packets_total counter
pktstat_packets_total{direction="out",iface="pa0",protocol="UDP"} 2
# HELP pktstat_read_errors_total Drains of the kernel's flow table that failed.
# TYPE pktstat_read_errors_total counter
pktstat_read_errors_total 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pktstat_packets_total", "pktstat_read_errors_total"); err != nil {
		t.Fatal(err)
	}
}

// TestStatsGate checks that program statistics are exported only while
// the kernel collects them, and that the gauge says which.
func TestStatsGate(t *testing.T) {
	off := New(Options{Pipeline: pipeline.New(&script{}, nil), StatsEnabled: func() bool { return false }})
	want := `
# HELP pktstat_bpf_stats_enabled 1 if the kernel collects eBPF run-time statistics (the pktstat_bpf_program_* series), else 0.
# TYPE pktstat_bpf_stats_enabled gauge
pktstat_bpf_stats_enabled 0
`
	if err := testutil.CollectAndCompare(off, strings.NewReader(want), "pktstat_bpf_stats_enabled", "pktstat_bpf_program_runs_total"); err != nil {
		t.Fatal(err)
	}
}

// TestLint runs Prometheus's own linter over every metric the collector
// makes, top flows included: names, units, suffixes and help texts.
func TestLint(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0), step: time.Second}
	src := &script{snaps: []flow.Snapshot{{
		Flows:     []flow.Flow{udp(a1, a2, 1000, 53, flow.Out, 3, 300), icmp(a2, a1, 0, 0, flow.In, 1, 98)},
		Untracked: [flow.NumDirections]flow.Counters{flow.In: {Packets: 1, Bytes: 60}},
	}}}
	c := New(Options{Pipeline: pipeline.New(src, clk.now), Iface: "pa0", Top: 5, Owners: true, MaxEntries: 4096, Now: clk.now})
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestHostileLabels: a process in a cgroup whose name is invalid UTF-8
// with terminal escapes, on an interface named with an escape, sending
// UDP. Before, MustNewConstMetric panicked on the label and every scrape
// failed while the flow was among the top ones; now the scrape succeeds,
// with the names escaped, and no series is skipped.
func TestHostileLabels(t *testing.T) {
	f := udp(a1, a2, 1000, 53, flow.Out, 1, 100)
	f.Owner = flow.NewOwner(flow.OwnerInfo{PID: 42, Comm: "ev\x1b]0;pwned\a", Cgroup: "/x\xffy\u202e"})
	clk := &clock{t: time.Unix(1_800_000_000, 0), step: time.Second}
	c := New(Options{Pipeline: pipeline.New(&script{snaps: []flow.Snapshot{{Flows: []flow.Flow{f}}}}, clk.now),
		Iface: "pa\x1b[2J", Top: 5, Owners: true, MaxEntries: 10, Now: clk.now})
	want := `
# HELP pktstat_flow_bytes_per_second Rate of one of the top --metrics-top flows, in bytes per second over the time since the previous scrape.
# TYPE pktstat_flow_bytes_per_second gauge
pktstat_flow_bytes_per_second{cgroup="/x\\xffy\\u202e",comm="ev\\x1b]0;pwned\\x07",direction="out",dst="198.18.0.2",dst_port="53",flags="",icmp_code="",icmp_type="",iface="pa\\x1b[2J",pid="42",protocol="UDP",src="198.18.0.1",src_port="1000",vlan=""} 100
# HELP pktstat_series_skipped_total Top-flow series left out of a scrape because their labels were refused.
# TYPE pktstat_series_skipped_total counter
pktstat_series_skipped_total 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pktstat_flow_bytes_per_second", "pktstat_series_skipped_total"); err != nil {
		t.Fatal(err)
	}
}

// TestScrapeReuse: a scrape within a second of the previous one gets the
// same answer without draining again (two Prometheus servers, or a loop);
// one a second or more later drains.
func TestScrapeReuse(t *testing.T) {
	src := &script{snaps: []flow.Snapshot{
		{Flows: []flow.Flow{udp(a1, a2, 1000, 53, flow.Out, 5, 500)}},
		{Flows: []flow.Flow{udp(a1, a2, 1000, 53, flow.Out, 7, 700)}},
	}}
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	c := New(Options{Pipeline: pipeline.New(src, nil), Iface: "pa0", Top: 3, MaxEntries: 4096, Now: clk.now, ReuseWithin: ReuseWithin})
	packets := func() string {
		t.Helper()
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "pktstat_packets_total" {
				return f.GetMetric()[0].GetCounter().String()
			}
		}
		return ""
	}
	first := packets()
	clk.t = clk.t.Add(500 * time.Millisecond)
	if again := packets(); again != first || src.drains.Load() != 1 {
		t.Errorf("a scrape 500 ms later: %s after %d drains, want %s from the one drain", again, src.drains.Load(), first)
	}
	clk.t = clk.t.Add(time.Second)
	if later := packets(); later == first || src.drains.Load() != 2 {
		t.Errorf("a scrape 1.5 s later: %s after %d drains, want a second drain's 12 packets", later, src.drains.Load())
	}
}
