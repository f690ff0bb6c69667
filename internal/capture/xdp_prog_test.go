package capture

import (
	"slices"
	"strconv"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// xdpPass is XDP_PASS: the frame goes on to the stack unchanged.
const xdpPass = 2

// TestXDPParserTable runs every frame of the parser table, the one the TC
// programs pass, through both variants of pktstat_xdp: one row per frame,
// keyed as gopacket reads the frame, with the frame's full length.
func TestXDPParserTable(t *testing.T) {
	for _, v := range []struct {
		name  string
		frags bool
	}{{"frags", true}, {"plain", false}} {
		for _, full := range []bool{false, true} {
			t.Run(v.name+"/"+parserName(full), func(t *testing.T) {
				runParserTable(t, loadHook(t, xdpHook, testLoad{maxEntries: 64, frags: v.frags, fullParse: full}))
			})
		}
	}
}

// TestXDPMultiBuffer counts frames that span several buffers. For a frame
// larger than a page, BPF_PROG_TEST_RUN puts the first ~3.5 KiB into the
// linear buffer and the rest into fragments, as a driver does with a jumbo
// frame; the row must count the whole frame, and the headers in the first
// buffer must still give the key.
//
// The plain program runs on the same frames as a control: it sees only the
// linear part of the larger ones, which proves that they really arrived in
// several buffers.
func TestXDPMultiBuffer(t *testing.T) {
	h := loadHook(t, xdpHook, testLoad{maxEntries: 64, frags: true})
	plain := loadHook(t, xdpHook, testLoad{maxEntries: 64, frags: false})
	for _, size := range []int{1514, 3000, 4096, 9014, 16000} {
		frame := bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolUDP),
			bpftest.UDP(), bpftest.Payload(size-14-20-8))
		if len(frame) != size {
			t.Fatalf("built %d bytes, want %d", len(frame), size)
		}
		want, err := bpftest.ExpectedKey(frame)
		if err != nil {
			t.Fatalf("oracle: %v", err)
		}
		drainAll(t, h.tb)
		const runs = 3
		for range runs {
			if ret := bpftest.Run(t, h.progs[0].prog, frame, nil); ret != xdpPass {
				t.Fatalf("%d-byte frame: returned %d, want XDP_PASS", size, ret)
			}
		}
		checkOneRow(t, h.tb, want, flow.Counters{Packets: runs, Bytes: runs * uint64(size)})

		drainAll(t, plain.tb)
		bpftest.Run(t, plain.progs[0].prog, frame, nil)
		snap, err := plain.tb.Drain(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Flows) != 1 || snap.Flows[0].Key != want {
			t.Fatalf("plain program: rows %+v, want one of %+v", snap.Flows, want)
		}
		linear := snap.Flows[0].Bytes
		switch {
		case size <= 3000 && linear != uint64(size):
			t.Errorf("%d-byte frame: plain program counted %d bytes; a frame this small fits one buffer", size, linear)
		case size >= 4096 && linear >= uint64(size):
			t.Errorf("%d-byte frame: plain program counted %d bytes; the frame was not split, so this test proves nothing", size, linear)
		}
		t.Logf("%d-byte frame: frags-aware program counted %d bytes per frame, the linear part is %d", size, size, linear)
	}
}

// TestXDPPlainCountsLinearFrames: the plain program, which kernels before
// 5.18 get, counts data_end - data. Those kernels never give such a program
// a multi-buffer frame, so for every frame it can see that is the whole
// frame, up to the largest single buffer.
func TestXDPPlainCountsLinearFrames(t *testing.T) {
	h := loadHook(t, xdpHook, testLoad{maxEntries: 64, frags: false})
	for _, size := range []int{0, 1400, 3000} {
		frame := bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv6), bpftest.IPv6(layers.IPProtocolTCP),
			bpftest.TCP(), bpftest.Payload(size))
		want, err := bpftest.ExpectedKey(frame)
		if err != nil {
			t.Fatalf("oracle: %v", err)
		}
		drainAll(t, h.tb)
		if ret := bpftest.Run(t, h.progs[0].prog, frame, nil); ret != xdpPass {
			t.Fatalf("returned %d, want XDP_PASS", ret)
		}
		checkOneRow(t, h.tb, want, flow.Counters{Packets: 1, Bytes: uint64(len(frame))})
	}
}

