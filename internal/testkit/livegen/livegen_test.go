package livegen_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/livegen"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

const basePort = 1000

// udpFrame builds an IPv4 UDP frame of exactly size bytes from A to B with
// a zero payload, as the generator requires.
func udpFrame(t *testing.T, p *testnet.Pair, sport uint16, size int) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: p.A.MAC, DstMAC: p.B.MAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: p.A.IPv4.AsSlice(), DstIP: p.B.IPv4.AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 9}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	payload := gopacket.Payload(make([]byte, size-14-20-8))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, ip, udp, payload); err != nil {
		t.Fatal(err)
	}
	if len(buf.Bytes()) != size {
		t.Fatalf("built a %d-byte frame, want %d", len(buf.Bytes()), size)
	}
	return buf.Bytes()
}

// receiver is a native XDP program on B that counts, per UDP source port
// basePort+i, the IPv4 frames and bytes it receives: the independent check
// of what the generator claims to have sent. It drops what it sees.
type receiver struct {
	counts *ebpf.Map // per flow i: {frames, bytes}
	link   link.Link
}

func newReceiver(t *testing.T, e testnet.End, flows int) *receiver {
	t.Helper()
	r := &receiver{}
	var err error
	r.counts, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: uint32(flows)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.counts.Close() })
	const ipv4UDPHdrs = 14 + 20 + 8
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R7, asm.R3),
		asm.Sub.Reg(asm.R7, asm.R2), // frame length
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ipv4UDPHdrs),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		// Only the generator's frames: IPv4, UDP, source port in range.
		// The namespaces' own neighbour discovery stays out of the count.
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R5, 0x0008, "out"), // EtherType 0x0800, read little-endian
		asm.LoadMem(asm.R5, asm.R2, 14+9, asm.Byte),
		asm.JNE.Imm(asm.R5, 17, "out"),
		asm.LoadMem(asm.R5, asm.R2, 14+20, asm.Half),
		asm.HostTo(asm.BE, asm.R5, asm.Half),
		asm.Sub.Imm(asm.R5, basePort),
		asm.JGE.Imm(asm.R5, int32(flows), "out"),
		asm.StoreMem(asm.RFP, -4, asm.R5, asm.Word),
		asm.LoadMapPtr(asm.R1, r.counts.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Add.Imm(asm.R0, 8),
		asm.StoreXAdd(asm.R0, asm.R7, asm.DWord),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("out"), // XDP_DROP
		asm.Return(),
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: insns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	err = e.Do(func() (err error) {
		r.link, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: e.Index, Flags: link.XDPDriverMode})
		return err
	})
	if err != nil {
		t.Fatalf("attach the receiving XDP program in native mode: %v", err)
	}
	t.Cleanup(func() { r.link.Close() })
	return r
}

