package capture

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// hookUnderTest is one hook's programs and flow table, as the parser table
// drives them: every frame runs once through each program, each program
// must return pass, which lets the packet go on unchanged, and each must
// record the direction it sees.
type hookUnderTest struct {
	progs []hookProg
	tb    *flowtable.Table[bpfprog.FlowKey]
	pass  uint32
	// accepts says whether BPF_PROG_TEST_RUN takes the frame for these
	// programs (see skbTestRunAccepts); nil: every frame.
	accepts func([]byte) bool
	// tc is the TC object, for tests that read its maps; nil for XDP.
	tc *bpfprog.TCObjects
}

// hookProg is one program of a hook and the direction its rows carry.
type hookProg struct {
	name string
	prog *ebpf.Program
	dir  flow.Direction
}

// tcPass is TC_ACT_UNSPEC (-1), which is also TCX_NEXT, as the kernel
// returns it from BPF_PROG_TEST_RUN: 0xFFFFFFFF.
func tcPass() uint32 {
	a := netlink.TC_ACT_UNSPEC
	return uint32(a)
}

// skbTestRunAccepts says whether BPF_PROG_TEST_RUN runs an skb program on
// frame: it refuses (EINVAL) a frame whose EtherType is IPv4 or IPv6 but
// that is shorter than that IP header (net/bpf/test_run.c, since 2026
// stable kernels), and frames that do not fit one page. XDP takes them.
func skbTestRunAccepts(frame []byte) bool {
	// --read's replay holds frames to the same rule (replay.go).
	return testRunTakes(frame)
}

// newTestTable wraps loaded maps in a table, as StartTC does, and closes
// its spare when the test ends.
func newTestTable[K comparable](t testing.TB, m flowtable.Maps, conv func(*K) flow.Key) *flowtable.Table[K] {
	t.Helper()
	// The spare table is made like the loaded one: its layout and size.
	f := m.Flows
	fs := &ebpf.MapSpec{Name: bpftest.FlowsMap, Type: f.Type(), KeySize: f.KeySize(), ValueSize: f.ValueSize(), MaxEntries: f.MaxEntries(), Flags: f.Flags()}
	tb, err := flowtable.New(m, fs, conv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

// drainAll empties the flow table, so that the next check sees only what
// runs after it.
func drainAll[K comparable](t testing.TB, tb *flowtable.Table[K]) {
	t.Helper()
	if _, err := tb.Drain(nil); err != nil {
		t.Fatal(err)
	}
}

// TestTCParserTable runs every frame of the parser table through the real
// pktstat_ingress and pktstat_egress and compares the one row it makes with
// gopacket's reading of the same frame.
func TestTCParserTable(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(parserName(full), func(t *testing.T) {
			runParserTable(t, loadHook(t, tcHook, testLoad{maxEntries: 64, fullParse: full}))
		})
	}
}

// parserName names the parser a test runs: the fast path first, as the
// tool runs, or the full parser alone.
func parserName(full bool) string {
	if full {
		return "full-parser"
	}
	return "fast-path"
}

func runParserTable(t *testing.T, h hookUnderTest) {
	for _, c := range bpftest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			x, err := bpftest.Expect(c.Frame, bpftest.Options{})
			if err != nil || x.Loose {
				t.Fatalf("oracle: %v (loose: %v)", err, x.Loose)
			}
			want := x.Key
			for _, p := range h.progs {
				if !h.accepts(c.Frame) {
					t.Logf("%s: BPF_PROG_TEST_RUN refuses this frame for this program type; the other hook covers it", p.name)
					continue
				}
				drainAll(t, h.tb)
				if ret := bpftest.Run(t, p.prog, c.Frame, nil); ret != h.pass {
					t.Errorf("%s returned %#x, want %#x (pass the packet unchanged)", p.name, ret, h.pass)
				}
				want.Dir = p.dir
				row := checkOneRow(t, h.tb, want, flow.Counters{Packets: 1, Bytes: uint64(len(c.Frame))})
				checkL7(t, c, x, row.L7)
			}
		})
	}
}

// checkL7 checks a row's application protocol: the one the case was
// built with, else the oracle's rules for what must be settled.
func checkL7(t *testing.T, c bpftest.Case, x bpftest.Expectation, got flow.L7) {
	t.Helper()
	if c.L7 != 0 {
		if got != c.L7 {
			t.Errorf("l7 = %v (%d), the payload was built as %v (%d)", got, got, c.L7, c.L7)
		}
		return
	}
	if err := x.CheckL7(got); err != nil {
		t.Error(err)
	}
}

