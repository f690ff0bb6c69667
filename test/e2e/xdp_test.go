package e2e

// End-to-end tests of XDP mode (-x): exact counts at millions of packets
// per second and for multi-buffer jumbo frames, what a run leaves on the
// interface, how it treats another tool's XDP program, and its errors.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/pktstat-bpf/pktstat-bpf/internal/capture"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/livegen"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// runToolOnce runs the binary to completion in e's namespace and returns
// its exit code and output.
func runToolOnce(t *testing.T, e testnet.End, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	r := harness.RunBinary(t, e.Command(bin, args...), nil)
	return r.Code, r.Stdout, r.Stderr
}

// ipIn runs ip with args inside e's namespace.
func ipIn(t *testing.T, e testnet.End, args ...string) {
	t.Helper()
	if out, err := e.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("in %s: ip %s: %v: %s", e.NS, strings.Join(args, " "), err, out)
	}
}

// checkXDPStartLog checks the start-up log: the mode in use and the
// warning that XDP sees no egress.
func checkXDPStartLog(t *testing.T, tl *harness.Tool, mode string) {
	t.Helper()
	log := tl.Stderr()
	if !strings.Contains(log, "mode=xdp/"+mode) {
		t.Fatalf("the start-up log does not say mode=xdp/%s:\n%s", mode, log)
	}
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "XDP sees only ingress") {
		t.Fatalf("the start-up log does not warn that XDP sees no egress:\n%s", log)
	}
}