func (r *receiver) reset(t *testing.T, flows int) {
	t.Helper()
	for i := range flows {
		if err := r.counts.Put(uint32(i), [2]uint64{}); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *receiver) read(t *testing.T, i int) (frames, bytes uint64) {
	t.Helper()
	var v [2]uint64
	if err := r.counts.Lookup(uint32(i), &v); err != nil {
		t.Fatal(err)
	}
	return v[0], v[1]
}

// TestSendDeliversExactly sends 300 flows of different sizes and counts
// and checks every flow against an independent counter on the receiving
// end: what the generator says it sent arrived, frame for frame and byte
// for byte. Three distinct counts take three kernel calls.
func TestSendDeliversExactly(t *testing.T) {
	p := testnet.NewPair(t)
	const flows = 300
	rx := newReceiver(t, p.B, flows)
	g := newGenerator(t, p, flows)
	if g.Ifindex() != p.A.Index {
		t.Fatalf("generator resolved %s to ifindex %d, want %d", p.A.Link, g.Ifindex(), p.A.Index)
	}

	frames := make([]livegen.Frame, flows)
	var want uint64
	for i := range frames {
		frames[i] = livegen.Frame{Data: udpFrame(t, p, uint16(basePort+i), 60+4*i), Count: uint32(1000 + 250*(i%3))}
		want += uint64(frames[i].Count)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// On a loaded machine B's ring can overflow; then nobody knows what
	// arrived, and the run starts over from zeroed counters.
	var rep livegen.Report
	for attempt := 1; ; attempt++ {
		var err error
		rep, err = g.Send(ctx, frames)
		if err == nil {
			break
		}
		if !errors.Is(err, livegen.ErrNotDelivered) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; starting over", attempt, err)
		rx.reset(t, flows)
	}
	t.Logf("%d frames over %d flows in %d calls, %v: %.2f Mpps overall, %.2f Mpps while the kernel sent", rep.Runs, flows, rep.Calls,
		rep.Elapsed.Round(time.Millisecond), rep.Rate()/1e6, rep.KernelRate()/1e6)
	if rep.Runs != want || rep.Delivered != want || rep.Refused != 0 {
		t.Fatalf("report %+v, want %d frames run and delivered", rep, want)
	}
	if rep.Calls < 3 {
		t.Errorf("%d kernel calls for three distinct counts, want at least 3", rep.Calls)
	}
	// Delivered means queued on B's receive ring; the receiver's XDP
	// program runs when the ring is processed, which may come later.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var got uint64
		for i := range frames {
			n, _ := rx.read(t, i)
			got += n
		}
		if got >= want {
			break
		}
	}
	for i, f := range frames {
		gotF, gotB := rx.read(t, i)
		if gotF != uint64(f.Count) || gotB != uint64(f.Count)*uint64(len(f.Data)) {
			t.Errorf("flow %d (%d bytes): receiver counted %d frames, %d bytes; sent %d frames", i, len(f.Data), gotF, gotB, f.Count)
		}
	}
}

// TestSendRefusesWhatItCannotSendExactly: frames the generator would not
// send as given are refused before anything is sent.
func TestSendRefusesWhatItCannotSendExactly(t *testing.T) {
	p := testnet.NewPair(t)
	g := newGenerator(t, p, 2)
	good := udpFrame(t, p, basePort, 200)
	dirty := append([]byte(nil), good...)
	dirty[livegen.HeaderRoom+1] = 1
	for name, frames := range map[string][]livegen.Frame{
		"payload past HeaderRoom":  {{Data: dirty, Count: 10}},
		"too short":                {{Data: good[:13], Count: 10}},
		"too long":                 {{Data: make([]byte, livegen.MaxFrameLen+1), Count: 10}},
		"more flows than maxFlows": {{Data: good, Count: 1}, {Data: good, Count: 1}, {Data: good, Count: 1}},
	} {
		if _, err := g.Send(context.Background(), frames); err == nil {
			t.Errorf("%s: Send accepted it", name)
		}
	}
}

// TestSendFailsWithoutReceiver: with no NAPI on the peer, the veth refuses
// every frame, and Send says so instead of reporting frames as sent.
func TestSendFailsWithoutReceiver(t *testing.T) {
	p := testnet.NewPair(t)
	g := newGenerator(t, p, 1)
	rep, err := g.Send(context.Background(), []livegen.Frame{{Data: udpFrame(t, p, basePort, 60), Count: 1000}})
	if !errors.Is(err, livegen.ErrNotDelivered) {
		t.Fatalf("Send with nothing to receive: %v, want ErrNotDelivered; %+v", err, rep)
	}
	if rep.Runs != 1000 || rep.Delivered != 0 {
		t.Errorf("report %+v, want 1000 runs and nothing delivered", rep)
	}
	t.Logf("as expected: %v", err)
}

// TestNewRejectsNonVeth: the generator's ground truth comes from veth
// counters, so an interface without them is refused up front.
func TestNewRejectsNonVeth(t *testing.T) {
	p := testnet.NewPair(t)
	if _, err := livegen.New("lo", 1, p.A.Do); err == nil {
		t.Fatal("New accepted lo, which has no XDP transmit counters")
	}
	if _, err := livegen.New("nosuch0", 1, p.A.Do); err == nil {
		t.Fatal("New accepted an interface that does not exist")
	}
}

// newGenerator makes a generator on A's veth, closed when the test ends.
// The test is skipped, with the kernel's answer, where the kernel refuses
// live-frames mode.
func newGenerator(t *testing.T, p *testnet.Pair, maxFlows int) *livegen.Generator {
	t.Helper()
	g, err := livegen.New(p.A.Link, maxFlows, p.A.Do)
	if errors.Is(err, livegen.ErrUnsupported) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}
