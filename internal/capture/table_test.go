package capture

import (
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// udpFrame builds an Ethernet/IPv4/UDP frame from 198.18.0.1 to
// 198.18.0.2 with the given source port and payload length.
// udpKey is the kernel's key of udpFrame's flow from sport, counted on
// egress when out is set.
func udpKey(sport uint16, out bool) bpfprog.FlowKey {
	k := bpfprog.FlowKey{Sport: sport, Dport: 9, EthProto: 0x0800, Proto: 17, Ifindex: bpftest.TestRunIfindex}
	copy(k.Saddr[:], []byte{198, 18, 0, 1})
	copy(k.Daddr[:], []byte{198, 18, 0, 2})
	if out {
		k.Dir = bpfprog.TCFlowDirFLOW_DIR_OUT
	}
	return k
}

func udpFrame(t *testing.T, sport uint16, payload int) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{198, 18, 0, 1}, DstIP: net.IP{198, 18, 0, 2}}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 9}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(make([]byte, payload))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDrainIsExactUnderLoad drains the table over and over while another
// goroutine keeps running frames through the program. Every run must be
// in exactly one drain: the totals per flow equal the runs, to the packet.
func TestDrainIsExactUnderLoad(t *testing.T) {
	h := loadHook(t, tcHook, testLoad{maxEntries: 64})
	objs, tb := h.tc, h.tb
	// One run per syscall: a run with Repeat > 1 that a signal interrupts
	// is started over, and would count more than the test sent.
	const (
		flows  = 8
		rounds = 25000
		repeat = 1
	)
	frames := make([][]byte, flows)
	for i := range frames {
		frames[i] = udpFrame(t, uint16(40000+i), 18+i)
	}

	got := map[uint16]flow.Counters{}
	drains := 0
	collect := func() {
		s, err := tb.Drain(nil)
		if err != nil {
			t.Fatal(err)
		}
		drains++
		if u := s.UntrackedTotal(); u.Packets != 0 {
			t.Fatalf("%d packets untracked with room for 64 flows", u.Packets)
		}
		for _, r := range s.Flows {
			c := got[r.SrcPort]
			c.Add(r.Counters)
			got[r.SrcPort] = c
		}
	}
	drainDuringRuns(t, objs.PktstatIngress, frames, rounds, collect)

	for i, f := range frames {
		want := flow.Counters{Packets: rounds * repeat, Bytes: uint64(rounds * repeat * len(f))}
		if c := got[uint16(40000+i)]; c != want {
			t.Errorf("flow %d: drained %+v, want %+v", i, c, want)
		}
	}
	t.Logf("%d drains over %d runs", drains, flows*rounds*repeat)
	if drains < 3 {
		t.Errorf("only %d drains happened during the runs; the test did not exercise concurrent swaps", drains)
	}
}