// TestE2EXDPHighRate injects more than 5 million frames over 4096 flows
// into A's end of the veth at the generator's full rate, with the tool in
// native XDP mode on B's end, and compares every flow's row with what the
// veth delivered to B's receive ring: packets and bytes, exactly.
//
// The frames carry a destination MAC that is not B's, so that after XDP
// passes them the stack drops them at once (PACKET_OTHERHOST): the
// generator's rate is then bounded by XDP and skb allocation, not by IP.
// The same frames are first sent into an empty XDP_PASS program (the
// ceiling with a passing program) and an XDP_DROP one (the generator's
// own), and the rates are logged beside the tool's.
func TestE2EXDPHighRate(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)

	type flowSpec struct {
		proto      string
		src, dst   netip.Addr
		sport, dpo uint16
	}
	const nFlows = 4096
	var (
		frames []livegen.Frame
		specs  []flowSpec
		total  uint64
	)
	for i := range nFlows {
		var (
			ip    gopacket.SerializableLayer
			l4    gopacket.SerializableLayer
			fs    flowSpec
			proto = layers.IPProtocolUDP
		)
		if i%2 == 1 {
			proto = layers.IPProtocolTCP
		}
		if i%4 < 2 {
			v4 := bpftest.IPv4(proto)
			v4.SrcIP = net.IP{198, 18, byte(1 + i/256), byte(i)}
			v4.DstIP = p.B.IPv4.AsSlice()
			ip = v4
			fs.src, fs.dst = netip.AddrFrom4([4]byte(v4.SrcIP)), p.B.IPv4
		} else {
			v6 := bpftest.IPv6(proto)
			src := netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, byte(i >> 8), byte(i)})
			v6.SrcIP, v6.DstIP = src.AsSlice(), p.B.IPv6.AsSlice()
			ip = v6
			fs.src, fs.dst = src, p.B.IPv6
		}
		fs.sport, fs.dpo = uint16(20000+i), uint16(5000+i%7)
		if proto == layers.IPProtocolTCP {
			tcp := bpftest.TCP()
			tcp.SrcPort, tcp.DstPort = layers.TCPPort(fs.sport), layers.TCPPort(fs.dpo)
			l4, fs.proto = tcp, "TCP"
		} else {
			udp := bpftest.UDP()
			udp.SrcPort, udp.DstPort = layers.UDPPort(fs.sport), layers.UDPPort(fs.dpo)
			l4, fs.proto = udp, "UDP"
		}
		// The generator sends payload as zeros; sizes run from minimal to
		// full, so that bytes tell flows apart too.
		data := bpftest.Frame(t, bpftest.Eth(ethTypeOf(ip)), ip, l4, gopacket.Payload(make([]byte, (i*37)%1400)))
		// Four distinct counts: the generator makes one kernel call each.
		count := uint32(1220 + 3*(i%4))
		frames = append(frames, livegen.Frame{Data: data, Count: count})
		specs = append(specs, fs)
		total += uint64(count)
	}
	if total < 5_000_000 {
		t.Fatalf("the flows add up to %d frames, want at least 5 million", total)
	}

	gen, err := livegen.New(p.A.Link, nFlows, p.A.Do)
	if errors.Is(err, livegen.ErrUnsupported) {
		t.Skipf("skipped: the traffic source needs live-frames mode: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()

	// The rate the same frames reach without the tool, in the same run:
	// into an XDP program that passes them, after which B's stack builds an
	// skb for each as it does with the tool, and into one that drops them,
	// which is the generator's own ceiling.
	for _, base := range []struct {
		name string
		ret  int32
	}{{"an empty XDP_PASS program", 2}, {"an XDP_DROP program", 1}} {
		prog := bpftest.EmptyProgram(t, ebpf.XDP, base.ret)
		var l link.Link
		if err := p.B.Do(func() (err error) {
			l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: p.B.Index, Flags: link.XDPDriverMode})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		rep, err := gen.Send(ctx, frames)
		cancel()
		l.Close()
		// A baseline that lost frames on a busy machine is still a rate.
		if err != nil && !errors.Is(err, livegen.ErrNotDelivered) {
			t.Fatal(err)
		}
		t.Logf("baseline, into %s: %.2f Mpps while the kernel sent", base.name, rep.KernelRate()/1e6)
	}

	// Send fails with ErrNotDelivered unless the veth's counters show every
	// frame delivered to B's receive ring; then each flow's Count is exact
	// ground truth. When a loaded machine lets B's receive ring overflow,
	// the truth is unknown and the measurement starts over with a new run.
	var (
		tl  *harness.Tool
		rep livegen.Report
	)
	for attempt := 1; ; attempt++ {
		tl = harness.StartCapture(t, p.B, bin, "-x", "--xdp_mode", "native")
		checkXDPStartLog(t, tl, "native")
		ip0 := harness.IPReceives(t, p.B)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		rep, err = gen.Send(ctx, frames)
		cancel()
		t.Logf("attempt %d: offered %d frames over %d flows in %v (%d kernel calls): %.2f Mpps overall, %.2f Mpps while the kernel sent; the veth delivered %d, refused %d",
			attempt, rep.Runs, nFlows, rep.Elapsed.Round(time.Millisecond), rep.Calls, rep.Rate()/1e6, rep.KernelRate()/1e6, rep.Delivered, rep.Refused)
		if err == nil {
			// Delivered means queued on B's receive ring; B's XDP runs
			// when the ring is processed, before B's IP layer.
			harness.Settle(t, p.B, ip0, total)
			break
		}
		if !errors.Is(err, livegen.ErrNotDelivered) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; starting over", attempt, err)
		harness.StopCapture(t, tl, syscall.SIGINT)
	}
	if rep.Runs != total || rep.Delivered != total {
		t.Fatalf("generator: %d offered and %d delivered, want %d", rep.Runs, rep.Delivered, total)
	}

	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	byFlow := map[flowSpec]harness.Row{}
	for _, r := range rows {
		src, err1 := netip.ParseAddr(r.SrcIP)
		dst, err2 := netip.ParseAddr(r.DstIP)
		if err1 != nil || err2 != nil {
			continue
		}
		k := flowSpec{r.Proto, src, dst, r.SrcPort, r.DstPort}
		if _, dup := byFlow[k]; dup {
			t.Fatalf("two rows for %+v", k)
		}
		byFlow[k] = r
	}
	var bad int
	var gotPackets, gotBytes, wantBytes uint64
	for i, fs := range specs {
		wantP := uint64(frames[i].Count)
		wantB := wantP * uint64(len(frames[i].Data))
		wantBytes += wantB
		r, ok := byFlow[fs]
		gotPackets += r.Packets
		gotBytes += r.Bytes
		if !ok || r.Packets != wantP || r.Bytes != wantB {
			if bad++; bad <= 10 {
				t.Errorf("flow %d %+v: report %d packets / %d bytes (row found %v), delivered %d packets / %d bytes", i, fs, r.Packets, r.Bytes, ok, wantP, wantB)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d flows differ from ground truth", bad, nFlows)
	}
	t.Logf("all %d flows exact: %d packets / %d bytes in the report = %d packets / %d bytes delivered", nFlows, gotPackets, gotBytes, rep.Delivered, wantBytes)
	if rep.KernelRate() < 1e6 {
		t.Errorf("offered %.2f Mpps while sending: the generator is expected to reach several Mpps here", rep.KernelRate()/1e6)
	}
}

func ethTypeOf(ip gopacket.SerializableLayer) layers.EthernetType {
	if _, ok := ip.(*layers.IPv6); ok {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

// TestE2EXDPJumbo sends jumbo UDP datagrams across a veth with a 9000-byte
// MTU to the tool in native XDP mode. Such frames span several buffers
// (multi-buffer XDP); every one must be counted with its full length. The
// receiver got every datagram, so every frame crossed the hook.
func TestE2EXDPJumbo(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	for _, e := range []testnet.End{p.A, p.B} {
		ipIn(t, e, "link", "set", "dev", e.Link, "mtu", "9000")
	}
	tl := harness.StartCapture(t, p.B, bin, "-x", "--xdp_mode", "native")
	checkXDPStartLog(t, tl, "native")
	if !strings.Contains(tl.Stderr(), "multi_buffer=true") {
		t.Fatalf("the program does not take multi-buffer frames on this kernel:\n%s", tl.Stderr())
	}

	const n = 500
	type jumbo struct {
		name    string
		src     netip.AddrPort
		dst     netip.AddrPort
		l3Len   int
		payload int
	}
	flows := []jumbo{
		{"IPv4 8000-byte datagrams", netip.AddrPortFrom(p.A.IPv4, 41700), netip.AddrPortFrom(p.B.IPv4, 5700), harness.IPv4Len, 8000},
		{"IPv6 8900-byte datagrams", netip.AddrPortFrom(p.A.IPv6, 41701), netip.AddrPortFrom(p.B.IPv6, 5701), harness.IPv6Len, 8900},
	}
	for _, f := range flows {
		payload := bytes.Repeat([]byte{0x6a}, f.payload)
		harness.SendUDPFlow(t, harness.NewUDPFlow(f.name, p.A, p.B, f.src, f.dst), payload, n)
	}
	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	for _, f := range flows {
		frame := uint64(harness.EthLen + f.l3Len + harness.UDPLen + f.payload)
		row := harness.OneRow(t, rows, "UDP", f.src.Addr(), f.dst.Addr(), f.src.Port(), f.dst.Port())
		harness.WantCounts(t, f.name+fmt.Sprintf(" (%d-byte frames)", frame), row, n, n*frame)
	}
}

// checkMultiBuffer checks what the start-up log says of the program: the
// multi-buffer one, or the single-buffer one.
func checkMultiBuffer(t *testing.T, tl *harness.Tool, want bool) {
	t.Helper()
	if say := fmt.Sprintf("multi_buffer=%v", want); !strings.Contains(tl.Stderr(), say) {
		t.Fatalf("the start-up log does not say %s:\n%s", say, tl.Stderr())
	}
}

// TestE2EXDPSingleBufferMTU checks why the single-buffer program is safe
// in native mode: while it is attached, the kernel refuses an MTU that
// would bring multi-buffer frames to it, so it never reads a frame's
// length from its first buffer alone. Once the tool has exited, the same
// MTU is accepted.
func TestE2EXDPSingleBufferMTU(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	tl := harness.StartCapture(t, p.B, bin, "-x", "--xdp_mode", "native")
	checkXDPStartLog(t, tl, "native")
	checkMultiBuffer(t, tl, false)
	// B's XDP program receives what A's veth sends, so A's MTU is the one
	// that bounds the frames.
	out, err := p.A.Command("ip", "link", "set", "dev", p.A.Link, "mtu", "9000").CombinedOutput()
	if err == nil {
		t.Fatalf("A's veth took a 9000-byte MTU while a single-buffer XDP program ran on its peer")
	}
	t.Logf("while the tool ran, ip link set mtu 9000 was refused: %s", bytes.TrimSpace(out))
	harness.StopCapture(t, tl, syscall.SIGINT)
	ipIn(t, p.A, "link", "set", "dev", p.A.Link, "mtu", "9000")
}

// TestE2EXDPModes counts datagrams in each XDP attach mode on a veth, and
// checks that egress is not counted, as the start-up log warns.
func TestE2EXDPModes(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	multiBuffer, err := capture.ProbeXDPFrags()
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	payload := bytes.Repeat([]byte{0x33}, 222)
	frame := uint64(harness.EthLen + harness.IPv4Len + harness.UDPLen + len(payload))
	for i, m := range []struct{ flag, used string }{
		{"auto", "native"}, {"best", "native"}, {"native", "native"}, {"driver", "native"}, {"generic", "generic"},
	} {
		t.Run(m.flag, func(t *testing.T) {
			tl := harness.StartCapture(t, p.B, bin, "-x", "--xdp_mode", m.flag)
			checkXDPStartLog(t, tl, m.used)
			if warned := strings.Contains(tl.Stderr(), "generic XDP runs after"); warned != (m.used == "generic") {
				t.Fatalf("generic-mode warning present: %v, want %v:\n%s", warned, m.used == "generic", tl.Stderr())
			}
			if a := harness.XDPOn(t, p.B, p.B.Link); a.Name != harness.XDPProgName || a.Mode != m.used {
				t.Fatalf("while running, %s has %v; want %s in %s mode", p.B.Link, a, harness.XDPProgName, m.used)
			}
			// Native mode at a 1500-byte MTU runs the single-buffer program;
			// generic mode the multi-buffer one, where the kernel has it.
			checkMultiBuffer(t, tl, m.used == "generic" && multiBuffer)
			in := harness.NewUDPFlow("A->B (ingress)", p.A, p.B, netip.AddrPortFrom(p.A.IPv4, uint16(41800+i)), netip.AddrPortFrom(p.B.IPv4, 5800))
			out := harness.NewUDPFlow("B->A (egress)", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, uint16(41810+i)), netip.AddrPortFrom(p.A.IPv4, 5810))
			harness.SendUDPFlow(t, in, payload, n)
			harness.SendUDPFlow(t, out, payload, n)
			rows := harness.StopCapture(t, tl, syscall.SIGINT)
			harness.WantCounts(t, in.Name, harness.OneRow(t, rows, "UDP", in.Src.Addr(), in.Dst.Addr(), in.Src.Port(), in.Dst.Port()), n, n*frame)
			if eg := harness.Find(rows, "UDP", out.Src.Addr().String(), out.Dst.Addr().String(), out.Src.Port(), out.Dst.Port()); len(eg) != 0 {
				t.Fatalf("egress datagrams were counted in XDP mode: %+v", eg)
			}
			harness.WaitNoXDP(t, p.B, p.B.Link)
		})
	}
}

// foreignXDP is another tool's XDP program: it counts the frames it sees
// and passes them on.
type foreignXDP struct{ *harness.CounterProg }

func newForeignXDP(t *testing.T) *foreignXDP {
	t.Helper()
	const xdpPass = 2
	return &foreignXDP{harness.LoadCounter(t, "foreign_xdp", ebpf.XDP, xdpPass, 1, func(inc func(int32, string) asm.Instructions) asm.Instructions {
		return inc(0, "")
	})}
}

func (f *foreignXDP) count(t *testing.T) uint64 {
	t.Helper()
	return f.Count(t, 0)
}

// attachNetlink attaches f the way ip link set ... xdp does: through
// netlink, owned by the interface rather than by a file descriptor.
func (f *foreignXDP) attachNetlink(t *testing.T, e testnet.End, ifname string, flags uint32) {
	t.Helper()
	err := e.Do(func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		return netlink.LinkSetXdpFdWithFlags(l, f.Prog.FD(), int(flags))
	})
	if err != nil {
		t.Fatalf("attach foreign XDP program to %s through netlink: %v", ifname, err)
	}
}

// attachLink attaches f through a BPF link, held by the test process.
func (f *foreignXDP) attachLink(t *testing.T, e testnet.End, ifname string, flags link.XDPAttachFlags) {
	t.Helper()
	var l link.Link
	err := e.Do(func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		l, err = link.AttachXDP(link.XDPOptions{Program: f.Prog, Interface: ifc.Index, Flags: flags})
		return err
	})
	if err != nil {
		t.Fatalf("attach foreign XDP program to %s through a BPF link: %v", ifname, err)
	}
	t.Cleanup(func() { l.Close() })
}

// TestE2EXDPNothingLeft: however the run ends (timeout, SIGTERM, SIGKILL),
// nothing of ours stays attached, and another tool's XDP program on a
// second interface of the same namespace, attached before the run, is
// still attached and still counting after it.
func TestE2EXDPNothingLeft(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	other, otherPeer := "xf"+p.B.Link[2:], "xg"+p.B.Link[2:]
	ipIn(t, p.B, "link", "add", other, "type", "veth", "peer", "name", otherPeer)
	// No IPv6 on the second pair: router solicitations and MLD reports
	// would reach the foreign program beside the one frame the test sends.
	for _, ifname := range []string{other, otherPeer} {
		p.B.Sysctl(t, "net.ipv6.conf."+ifname+".disable_ipv6=1")
	}
	ipIn(t, p.B, "link", "set", other, "up")
	ipIn(t, p.B, "link", "set", otherPeer, "up")
	foreign := newForeignXDP(t)
	foreign.attachNetlink(t, p.B, other, nl.XDP_FLAGS_DRV_MODE)
	before := harness.XDPOn(t, p.B, other)
	if before.ID != bpftest.ProgramID(t, foreign.Prog) {
		t.Fatalf("%s has %v, want the foreign program", other, before)
	}

	payload := bytes.Repeat([]byte{9}, 100)
	for i, how := range []string{"timeout", "SIGTERM", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			args := []string{"-x"}
			if how == "timeout" {
				args = append(args, "-t", "2s")
			}
			tl := harness.StartCapture(t, p.B, bin, args...)
			if a := harness.XDPOn(t, p.B, p.B.Link); a.Name != harness.XDPProgName {
				t.Fatalf("while running, %s has %v, want ours", p.B.Link, a)
			}
			harness.SendUDPFlow(t, harness.NewUDPFlow("A->B", p.A, p.B, netip.AddrPortFrom(p.A.IPv4, uint16(41900+i)), netip.AddrPortFrom(p.B.IPv4, 5900)), payload, 10)
			if code := harness.EndCapture(t, tl, how); code != harness.WantExit(how) {
				t.Fatalf("exit code %d, want %d\nstderr:\n%s", code, harness.WantExit(how), tl.Stderr())
			}
			harness.WaitNoXDP(t, p.B, p.B.Link)
			if after := harness.XDPOn(t, p.B, other); after != before {
				t.Fatalf("after %s, %s has %v; before the run it had %v", how, other, after, before)
			}
			// Still working: a frame into the other veth's peer reaches it.
			c0 := foreign.count(t)
			sendRawFrame(t, p.B, otherPeer)
			// The program runs when the peer's receive work does, which
			// the kernel may defer past the send.
			c := foreign.count(t)
			for deadline := time.Now().Add(2 * time.Second); c == c0 && time.Now().Before(deadline); c = foreign.count(t) {
				time.Sleep(10 * time.Millisecond)
			}
			if c != c0+1 {
				t.Fatalf("after %s, the foreign program counted %d frames for 1 sent", how, c-c0)
			}
			t.Logf("after %s: %s has no XDP program, %s still has %v and counts", how, p.B.Link, other, before)
		})
	}
}