// checkOneRow drains the flow table and asserts that it held exactly one
// row, with key want and counters c, and that nothing went untracked. It
// returns the row.
func checkOneRow(t *testing.T, tb *flowtable.Table[bpfprog.FlowKey], want flow.Key, c flow.Counters) flow.Flow {
	t.Helper()
	snap, err := tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := snap.UntrackedTotal(); u != (flow.Counters{}) {
		t.Errorf("untracked = %+v, want none", u)
	}
	if len(snap.Flows) != 1 {
		t.Fatalf("flow table has %d rows, want 1 (%+v):\n%s", len(snap.Flows), want, rows(snap))
	}
	got := snap.Flows[0]
	if got.Key != want {
		t.Fatalf("row key differs from gopacket's reading of the frame:\n%s want %+v", rows(snap), want)
	} else if got.Counters != c {
		t.Errorf("counters = %+v, want %+v", got.Counters, c)
	}
	return got
}

func rows(s flow.Snapshot) string {
	var out string
	for _, r := range s.Flows {
		out += fmt.Sprintf("  got  %+v: %+v\n", r.Key, r.Counters)
	}
	return out
}

// TestTCGSOAccounting checks that a GSO skb counts as the wire segments it
// stands for, each with its own copy of the headers: gso_segs when the
// kernel set it, else the payload divided by gso_size, rounded up.
func TestTCGSOAccounting(t *testing.T) {
	h := loadHook(t, tcHook, testLoad{maxEntries: 64})
	vlanTCP4 := bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeDot1Q),
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4},
		bpftest.IPv4(layers.IPProtocolTCP), bpftest.TCP(), bpftest.Payload(1448))
	udp4 := bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolUDP),
		bpftest.UDP(), bpftest.Payload(1200))

	for _, tc := range []gsoCase{
		{name: "tcp4-segs-45", frame: tcp4Frame(t, 1448), segs: 45, size: 1448, wantSegs: 45},
		{name: "tcp6-segs-3", frame: tcp6Frame(t, 1428), segs: 3, size: 1428, wantSegs: 3},
		{name: "vlan-tcp4-segs-4", frame: vlanTCP4, segs: 4, size: 1448, wantSegs: 4},
		{name: "udp4-segs-10", frame: udp4, segs: 10, size: 1200, wantSegs: 10},
		// gso_segs 0: the program derives the count from gso_size.
		{name: "tcp4-derived-round-up", frame: tcp4Frame(t, 2*1448+100), size: 1448},
		{name: "tcp6-derived-exact", frame: tcp6Frame(t, 2*1000), size: 1000},
		{name: "tcp4-derived-one", frame: tcp4Frame(t, 100), size: 1448},
		// Not GSO at all: one packet of its own length.
		{name: "tcp4-no-gso", frame: tcp4Frame(t, 1448), wantSegs: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := bpftest.ExpectedKey(tc.frame)
			if err != nil {
				t.Fatalf("oracle: %v", err)
			}
			hdr, err := bpftest.HeaderLen(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			segs := tc.wantSegs
			if segs == 0 {
				payload := uint64(len(tc.frame) - hdr)
				segs = (payload + uint64(tc.size) - 1) / uint64(tc.size)
			}
			perRun := flow.Counters{
				Packets: segs,
				Bytes:   uint64(len(tc.frame)) + (segs-1)*uint64(hdr),
			}
			t.Logf("%d bytes, headers %d, gso_segs %d, gso_size %d: %d packets, %d bytes per run",
				len(tc.frame), hdr, tc.segs, tc.size, perRun.Packets, perRun.Bytes)
			ctx := &bpftest.SkBuff{GSOSegs: tc.segs, GSOSize: tc.size}
			for _, p := range h.progs {
				drainAll(t, h.tb)
				if ret := bpftest.Run(t, p.prog, tc.frame, ctx); ret != h.pass {
					t.Errorf("%s returned %#x, want %#x", p.name, ret, h.pass)
				}
				want.Dir = p.dir
				checkOneRow(t, h.tb, want, perRun)
			}
		})
	}
}