// TestDrainManyBatches drains a table of several batches' worth of rows
// into a slice with room for none, in each layout: every row once, with
// the counts it was given, however often the slice grows.
func TestDrainManyBatches(t *testing.T) {
	const n = 3*4096 + 17
	for _, l := range layouts {
		t.Run(l.String(), func(t *testing.T) {
			h := loadHook(t, tcHook, testLoad{maxEntries: n, layout: l})
			fillTable(t, h.tb, n)
			s, err := h.tb.Drain(make([]flow.Flow, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Flows) != n {
				t.Fatalf("drained %d rows, want %d", len(s.Flows), n)
			}
			seen := make(map[uint16]bool, n)
			for _, r := range s.Flows {
				id := uint32(r.Src.As4()[3])<<16 | uint32(r.SrcPort)
				// fillTable gives each of an entry's values (one per CPU
				// in the per-CPU layout) the same counts.
				values := uint64(h.tb.NCPU())
				want := flow.Counters{Packets: uint64(id%97+1) * values, Bytes: uint64(id%9973+64) * values}
				if r.Counters != want {
					t.Fatalf("flow %d: %+v, want %+v", id, r.Counters, want)
				}
				if seen[r.SrcPort] {
					t.Fatalf("flow %d drained twice", id)
				}
				seen[r.SrcPort] = true
			}
		})
	}
}

// TestUntrackedIsCountedAndSketched fills a 2-entry table and checks that
// the rest is counted exactly in the untracked counters, by direction, and
// that the kernel's sketch uses the same hash as flow.KeyHash.
func TestUntrackedIsCountedAndSketched(t *testing.T) {
	// Without the flow cache, whose flows reach the sketch at a drain.
	h := loadHook(t, tcHook, testLoad{maxEntries: 2, noCache: true})
	objs, tb := h.tc, h.tb
	var sent flow.Counters
	for i := 0; i < 10; i++ {
		f := udpFrame(t, uint16(50000+i), 10)
		prog := objs.PktstatIngress
		if i%2 == 1 {
			prog = objs.PktstatEgress
		}
		for range 3 {
			if _, err := prog.Run(&ebpf.RunOptions{Data: f}); err != nil {
				t.Fatal(err)
			}
		}
		sent.Add(flow.Counters{Packets: 3, Bytes: uint64(3 * len(f))})
	}
	// Read the sketch before drain clears it.
	var hlls []bpfprog.HLL
	if err := objs.UntrackedHll.Lookup(uint32(0), &hlls); err != nil {
		t.Fatal(err)
	}
	var sketch flow.HLL
	for i := range hlls {
		sketch.Merge((*flow.HLL)(&hlls[i].Reg))
	}

	s, err := tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Flows) != 2 {
		t.Fatalf("%d rows in a 2-entry table", len(s.Flows))
	}
	var total flow.Counters
	for _, r := range s.Flows {
		total.Add(r.Counters)
	}
	total.Add(s.UntrackedTotal())
	if total != sent {
		t.Errorf("rows + untracked = %+v, want everything sent: %+v", total, sent)
	}
	// Ports 50000 and 50001 got the rows; of the other 8, ports 50002,
	// 50004, ... went in and 50003, 50005, ... went out.
	if in, out := s.Untracked[flow.In].Packets, s.Untracked[flow.Out].Packets; in != 12 || out != 12 {
		t.Errorf("untracked packets in/out = %d/%d, want 12/12", in, out)
	}
	if s.UntrackedFlows != 8 {
		t.Errorf("estimated %d untracked flows, want 8 (the sketch is exact at this size)", s.UntrackedFlows)
	}

	// The same sketch, built in Go from the keys of the untracked flows.
	var want flow.HLL
	for i := 2; i < 10; i++ {
		k := udpKey(uint16(50000+i), i%2 == 1)
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&k)), unsafe.Sizeof(k))
		var words [12]uint32
		for w := range words {
			words[w] = binary.LittleEndian.Uint32(raw[4*w:])
		}
		want.Add(flow.KeyHash(words))
	}
	if sketch != want {
		t.Error("the kernel's sketch differs from flow.HLL fed with flow.KeyHash of the same keys")
	}

	// Counters are deltas: a second drain with no traffic has nothing.
	s, err = tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Flows) != 0 || s.UntrackedTotal().Packets != 0 {
		t.Errorf("second drain = %d rows, %+v untracked; want nothing", len(s.Flows), s.UntrackedTotal())
	}
}

// untrackedState reads one generation of the untracked counters and
// sketch, per-CPU slots summed: packets by direction and the number of
// sketch registers in use.
func untrackedState(t *testing.T, objs *bpfprog.TCObjects, gen uint32) (in, out uint64, registers int) {
	t.Helper()
	var vals []bpfprog.FlowVal
	for dir, sum := range []*uint64{&in, &out} {
		if err := objs.Untracked.Lookup(gen*flow.NumDirections+uint32(dir), &vals); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			*sum += v.Packets
		}
	}
	var hlls []bpfprog.HLL
	if err := objs.UntrackedHll.Lookup(gen, &hlls); err != nil {
		t.Fatal(err)
	}
	var sketch flow.HLL
	for i := range hlls {
		sketch.Merge((*flow.HLL)(&hlls[i].Reg))
	}
	for _, r := range sketch {
		if r != 0 {
			registers++
		}
	}
	return in, out, registers
}

