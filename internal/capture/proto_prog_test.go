package capture

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// activeRows reads and deletes the rows in the table the programs write
// now, without swapping tables: BPF_PROG_TEST_RUN runs a program in the
// calling thread, so nothing writes the table meanwhile, and no RCU grace
// period has to pass. Thousands of runs take seconds this way.
func activeRows(t testing.TB, tb *flowtable.Table[bpfprog.FlowKey]) []flow.Flow {
	t.Helper()
	rows, err := tb.TakeActive()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// runOne runs frame once through p and returns the one row it made; it
// fails unless the table held exactly that row, with one packet of the
// frame's length.
func runOne(t testing.TB, h hookUnderTest, p hookProg, frame []byte) flow.Flow {
	t.Helper()
	if ret := bpftest.Run(t, p.prog, frame, nil); ret != h.pass {
		t.Fatalf("%s returned %#x, want %#x", p.name, ret, h.pass)
	}
	rows := activeRows(t, h.tb)
	if len(rows) != 1 || rows[0].Counters != (flow.Counters{Packets: 1, Bytes: uint64(len(frame))}) {
		t.Fatalf("%s: one %d-byte frame made rows %+v, want one row of 1 packet, %d bytes", p.name, len(frame), rows, len(frame))
	}
	return rows[0]
}

// checkRow compares a row with the oracle's expectation, key and L7.
func checkRow(t testing.TB, what string, x bpftest.Expectation, p hookProg, row flow.Flow) bool {
	t.Helper()
	want := x
	want.Key.Dir = p.dir
	ok := true
	if !want.Match(row.Key) {
		t.Errorf("%s, %s: key %+v, gopacket reads %+v (loose: %v)", what, p.name, row.Key, want.Key, x.Loose)
		ok = false
	}
	if err := x.CheckL7(row.L7); err != nil {
		t.Errorf("%s, %s: %v", what, p.name, err)
		ok = false
	}
	return ok
}

// TestParserTruncations cuts every frame of the parser table at every
// length from the Ethernet header to its end, through every header
// boundary, and runs each cut through the TC and XDP programs, with the
// parser's fast path and without it (parserHooks): each must
// make one row, counted once, keyed as gopacket reads the same bytes. L7
// frames are cut at every length up to 32 bytes into their payload, where
// the detectors stop looking, and at their full length. The flow cache
// is the smallest (256 slots), which every check reads: what the cache
// holds does not depend on its size (TestFlowCacheEviction).
func TestParserTruncations(t *testing.T) {
	hooks := parserHooks(t, testLoad{maxEntries: 1024, cacheBits: 8})
	runs, frames := 0, 0
	for _, c := range bpftest.Cases(t) {
		upTo := len(c.Frame)
		if c.L7 != 0 {
			x, err := bpftest.Expect(c.Frame, bpftest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			upTo = min(len(c.Frame), len(c.Frame)-len(x.Payload)+32)
		}
		for n := 14; n <= len(c.Frame); n++ {
			if n > upTo && n < len(c.Frame) {
				continue
			}
			frame := c.Frame[:n]
			x, err := bpftest.Expect(frame, bpftest.Options{})
			if err != nil {
				t.Fatalf("%s cut to %d: oracle: %v", c.Name, n, err)
			}
			frames++
			for _, h := range hooks {
				if !h.accepts(frame) {
					continue
				}
				for _, p := range h.progs {
					runs++
					if !checkRow(t, c.Name+" cut to "+itoa(n), x, p, runOne(t, h, p, frame)) {
						t.FailNow()
					}
				}
			}
		}
	}
	t.Logf("%d cuts of %d frames, %d program runs, each one row agreeing with gopacket", frames, len(bpftest.Cases(t)), runs)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestParserJumbo runs jumbo frames: the XDP program sees the headers and
// the payload's start in the first of several buffers, and must still
// name the application protocol; TC takes what fits a test run's page.
func TestParserJumbo(t *testing.T) {
	hooks := loadHooks(t, testLoad{maxEntries: 64})
	get := bpftest.HTTPRequest(t)
	for _, size := range []int{1514, 3400, 9014, 16000} {
		for _, v6 := range []bool{false, true} {
			pad := bytes.Repeat([]byte{'a'}, size)
			frame := bpftest.L7Frame(t, append(append([]byte(nil), get...), pad...), false, v6, 43000)[:size]
			x, err := bpftest.Expect(frame, bpftest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hooks {
				if !h.accepts(frame) {
					continue
				}
				for _, p := range h.progs {
					row := runOne(t, h, p, frame)
					checkRow(t, "jumbo", x, p, row)
					if row.L7 != flow.L7HTTP {
						t.Errorf("%d-byte frame, %s: l7 %v, want HTTP", size, p.name, row.L7)
					}
				}
			}
		}
	}
}

// frameSeq runs frames of one flow through prog in order and returns the
// one row they made, with the table's L7 merge and carry-over applied
// (a real drain).
func frameSeq(t *testing.T, h hookUnderTest, p hookProg, frames ...[]byte) flow.Flow {
	t.Helper()
	drainAll(t, h.tb)
	for _, f := range frames {
		bpftest.Run(t, p.prog, f, nil)
	}
	snap, err := h.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Flows) != 1 || snap.Flows[0].Packets != uint64(len(frames)) {
		t.Fatalf("%d frames of one flow made rows %+v", len(frames), snap.Flows)
	}
	return snap.Flows[0]
}

// tcpSeg is a segment of one TCP flow (40050 -> 5201), with flags and
// payload.
func tcpSeg(t *testing.T, syn bool, payload []byte) []byte {
	t.Helper()
	return bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolTCP),
		&layers.TCP{SrcPort: 40050, DstPort: 5201, SYN: syn, ACK: !syn, PSH: len(payload) > 0, Window: 502},
		gopacket.Payload(payload))
}

// TestL7FirstPayload: detection runs on the first packet that carries
// payload, once: packets without payload leave the verdict pending (for at
// most 16 packets), and a first payload that names nothing settles it.
func TestL7FirstPayload(t *testing.T) {
	get := bpftest.HTTPRequest(t)
	syn, ack, data := tcpSeg(t, true, nil), tcpSeg(t, false, nil), tcpSeg(t, false, get)
	mid := tcpSeg(t, false, bpftest.Payload(500))
	repeat := func(f []byte, n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = f
		}
		return out
	}
	for _, h := range loadHooks(t, testLoad{maxEntries: 64}) {
		for _, p := range h.progs {
			for _, tc := range []struct {
				name   string
				frames [][]byte
				want   flow.L7
			}{
				{"syn only: pending", [][]byte{syn}, flow.L7Unchecked},
				{"syn, ack, request", [][]byte{syn, ack, data}, flow.L7HTTP},
				{"request, then anything", [][]byte{data, mid, mid}, flow.L7HTTP},
				{"first payload names nothing: not retried", [][]byte{syn, mid, data}, flow.L7Unknown},
				{"15 empty packets, then the request", append(repeat(ack, 15), data), flow.L7HTTP},
				{"16 empty packets: given up", append(repeat(ack, 16), data), flow.L7Unknown},
			} {
				if got := frameSeq(t, h, p, tc.frames...).L7; got != tc.want {
					t.Errorf("%s, %s: l7 %v (%d), want %v (%d)", p.name, tc.name, got, got, tc.want, tc.want)
				}
			}
		}
	}
}