// TestXDPUntracked: a full table sends new flows to the overflow counters
// in XDP too, and known flows keep counting; with the flow cache and
// without (where the first flows get the rows).
func TestXDPUntracked(t *testing.T) {
	for _, noCache := range []bool{true, false} {
		t.Run(map[bool]string{true: "no-cache", false: "cache"}[noCache], func(t *testing.T) { testXDPUntracked(t, noCache) })
	}
}

func testXDPUntracked(t *testing.T, noCache bool) {
	const maxEntries, nFlows = 3, 8
	h := loadHook(t, xdpHook, testLoad{maxEntries: maxEntries, frags: true, noCache: noCache})
	var sent flow.Counters
	byKey := map[flow.Key]flow.Counters{}
	var first []flow.Key
	for i := range nFlows {
		u := bpftest.UDP()
		u.SrcPort = layers.UDPPort(42000 + i)
		fr := bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolUDP), u, bpftest.Payload(50+i))
		bpftest.Run(t, h.progs[0].prog, fr, nil)
		c := flow.Counters{Packets: 1, Bytes: uint64(len(fr))}
		sent.Add(c)
		k, err := bpftest.ExpectedKey(fr)
		if err != nil {
			t.Fatal(err)
		}
		byKey[k] = c
		if i < maxEntries {
			first = append(first, k)
		}
	}
	snap, err := h.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The flows with rows have all their counts there; the rest is lost.
	lost := sent
	for _, r := range snap.Flows {
		if byKey[r.Key] != r.Counters {
			t.Errorf("row %+v, want the flow's %+v", r, byKey[r.Key])
		}
		lost.Packets -= r.Packets
		lost.Bytes -= r.Bytes
	}
	if noCache {
		for _, k := range first {
			if !slices.ContainsFunc(snap.Flows, func(r flow.Flow) bool { return r.Key == k }) {
				t.Errorf("flow %+v has no row; the first %d flows get them", k, maxEntries)
			}
		}
	}
	if len(snap.Flows) != maxEntries || snap.Untracked[flow.In] != lost || snap.Untracked[flow.Out] != (flow.Counters{}) {
		t.Fatalf("%d rows, untracked %+v; want %d rows, untracked %+v in", len(snap.Flows), snap.Untracked, maxEntries, lost)
	}
	total := snap.UntrackedTotal()
	for _, r := range snap.Flows {
		total.Add(r.Counters)
	}
	if total != sent {
		t.Fatalf("rows + untracked = %+v, sent %+v", total, sent)
	}
}

// TestXDPSharesTCMapLayout: capture reads every mode's flow table with the
// TC object's Go types, which is right only while both objects declare
// byte-identical keys and values. Both come from pktstat.h; this catches a
// hook that ever declares its own.
func TestXDPSharesTCMapLayout(t *testing.T) {
	tc, err := bpfprog.LoadTC()
	if err != nil {
		t.Fatal(err)
	}
	xdp, err := bpfprog.LoadXDP()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bpfprog.XDPMapFlows, bpfprog.XDPMapUntracked} {
		a, b := tc.Maps[name], xdp.Maps[name]
		if a == nil || b == nil {
			t.Fatalf("map %q: TC has it %v, XDP has it %v", name, a != nil, b != nil)
		}
		if a.Type != b.Type || a.KeySize != b.KeySize || a.ValueSize != b.ValueSize {
			t.Errorf("map %q: TC %v key %d value %d, XDP %v key %d value %d", name, a.Type, a.KeySize, a.ValueSize, b.Type, b.KeySize, b.ValueSize)
		}
		for _, pair := range [][2]btf.Type{{a.Key, b.Key}, {a.Value, b.Value}} {
			ga, gb := btfLayout(pair[0]), btfLayout(pair[1])
			if ga != gb {
				t.Errorf("map %q: TC type %s, XDP type %s", name, ga, gb)
			}
		}
	}
}

// btfLayout spells out a type's members, offsets and sizes.
func btfLayout(typ btf.Type) string {
	if typ == nil {
		return "none"
	}
	s, ok := btf.UnderlyingType(typ).(*btf.Struct)
	if !ok {
		sz, _ := btf.Sizeof(typ)
		return typ.TypeName() + "/" + strconv.Itoa(sz)
	}
	out := s.Name + "{"
	for _, m := range s.Members {
		sz, _ := btf.Sizeof(m.Type)
		out += m.Name + "@" + strconv.Itoa(int(m.Offset.Bytes())) + ":" + strconv.Itoa(sz) + " "
	}
	return out + "}"
}