// TestUntrackedGenerations follows the untracked counters and sketch
// through two drains: the programs add to the generation untracked_gen
// names, and a drain switches it, reports the other one and clears it.
func TestUntrackedGenerations(t *testing.T) {
	// Without the flow cache, which holds flows until a drain.
	h := loadHook(t, tcHook, testLoad{maxEntries: 1, noCache: true})
	objs, tb := h.tc, h.tb
	run := func(sport uint16) {
		t.Helper()
		if _, err := objs.PktstatIngress.Run(&ebpf.RunOptions{Data: udpFrame(t, sport, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(gen uint32, in uint64, registers int) {
		t.Helper()
		gotIn, gotOut, gotRegs := untrackedState(t, objs, gen)
		if gotIn != in || gotOut != 0 || gotRegs != registers {
			t.Errorf("generation %d: %d in, %d out, %d sketch registers; want %d in, 0 out, %d registers",
				gen, gotIn, gotOut, gotRegs, in, registers)
		}
	}
	// One flow takes the only row; four more go untracked.
	for sport := uint16(51000); sport < 51005; sport++ {
		run(sport)
	}
	want(0, 4, 4)
	want(1, 0, 0)
	s, err := tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Flows) != 1 || s.Untracked[flow.In].Packets != 4 || s.UntrackedFlows != 4 {
		t.Fatalf("first drain: %d rows, %d untracked packets from about %d flows; want 1 row, 4 packets, 4 flows",
			len(s.Flows), s.Untracked[flow.In].Packets, s.UntrackedFlows)
	}
	want(0, 0, 0) // read and cleared
	// The table is empty again: one flow takes the row, two go untracked,
	// into generation 1 now.
	for sport := uint16(51010); sport < 51013; sport++ {
		run(sport)
	}
	want(0, 0, 0)
	want(1, 2, 2)
	if s, err = tb.Drain(nil); err != nil {
		t.Fatal(err)
	}
	if len(s.Flows) != 1 || s.Untracked[flow.In].Packets != 2 || s.UntrackedFlows != 2 {
		t.Fatalf("second drain: %d rows, %d untracked packets from about %d flows; want 1 row, 2 packets, 2 flows",
			len(s.Flows), s.Untracked[flow.In].Packets, s.UntrackedFlows)
	}
	want(1, 0, 0)
}

// TestUntrackedUnderLoad drains a 1-entry table over and over while
// another goroutine runs frames of eight flows through the program. Over
// all drains, rows plus untracked equal the runs exactly; and in every
// drain, the estimate of untracked flows covers the same packets as the
// untracked counters: at least one flow when there were untracked packets,
// none when there were none, and never more than eight.
func TestUntrackedUnderLoad(t *testing.T) {
	h := loadHook(t, tcHook, testLoad{maxEntries: 1})
	objs, tb := h.tc, h.tb
	const (
		flows  = 8
		rounds = 20000
	)
	frames := make([][]byte, flows)
	for i := range frames {
		frames[i] = udpFrame(t, uint16(52000+i), 18)
	}
	var total flow.Counters
	drains, withUntracked := 0, 0
	collect := func() {
		s, err := tb.Drain(nil)
		if err != nil {
			t.Fatal(err)
		}
		drains++
		for _, r := range s.Flows {
			total.Add(r.Counters)
		}
		u := s.UntrackedTotal()
		total.Add(u)
		switch {
		case u.Packets > 0 && (s.UntrackedFlows < 1 || s.UntrackedFlows > flows):
			t.Errorf("drain %d: %d untracked packets from about %d flows; want 1 to %d flows", drains, u.Packets, s.UntrackedFlows, flows)
		case u.Packets == 0 && s.UntrackedFlows != 0:
			t.Errorf("drain %d: no untracked packets, but about %d untracked flows", drains, s.UntrackedFlows)
		}
		if u.Packets > 0 {
			withUntracked++
		}
	}
	drainDuringRuns(t, objs.PktstatIngress, frames, rounds, collect)
	want := flow.Counters{Packets: flows * rounds, Bytes: uint64(flows * rounds * len(frames[0]))}
	if total != want {
		t.Errorf("rows + untracked over %d drains = %+v, want every run: %+v", drains, total, want)
	}
	t.Logf("%d drains, %d with untracked traffic, over %d runs", drains, withUntracked, flows*rounds)
	if withUntracked < 3 {
		t.Errorf("only %d drains saw untracked traffic; the test did not exercise concurrent switches", withUntracked)
	}
}

// drainDuringRuns runs every frame through prog, rounds times, in another
// goroutine, one run per syscall, and calls drain over and over until the
// runs end, then once more.
func drainDuringRuns(t *testing.T, prog *ebpf.Program, frames [][]byte, rounds int, drain func()) {
	t.Helper()
	runErr := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range rounds {
			for _, f := range frames {
				if _, err := prog.Run(&ebpf.RunOptions{Data: f}); err != nil {
					runErr <- err
					return
				}
			}
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			drain()
		}
	}
	drain()
	select {
	case err := <-runErr:
		t.Fatal(err)
	default:
	}
}

// TestFlowCacheEviction: two flows that share a flow-cache slot take turns
// on one CPU. The flow in the slot keeps it while the other's packets go
// to the flow table, up to flow_cache_patience of them since its own last
// packet; the next one takes the slot and sends the cached packets to the
// table. A drain gives each flow its exact counts, from the table and the
// cache. The kernel picks the slot that flowtable.CacheSlot computes, in
// the smallest cache and the largest (flowtable.SizeCache).
func TestFlowCacheEviction(t *testing.T) {
	for _, l := range layouts {
		for _, bits := range []uint32{8, 12} {
			t.Run(fmt.Sprintf("%v/%d-slots", l, 1<<bits), func(t *testing.T) { testFlowCacheEviction(t, l, bits) })
		}
	}
}

func testFlowCacheEviction(t *testing.T, layout flowtable.Layout, bits uint32) {
	h := loadHook(t, tcHook, testLoad{maxEntries: 64, layout: layout, cacheBits: bits})
	if got := h.tb.CacheBits(); got != bits {
		t.Fatalf("the table reads a cache of 2^%d slots, want 2^%d", got, bits)
	}
	const a = 20000 // room above for a partner in 4096 slots
	ka := udpKey(a, false)
	slot := flowtable.CacheSlot(&ka, bits)
	b := uint16(a + 1)
	for kb := udpKey(b, false); flowtable.CacheSlot(&kb, bits) != slot; kb = udpKey(b, false) {
		b++
	}
	fa, fb := udpFrame(t, a, 10), udpFrame(t, b, 20)
	run := func(frame []byte, n int) {
		onCPU(t, 0, func() {
			for range n {
				bpftest.Run(t, h.tc.PktstatIngress, frame, nil)
			}
		})
	}
	// cached is CPU 0's entry of the slot, in generation 0 (no drain yet).
	cached := func() bpfprog.FlowCacheEntry {
		t.Helper()
		var per []bpfprog.FlowCacheEntry
		if err := h.tc.FlowCache.Lookup(slot, &per); err != nil {
			t.Fatal(err)
		}
		return per[0]
	}
	// tableRows is the flow table's rows, summed over CPUs.
	tableRows := func() map[flow.Key]uint64 {
		rows, err := h.tb.Peek()
		if err != nil {
			t.Fatal(err)
		}
		got := map[flow.Key]uint64{}
		for _, r := range rows {
			got[r.Key] += r.Packets
		}
		return got
	}

	var patience uint8
	if err := h.tc.FlowCachePatience.Get(&patience); err != nil {
		t.Fatal(err)
	}
	if patience == 0 {
		t.Fatal("flow_cache_patience is 0: every new flow would take its slot")
	}
	kb := udpKey(b, false)
	keyA, keyB := flowtable.KeyFromBPF(&ka), flowtable.KeyFromBPF(&kb)
	// check wants the slot to hold flow key's n packets and misses, and
	// the table rows.
	check := func(step string, key flow.Key, n uint64, misses uint8, rows map[flow.Key]uint64) {
		t.Helper()
		e, size := cached(), uint64(len(fa))
		if key == keyB {
			size = uint64(len(fb))
		}
		if flowtable.KeyFromBPF(&e.Key) != key || e.Packets != n || e.Bytes != n*size || e.Misses != misses {
			t.Fatalf("%s: slot %d on CPU 0 holds %+v, want flow %d's %d packets and %d misses", step, slot, e, key.SrcPort, n, misses)
		}
		if got := tableRows(); !maps.Equal(got, rows) {
			t.Fatalf("%s: the flow table holds %v, want %v", step, got, rows)
		}
	}
	run(fa, 3)
	check("flow a's 3 packets", keyA, 3, 0, map[flow.Key]uint64{})
	run(fb, 1)
	check("flow b's first", keyA, 3, 1, map[flow.Key]uint64{keyB: 1})
	run(fa, 1)
	check("flow a again", keyA, 4, 0, map[flow.Key]uint64{keyB: 1})
	run(fb, int(patience))
	check("flow b's next, as many as a lets by", keyA, 4, patience, map[flow.Key]uint64{keyB: 1 + uint64(patience)})
	run(fb, 1)
	check("one more of flow b's", keyB, 1, 0, map[flow.Key]uint64{keyA: 4, keyB: 1 + uint64(patience)})
	run(fa, 1)
	check("flow a after it lost the slot", keyB, 1, 1, map[flow.Key]uint64{keyA: 5, keyB: 1 + uint64(patience)})
	snap, err := h.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint16]flow.Counters{
		a: {Packets: 5, Bytes: 5 * uint64(len(fa))},
		b: {Packets: 2 + uint64(patience), Bytes: (2 + uint64(patience)) * uint64(len(fb))},
	}
	if len(snap.Flows) != 2 {
		t.Fatalf("drained %s, want flows %d and %d", rows(snap), a, b)
	}
	for _, r := range snap.Flows {
		if r.Counters != want[r.Key.SrcPort] {
			t.Errorf("flow %d: %+v, want %+v", r.Key.SrcPort, r.Counters, want[r.Key.SrcPort])
		}
	}
	// The drain cleared generation 0's cache.
	if e := cached(); e.Packets != 0 {
		t.Errorf("after the drain, slot %d on CPU 0 still holds %+v", slot, e)
	}
}

// TestFlowTableLayout: the tool counts in the array table on kernels with
// BPF atomics (5.12 and later) and in the shared hash before, with the
// array table's global function taken out of the programs (kernels before
// 5.12 refuse it even where it cannot run); each loads and counts a frame
// exactly in a table of the tool's default size.
func TestFlowTableLayout(t *testing.T) {
	bpftest.RequireRoot(t)
	release, err := kernel.Release()
	if err != nil {
		t.Fatal(err)
	}
	got, err := defaultLayout()
	if err != nil {
		t.Fatal(err)
	}
	want := flowtable.Array
	if kernel.Before(release, 5, 12) {
		want = flowtable.Shared
	}
	if got != want {
		t.Fatalf("Linux %s: the %s flow table, want the %s one", release, got, want)
	}
	t.Logf("Linux %s: the %s flow table", release, got)
	// The flow cache's size: by CPU count where the kernel reads per-CPU
	// arrays in batches, which 5.10 cannot and 6.1 and later can.
	batch, err := flowtable.HaveCacheBatch()
	if err != nil {
		t.Fatal(err)
	}
	if (!kernel.Before(release, 6, 1) && !batch) || (kernel.Before(release, 5, 11) && batch) {
		t.Errorf("Linux %s: batch reads of per-CPU arrays %v", release, batch)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	h := loadHook(t, tcHook, testLoad{maxEntries: cli.DefaultMaxEntries})
	if bits, want := h.tb.CacheBits(), flowtable.CacheBits(ncpu, batch); bits != want {
		t.Errorf("Linux %s, %d CPUs: a flow cache of 2^%d slots a CPU, want 2^%d", release, ncpu, bits, want)
	}
	t.Logf("Linux %s, %d CPUs: a flow cache of %d slots a CPU", release, ncpu, 1<<h.tb.CacheBits())
	frame := udpFrame(t, 41000, 100)
	for range 3 {
		bpftest.Run(t, h.tc.PktstatIngress, frame, nil)
	}
	snap, err := h.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Flows) != 1 || snap.Flows[0].Counters != (flow.Counters{Packets: 3, Bytes: 3 * uint64(len(frame))}) {
		t.Fatalf("3 frames of %d bytes: rows %s", len(frame), rows(snap))
	}
}

// TestRowLimitAcrossCPUs: two CPUs bring new flows into an array table at
// once, without the flow cache, so that every packet reaches the table:
// 3,000 flows, 1,500 from each CPU, for 1,000 rows. The CPUs take rows in
// batches from one count; the table must give out exactly its 1,000 rows
// and count every other flow's packet as untracked.
func TestRowLimitAcrossCPUs(t *testing.T) {
	const rows, perCPU = 1000, 1500
	if runtime.NumCPU() < 2 {
		t.Skipf("needs two CPUs, this machine has %d", runtime.NumCPU())
	}
	h := loadHook(t, tcHook, testLoad{maxEntries: rows, noCache: true, layout: flowtable.Array})
	var frames [2][][]byte
	for cpu := range frames {
		for i := range perCPU {
			frames[cpu] = append(frames[cpu], udpFrame(t, uint16(10000+cpu*perCPU+i), 18))
		}
	}
	runOnTwoCPUs(t, h.tc.PktstatIngress, frames)
	s, err := h.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Flows {
		if r.Packets != 1 {
			t.Fatalf("row %+v: %d packets, each flow sent one", r.Key, r.Packets)
		}
	}
	if len(s.Flows) != rows {
		t.Errorf("the table gave out %d rows, want exactly %d", len(s.Flows), rows)
	}
	if got, want := uint64(len(s.Flows))+s.UntrackedTotal().Packets, uint64(2*perCPU); got != want {
		t.Errorf("rows + untracked packets = %d, want the %d sent", got, want)
	}
}

// runOnTwoCPUs runs prog on frames[0] on CPU 0 and on frames[1] on CPU 1
// at once, each frame once, in order, with BPF_PROG_TEST_RUN.
func runOnTwoCPUs(t *testing.T, prog *ebpf.Program, frames [2][][]byte) {
	t.Helper()
	errs := make(chan error, len(frames))
	var start, wg sync.WaitGroup
	start.Add(len(frames))
	for cpu := range frames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // the thread ends with the goroutine
			var set unix.CPUSet
			set.Set(cpu)
			err := unix.SchedSetaffinity(0, &set)
			start.Done()
			if err != nil {
				errs <- fmt.Errorf("pin to CPU %d: %w", cpu, err)
				return
			}
			start.Wait()
			for _, f := range frames[cpu] {
				if _, err := prog.Run(&ebpf.RunOptions{Data: f}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestSameNewFlowsOnTwoCPUs: two CPUs bring the same 2,000 new flows into
// an array table at once, in the same order, without the flow cache, in
// 10 rounds. A CPU that meets a flow's slot while the other is still
// writing its row claims a second slot and row for it; the drain must
// still give one row per flow with both CPUs' packets.
func TestSameNewFlowsOnTwoCPUs(t *testing.T) {
	const flows, rounds = 2000, 10
	if runtime.NumCPU() < 2 {
		t.Skipf("needs two CPUs, this machine has %d", runtime.NumCPU())
	}
	h := loadHook(t, tcHook, testLoad{maxEntries: 4096, noCache: true, layout: flowtable.Array})
	var frames [][]byte
	for i := range flows {
		frames = append(frames, udpFrame(t, uint16(10000+i), 18))
	}
	for round := range rounds {
		runOnTwoCPUs(t, h.tc.PktstatIngress, [2][][]byte{frames, frames})
		s, err := h.tb.Drain(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Flows) != flows || s.UntrackedTotal().Packets != 0 {
			t.Fatalf("round %d: %d rows and %d untracked packets, want %d rows and none", round, len(s.Flows), s.UntrackedTotal().Packets, flows)
		}
		for _, r := range s.Flows {
			if want := (flow.Counters{Packets: 2, Bytes: 2 * uint64(len(frames[0]))}); r.Counters != want {
				t.Fatalf("round %d: row %+v: %+v, want %+v (one frame from each CPU)", round, r.Key, r.Counters, want)
			}
		}
	}
}

// TestFillFindsKernelRows: Go and the kernel find a key's row in the array
// table alike (flowtable's tableHash and probe path are table_hash's and
// array_add's). Flows that Go fills into the table, and then one frame of
// each that the program counts, give one row per flow with both counts;
// had the program looked elsewhere, it would have claimed a second row.
func TestFillFindsKernelRows(t *testing.T) {
	const flows = 40
	h := loadHook(t, tcHook, testLoad{maxEntries: 64, noCache: true, layout: flowtable.Array})
	keys := make([]bpfprog.FlowKey, flows)
	vals := make([]bpfprog.FlowVal, flows)
	for i := range keys {
		keys[i] = udpKey(uint16(30000+i), false)
		vals[i] = bpfprog.FlowVal{Packets: 1, Bytes: 1000}
	}
	if err := h.tb.Fill(keys, vals); err != nil {
		t.Fatal(err)
	}
	var size uint64
	for i := range keys {
		f := udpFrame(t, uint16(30000+i), 10)
		size = uint64(len(f))
		bpftest.Run(t, h.tc.PktstatIngress, f, nil)
	}
	s, err := h.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Flows) != flows {
		t.Fatalf("%d rows, want %d: %s", len(s.Flows), flows, rows(s))
	}
	for _, r := range s.Flows {
		if want := (flow.Counters{Packets: 2, Bytes: 1000 + size}); r.Counters != want {
			t.Errorf("flow %d: %+v, want %+v", r.Key.SrcPort, r.Counters, want)
		}
	}
}