// onCPU runs fn on an OS thread pinned to cpu, where BPF_PROG_TEST_RUN
// runs the program: its writes land in that CPU's slot of a per-CPU map.
func onCPU(t *testing.T, cpu int, fn func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("pin to CPU %d: %v", cpu, err)
	}
}

// TestL7CPUs: a flow's packets on two CPUs, each CPU's flow cache
// detecting on its own first payload. A CPU that sees only the middle of
// the stream finds nothing; the row still names the protocol that the
// other CPU found, in either order and in each layout.
func TestL7CPUs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("skipped: needs 2 CPUs to put one flow's packets on two CPUs")
	}
	hello := bpftest.L7Frame(t, l7Bytes(t, "tls-client-hello"), false, false, 40060)
	mid := bpftest.L7Frame(t, bpftest.Payload(300), false, false, 40060)
	for _, l := range layouts {
		t.Run(l.String(), func(t *testing.T) { testL7CPUs(t, l, [][2][]byte{{hello, mid}, {mid, hello}}) })
	}
}

func testL7CPUs(t *testing.T, layout flowtable.Layout, orders [][2][]byte) {
	for _, h := range loadHooks(t, testLoad{maxEntries: 64, layout: layout}) {
		p := h.progs[0]
		for _, order := range orders {
			drainAll(t, h.tb)
			onCPU(t, 0, func() { bpftest.Run(t, p.prog, order[0], nil) })
			onCPU(t, 1, func() { bpftest.Run(t, p.prog, order[1], nil) })
			snap, err := h.tb.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := snap.Flows[0]; got.L7 != flow.L7TLS || got.Packets != 2 {
				t.Errorf("%s: merged row %+v, want TLS over 2 packets", p.name, got)
			}
		}
	}
}