// TestTCUntracked fills a 4-row flow table with 10 flows: 4 get rows,
// the other 6 are counted as untracked, and nothing is lost. Known flows
// keep counting while the table is full. Without the flow cache, the
// first 4 flows get the rows; with it, the flows whose counts reach the
// table first, which are whole in their rows.
func TestTCUntracked(t *testing.T) {
	for _, noCache := range []bool{true, false} {
		t.Run(map[bool]string{true: "no-cache", false: "cache"}[noCache], func(t *testing.T) { testTCUntracked(t, noCache) })
	}
}

func testTCUntracked(t *testing.T, noCache bool) {
	const maxEntries, nFlows = 4, 10
	h := loadHook(t, tcHook, testLoad{maxEntries: maxEntries, noCache: noCache})
	objs := h.tc

	frames := make([][]byte, nFlows)
	keys := make([]flow.Key, nFlows)
	for i := range frames {
		u := bpftest.UDP()
		u.SrcPort = layers.UDPPort(41000 + i)
		// Distinct lengths, so that the byte counts tell flows apart.
		frames[i] = bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4),
			bpftest.IPv4(layers.IPProtocolUDP), u, bpftest.Payload(100+10*i))
		k, err := bpftest.ExpectedKey(frames[i])
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}

	// Two rounds, one drain: the table stays full through round 2.
	const rounds = 2
	var sent flow.Counters
	for round := 1; round <= rounds; round++ {
		for _, fr := range frames {
			if ret := bpftest.Run(t, objs.PktstatIngress, fr, nil); ret != h.pass {
				t.Fatalf("returned %#x, want %#x", ret, h.pass)
			}
			sent.Add(flow.Counters{Packets: 1, Bytes: uint64(len(fr))})
		}
	}
	snap, err := h.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Flows) != maxEntries {
		t.Fatalf("%d rows, want %d:\n%s", len(snap.Flows), maxEntries, rows(snap))
	}
	got := map[flow.Key]flow.Counters{}
	var total flow.Counters
	for _, r := range snap.Flows {
		got[r.Key] = r.Counters
		total.Add(r.Counters)
	}
	var wantLost flow.Counters
	for i, k := range keys {
		c := flow.Counters{Packets: rounds, Bytes: rounds * uint64(len(frames[i]))}
		r, ok := got[k]
		if noCache && i < maxEntries && !ok {
			t.Errorf("flow %d has no row; the first %d flows get them", i, maxEntries)
		}
		if !ok {
			wantLost.Add(c)
		} else if r != c {
			t.Errorf("flow %d has %+v, want %+v", i, r, c)
		}
	}
	if snap.Untracked[flow.In] != wantLost || snap.Untracked[flow.Out] != (flow.Counters{}) {
		t.Errorf("untracked in/out %+v/%+v, want %+v/none (flows %d..%d)", snap.Untracked[flow.In], snap.Untracked[flow.Out], wantLost, maxEntries, nFlows-1)
	}
	if snap.UntrackedFlows != nFlows-maxEntries {
		t.Errorf("about %d untracked flows, want %d", snap.UntrackedFlows, nFlows-maxEntries)
	}
	total.Add(snap.UntrackedTotal())
	if total != sent {
		t.Errorf("rows + untracked = %+v, sent %+v", total, sent)
	}
	t.Logf("%d rows, untracked %+v (about %d flows), total %+v", len(snap.Flows), snap.UntrackedTotal(), snap.UntrackedFlows, total)
}

// gsoCase is a GSO skb for the GSO accounting tests: a frame, and the
// skb's gso_segs and gso_size.
type gsoCase struct {
	name     string
	frame    []byte
	segs     uint32 // gso_segs
	size     uint32 // gso_size
	wantSegs uint64 // 0: derive from the payload
}

// tcp4Frame and tcp6Frame are frames of one TCP segment of payload bytes.
func tcp4Frame(tb testing.TB, payload int) []byte {
	tb.Helper()
	return bpftest.Frame(tb, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolTCP),
		bpftest.TCP(), bpftest.Payload(payload))
}

func tcp6Frame(tb testing.TB, payload int) []byte {
	tb.Helper()
	return bpftest.Frame(tb, bpftest.Eth(layers.EthernetTypeIPv6), bpftest.IPv6(layers.IPProtocolTCP),
		bpftest.TCP(), bpftest.Payload(payload))
}