// sendRawFrame sends one Ethernet frame out of ifname in e's namespace
// through an AF_PACKET socket.
func sendRawFrame(t *testing.T, e testnet.End, ifname string) {
	t.Helper()
	frame := bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolUDP), bpftest.UDP(), bpftest.Payload(18))
	err := e.Do(func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		return syscall.Sendto(fd, frame, 0, &syscall.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6})
	})
	if err != nil {
		t.Fatalf("send a frame out of %s: %v", ifname, err)
	}
}

// TestE2EXDPForeignProgram: with another tool's XDP program on the
// interface, the run refuses, names that program (ID and name), points to
// TC mode, and leaves it attached and counting, whichever mode is asked
// for and however the other program was attached.
func TestE2EXDPForeignProgram(t *testing.T) {
	bin := harness.Binary(t)
	for _, c := range []struct {
		name   string
		attach func(t *testing.T, f *foreignXDP, e testnet.End)
	}{
		{"netlink-generic", func(t *testing.T, f *foreignXDP, e testnet.End) {
			f.attachNetlink(t, e, e.Link, nl.XDP_FLAGS_SKB_MODE)
		}},
		{"link-native", func(t *testing.T, f *foreignXDP, e testnet.End) {
			f.attachLink(t, e, e.Link, link.XDPDriverMode)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testnet.NewPair(t)
			p.PinNeighbors(t)
			foreign := newForeignXDP(t)
			c.attach(t, foreign, p.B)
			before := harness.XDPOn(t, p.B, p.B.Link)
			if before.ID != bpftest.ProgramID(t, foreign.Prog) {
				t.Fatalf("%s has %v, want the foreign program", p.B.Link, before)
			}
			for _, mode := range []string{"auto", "native", "generic"} {
				code, stdout, stderr := runToolOnce(t, p.B, bin, "-x", "--xdp_mode", mode, "-i", p.B.Link, "-t", "1s")
				if code != 1 || stdout != "" {
					t.Fatalf("--xdp_mode %s: exit %d, stdout %q; want 1 and nothing\nstderr:\n%s", mode, code, stdout, stderr)
				}
				for _, want := range []string{fmt.Sprintf("id %d", before.ID), `"foreign_xdp"`, "TC", "without -x"} {
					if !strings.Contains(stderr, want) {
						t.Errorf("--xdp_mode %s: the error does not mention %q:\n%s", mode, want, stderr)
					}
				}
				if strings.Contains(stderr, "msg=capturing") {
					t.Errorf("--xdp_mode %s: it logged that it was capturing:\n%s", mode, stderr)
				}
				if after := harness.XDPOn(t, p.B, p.B.Link); after != before {
					t.Fatalf("--xdp_mode %s: after the run %s has %v, before %v", mode, p.B.Link, after, before)
				}
				t.Logf("--xdp_mode %s refused: %s", mode, strings.TrimSpace(stderr))
			}
			c0 := foreign.count(t)
			harness.SendUDPFlow(t, harness.NewUDPFlow("A->B", p.A, p.B, netip.AddrPortFrom(p.A.IPv4, 41950), netip.AddrPortFrom(p.B.IPv4, 5950)), []byte("x"), 5)
			if c := foreign.count(t) - c0; c != 5 {
				t.Fatalf("the foreign program counted %d of 5 datagrams after the refused runs", c)
			}
		})
	}
}