// TestL7BothDirections: a PostgreSQL server answers an SSL request with a
// single byte, which names nothing; the drain gives its row the label of
// the client's row, the reverse flow. A TLS server's hello is recognised
// on its own.
func TestL7BothDirections(t *testing.T) {
	h := loadHooks(t, testLoad{maxEntries: 64})[0] // TC: both directions through one interface
	in, out := h.progs[0], h.progs[1]
	pkts := func(sport, dport uint16, payload []byte) []byte {
		return bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4),
			&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: []byte{198, 18, 0, 1}, DstIP: []byte{198, 19, 0, 2}},
			&layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), ACK: true, PSH: true}, gopacket.Payload(payload))
	}
	reply := func(sport, dport uint16, payload []byte) []byte {
		return bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4),
			&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: []byte{198, 19, 0, 2}, DstIP: []byte{198, 18, 0, 1}},
			&layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), ACK: true, PSH: true}, gopacket.Payload(payload))
	}
	shello := l7Bytes(t, "tls-server-hello")
	drainAll(t, h.tb)
	bpftest.Run(t, out.prog, pkts(40070, 15432, []byte{0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F}), nil)
	bpftest.Run(t, in.prog, reply(15432, 40070, []byte{'S'}), nil)
	bpftest.Run(t, in.prog, reply(8443, 40071, shello), nil)
	snap, err := h.tb.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint16]flow.L7{40070: flow.L7Postgres, 15432: flow.L7Postgres, 8443: flow.L7TLS}
	if len(snap.Flows) != len(want) {
		t.Fatalf("rows %+v, want %d", snap.Flows, len(want))
	}
	for _, r := range snap.Flows {
		if r.L7 != want[r.SrcPort] {
			t.Errorf("row from port %d (%v): l7 %v, want %v", r.SrcPort, r.Dir, r.L7, want[r.SrcPort])
		}
	}
}

// TestL7AcrossDrains: a drain empties the kernel's table, so the next
// packet of a flow starts a fresh entry in the middle of its stream. The
// flow keeps the protocol it had in the previous drain; a flow that was
// absent from a whole drain is forgotten.
func TestL7AcrossDrains(t *testing.T) {
	for _, h := range loadHooks(t, testLoad{maxEntries: 64}) {
		p := h.progs[0]
		hello := bpftest.L7Frame(t, bpftest.DNSQuery(t), true, true, 40080)
		mid := bpftest.L7Frame(t, bpftest.Payload(64), true, true, 40080)
		drainAll(t, h.tb)
		step := func(frame []byte) flow.L7 {
			if frame != nil {
				bpftest.Run(t, p.prog, frame, nil)
			}
			snap, err := h.tb.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.Flows) == 0 {
				return 0xFF
			}
			return snap.Flows[0].L7
		}
		got := []flow.L7{step(hello), step(mid), step(mid), step(nil), step(mid)}
		want := []flow.L7{flow.L7DNS, flow.L7DNS, flow.L7DNS, 0xFF, flow.L7Unknown}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: drains gave l7 %v, want %v", p.name, got, want)
				break
			}
		}
	}
}