// TestE2EXDPDriverErrors: a mode the driver cannot do is a clear error
// naming the mode and the driver; auto falls back to generic where native
// is refused, and says so.
func TestE2EXDPDriverErrors(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	br := "xb" + p.B.Link[2:]
	ipIn(t, p.B, "link", "add", br, "type", "bridge")
	ipIn(t, p.B, "link", "set", br, "up")

	for _, c := range []struct {
		iface, mode string
		want        []string
	}{
		{br, "native", []string{"native mode", "driver bridge", "does not support native XDP"}},
		{br, "driver", []string{"native mode", "driver bridge"}},
		{p.B.Link, "offload", []string{"offload", "driver veth"}},
		{p.B.Link, "hardware", []string{"offload", "driver veth"}},
	} {
		code, stdout, stderr := runToolOnce(t, p.B, bin, "-x", "--xdp_mode", c.mode, "-i", c.iface, "-t", "1s")
		if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("--xdp_mode %s on %s: exit %d, stdout %q; want exit 1 and one line on stderr:\n%s", c.mode, c.iface, code, stdout, stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("--xdp_mode %s on %s: the error does not say %q:\n%s", c.mode, c.iface, w, stderr)
			}
		}
		t.Logf("--xdp_mode %s on %s: %s", c.mode, c.iface, strings.TrimSpace(stderr))
	}
	if a := harness.XDPOn(t, p.B, br); a.ID != 0 {
		t.Fatalf("after the failed runs, %s has %v", br, a)
	}

	tl := harness.StartCapture(t, p.B, bin, "-i", br, "-x")
	checkXDPStartLog(t, tl, "generic")
	if !strings.Contains(tl.Stderr(), "falling back to generic XDP") || !strings.Contains(tl.Stderr(), "driver bridge") {
		t.Fatalf("auto on a bridge did not say why it fell back:\n%s", tl.Stderr())
	}
	// Native would have had the single-buffer program; generic gets the
	// multi-buffer one, loaded afresh for the fallback.
	multiBuffer, err := capture.ProbeXDPFrags()
	if err != nil {
		t.Fatal(err)
	}
	checkMultiBuffer(t, tl, multiBuffer)
	harness.StopCapture(t, tl, syscall.SIGTERM)
	harness.WaitNoXDP(t, p.B, br)
}

// TestE2EXDPNativeTCPSegments sends 4 MiB over TCP from A to B with the
// tool in native XDP mode on B. Native XDP on a veth turns GSO off on the
// peer, so every TCP segment crosses the hook as its own frame: the A->B
// row's packets must equal A's Tcp.OutSegs + RetransSegs, and its bytes the
// payload plus every segment's headers. (Generic XDP runs after the stack
// has built the skb and sees a GSO packet whole; the start-up log warns.)
func TestE2EXDPNativeTCPSegments(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	harness.NoSACK(t, p)
	const size = 4 << 20
	src := netip.AddrPortFrom(p.A.IPv4, 41600)
	dst := netip.AddrPortFrom(p.B.IPv4, 5601)
	// With native XDP, a veth hands frames to its peer through a ring of
	// 256; a burst that finds it full is dropped before the hook, on a
	// busy machine too. A 64 KiB receive buffer (set before listen, so the
	// window scale follows it) keeps A's data in flight under 64 frames,
	// so the ring cannot fill and every segment A sends reaches the hook.
	var ln *net.TCPListener
	if err := p.B.Do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
			}); err != nil {
				return err
			}
			return serr
		}}
		l, err := lc.Listen(context.Background(), "tcp4", dst.String())
		if err != nil {
			return err
		}
		ln = l.(*net.TCPListener)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	tl := harness.StartCapture(t, p.B, bin, "-x", "--xdp_mode", "native")
	checkXDPStartLog(t, tl, "native")
	snmp0 := harness.SNMP(t, p.A)
	link0 := harness.LinkStats(t, p.A)
	info := harness.SendTCP(t, p, ln, src, dst, size)
	snmp1 := harness.SNMP(t, p.A)
	link1 := harness.LinkStats(t, p.A)
	rows := harness.StopCapture(t, tl, syscall.SIGINT)

	if opens := harness.SNMPDelta(snmp0, snmp1, "Tcp.ActiveOpens"); opens != 1 {
		t.Fatalf("A opened %d connections during the measurement, want 1", opens)
	}
	// A frame the veth drops never reaches the hook, yet TCP counted it
	// as sent: the ground truth below holds only if there were none.
	if d := link1.TxDropped - link0.TxDropped; d != 0 {
		t.Fatalf("A's veth dropped %d frames before B's XDP hook; the window bound did not hold", d)
	}
	segs := harness.SNMPDelta(snmp0, snmp1, "Tcp.OutSegs") + harness.SNMPDelta(snmp0, snmp1, "Tcp.RetransSegs")
	syn, rest := harness.TCPHeaderLens(info.Options)
	hdr := uint64(harness.EthLen + harness.IPv4Len + rest)
	ab := harness.OneRow(t, rows, "TCP", src.Addr(), dst.Addr(), src.Port(), dst.Port())
	harness.WantCounts(t, "TCP A->B in native XDP (A's Tcp.OutSegs + RetransSegs)", ab, segs, size+info.Bytes_retrans+segs*hdr+uint64(syn-rest))
}