// TestNoARP: with --no-arp, ARP frames count under their EtherType alone,
// every request and reply of a VLAN and direction in one row.
func TestNoARP(t *testing.T) {
	var arps [][]byte
	for _, c := range bpftest.Cases(t) {
		if c.Name == "arp" || c.Name == "arp-reply" || c.Name == "arp-hlen8" {
			arps = append(arps, c.Frame)
		}
	}
	if len(arps) != 3 {
		t.Fatalf("found %d ARP cases, want 3", len(arps))
	}
	for _, h := range loadHooks(t, testLoad{maxEntries: 64, noARP: true}) {
		for _, p := range h.progs {
			x, err := bpftest.Expect(arps[0], bpftest.Options{NoARP: true})
			if err != nil {
				t.Fatal(err)
			}
			want := x.Key
			want.Dir = p.dir
			var total uint64
			for _, f := range arps {
				bpftest.Run(t, p.prog, f, nil)
				total += uint64(len(f))
				if y, _ := bpftest.Expect(f, bpftest.Options{NoARP: true}); y.Key != x.Key {
					t.Fatalf("oracle: ARP frames differ under --no-arp: %+v, %+v", y.Key, x.Key)
				}
			}
			rows := activeRows(t, h.tb)
			if len(rows) != 1 || rows[0].Key != want || rows[0].Counters != (flow.Counters{Packets: 3, Bytes: total}) {
				t.Errorf("%s: rows %+v, want one row %+v of 3 packets, %d bytes", p.name, rows, want, total)
			}
			if _, ok := rows[0].ARPOp(); ok {
				t.Errorf("%s: the --no-arp row has an opcode", p.name)
			}
		}
	}
}

// TestL7MatchBPF checks flow.L7 against enum l7_proto, as bpf2go generated
// it, and that every protocol has a name.
func TestL7MatchBPF(t *testing.T) {
	pairs := []struct {
		goVal flow.L7
		bpf   bpfprog.TCL7Proto
	}{
		{flow.L7Unchecked, bpfprog.TCL7ProtoL7UNCHECKED}, {flow.L7Unknown, bpfprog.TCL7ProtoL7NONE},
		{flow.L7HTTP, bpfprog.TCL7ProtoL7HTTP}, {flow.L7HTTP2, bpfprog.TCL7ProtoL7HTTP2},
		{flow.L7TLS, bpfprog.TCL7ProtoL7TLS}, {flow.L7DTLS, bpfprog.TCL7ProtoL7DTLS},
		{flow.L7QUIC, bpfprog.TCL7ProtoL7QUIC}, {flow.L7SSH, bpfprog.TCL7ProtoL7SSH},
		{flow.L7RDP, bpfprog.TCL7ProtoL7RDP}, {flow.L7Postgres, bpfprog.TCL7ProtoL7POSTGRES},
		{flow.L7MQTT, bpfprog.TCL7ProtoL7MQTT}, {flow.L7WireGuard, bpfprog.TCL7ProtoL7WIREGUARD},
		{flow.L7Memcached, bpfprog.TCL7ProtoL7MEMCACHED}, {flow.L7DNS, bpfprog.TCL7ProtoL7DNS},
	}
	for _, p := range pairs {
		if uint8(p.goVal) != uint8(p.bpf) {
			t.Errorf("flow.L7 %v = %d, the eBPF program's is %d", p.goVal, p.goVal, p.bpf)
		}
	}
	if n := len(flow.L7s()) + 2; n != int(bpfprog.TCL7ProtoL7MAX) || n != len(pairs) {
		t.Errorf("flow knows %d values, the eBPF program %d, this test %d", n, bpfprog.TCL7ProtoL7MAX, len(pairs))
	}
	for _, l := range flow.L7s() {
		if l.String() == "" {
			t.Errorf("L7 %d has no name", l)
		}
	}
}

// l7Bytes returns the L7 payload of that name.
func l7Bytes(t *testing.T, name string) []byte {
	t.Helper()
	for _, p := range bpftest.L7Payloads(t) {
		if p.Name == name {
			return p.Bytes
		}
	}
	t.Fatalf("no L7 payload %q", name)
	return nil
}
