package main

// End-to-end tier: the built binary runs on A's end of a veth pair in a
// test namespace, the test sends exactly known traffic from and to B, and
// the JSON report must match ground truth exactly: the number of datagrams
// and pings the test sent, and the kernel's own segment counters for TCP.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testnet"
)

// e2eBuild is the binary TestMain built for the end-to-end tests, or why
// there is none. TestMain sets it once, before any test runs; tests only
// read it.
var e2eBuild struct {
	path string
	err  error
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// Without root the end-to-end tests skip, so there is nothing to build.
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "pktstat-bpf-e2e-")
		if err != nil {
			e2eBuild.err = err
		} else {
			defer os.RemoveAll(dir)
			// The unprivileged-user test runs the binary as nobody.
			if err := os.Chmod(dir, 0o755); err != nil {
				e2eBuild.err = err
			} else {
				e2eBuild.path, e2eBuild.err = testnet.BuildBinary(dir)
			}
		}
	}
	return m.Run()
}

// e2eBinary returns the built binary; it skips without root.
func e2eBinary(t *testing.T) string {
	t.Helper()
	testnet.RequireRoot(t)
	if e2eBuild.err != nil {
		t.Fatalf("build pktstat-bpf for the end-to-end tests: %v", e2eBuild.err)
	}
	return e2eBuild.path
}

// Wire sizes of the headers in every frame on a veth.
const (
	ethLen  = 14
	ipv4Len = 20
	ipv6Len = 40
	udpLen  = 8
	icmpLen = 8 // ICMPv4 and ICMPv6 echo: type, code, checksum, ID, sequence
)

// toolWait bounds how long a tool may take to print its report and exit.
const toolWait = 15 * time.Second

// startCapture runs the tool on e's veth with a JSON report, without a
// timeout unless extra sets one.
func startCapture(t *testing.T, e testnet.End, bin string, extra ...string) *testnet.Tool {
	t.Helper()
	args := append([]string{"-i", e.Link, "-t", "0", "-j"}, extra...)
	return testnet.StartTool(t, e, bin, args...)
}

// stopTool sends sig and expects exit code 0.
func stopTool(t *testing.T, tl *testnet.Tool, sig syscall.Signal) {
	t.Helper()
	if err := tl.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
	waitExitZero(t, tl)
}

// stopCapture sends sig, expects exit code 0 and returns the parsed report.
func stopCapture(t *testing.T, tl *testnet.Tool, sig syscall.Signal) []testnet.Row {
	t.Helper()
	if err := tl.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
	return waitReport(t, tl)
}

// waitReport waits for the tool to exit 0 and parses its report.
func waitReport(t *testing.T, tl *testnet.Tool) []testnet.Row {
	t.Helper()
	waitExitZero(t, tl)
	rows, err := testnet.ParseRows(tl.Stdout())
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, tl.Stderr())
	}
	return rows
}

// waitExitZero waits for the tool to exit, and fails unless it exits 0.
func waitExitZero(t *testing.T, tl *testnet.Tool) {
	t.Helper()
	code, err := tl.Wait(toolWait)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, tl.Stderr())
	}
	if code != 0 {
		t.Fatalf("pktstat-bpf exited %d, want 0\nstderr:\n%s", code, tl.Stderr())
	}
}

// stopIntervals sends sig, expects exit code 0 and returns the interval
// reports (--interval).
func stopIntervals(t *testing.T, tl *testnet.Tool, sig syscall.Signal) []testnet.Interval {
	t.Helper()
	stopTool(t, tl, sig)
	ivs, err := testnet.ParseIntervals(tl.Stdout())
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, tl.Stderr())
	}
	return ivs
}

// oneRow returns the single row with exactly these fields (ports included,
// even when zero: ICMP echo reply is type 0 code 0).
func oneRow(t *testing.T, rows []testnet.Row, proto string, src, dst netip.Addr, sport, dport uint16) testnet.Row {
	t.Helper()
	var found []testnet.Row
	for _, r := range rows {
		if r.Proto == proto && r.SrcIP == src.String() && r.DstIP == dst.String() && r.SrcPort == sport && r.DstPort == dport {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d rows for %s %s:%d -> %s:%d, want 1; report:\n%s", len(found), proto, src, sport, dst, dport, dumpRows(rows))
	}
	return found[0]
}

func dumpRows(rows []testnet.Row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  %+v\n", r)
	}
	return b.String()
}

// wantCounts fails unless row counted exactly packets and bytes.
func wantCounts(t *testing.T, what string, row testnet.Row, packets, bytes uint64) {
	t.Helper()
	if row.Packets != packets || row.Bytes != bytes {
		t.Errorf("%s: report has %d packets / %d bytes, ground truth %d packets / %d bytes", what, row.Packets, row.Bytes, packets, bytes)
		return
	}
	t.Logf("%s: %d packets / %d bytes, equal to ground truth", what, row.Packets, row.Bytes)
}

// wantBitrates checks the report's order and every row's bitrate against
// its bytes and the run's capture time, which the tool's start, ready line,
// signal and exit bound: a row's bitrate must lie between its bits over
// the longest possible capture time and its bits over the shortest.
func wantBitrates(t *testing.T, tl *testnet.Tool, rows []testnet.Row) {
	t.Helper()
	lo, hi, err := tl.RunBounds()
	if err != nil {
		t.Fatal(err)
	}
	const eps = 1e-9 // the report's bitrate went through a float and JSON
	for i, r := range rows {
		bits := float64(r.Bytes) * 8
		if min, max := bits/hi.Seconds(), bits/lo.Seconds(); r.Bitrate < min*(1-eps) || r.Bitrate > max*(1+eps) {
			t.Errorf("row %+v: bitrate %.1f, want between %.1f and %.1f (%d bytes over %s to %s)", r, r.Bitrate, min, max, r.Bytes, lo, hi)
		}
		if i > 0 && r.Bitrate > rows[i-1].Bitrate {
			t.Errorf("rows %d and %d are not sorted by bitrate: %.1f before %.1f", i-1, i, rows[i-1].Bitrate, r.Bitrate)
		}
	}
	t.Logf("%d rows sorted by bitrate, each within its bytes over a capture time of %s to %s", len(rows), lo, hi)
}

// udpFlow is one direction of datagrams between the pair's ends.
type udpFlow struct {
	name     string
	from, to testnet.End
	src, dst netip.AddrPort
	l3Len    int
}

// sendUDPFlow sends n datagrams of payload along f and checks that the
// receiver got every one of them.
func sendUDPFlow(t *testing.T, f udpFlow, payload []byte, n int) {
	t.Helper()
	rx, err := f.to.ListenUDP(f.dst)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := f.from.DialUDP(f.src, f.dst)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := testnet.SendUDP(tx, payload, n); err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	if got, err := testnet.ReadUDP(rx, n, len(payload), 5*time.Second); err != nil {
		t.Fatalf("%s: %d of %d datagrams arrived: %v", f.name, got, n, err)
	}
}

// TestE2EUDP counts N datagrams each way, IPv4 and IPv6: B->A is A's
// ingress, A->B is A's egress. Every datagram reached its receiver, so
// every one crossed A's hooks.
func TestE2EUDP(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	const n = 1000
	payload := bytes.Repeat([]byte{0x5a}, 200)
	ap := func(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }
	flows := []udpFlow{
		{"IPv4 B->A (ingress)", p.B, p.A, ap(p.B.IPv4, 41001), ap(p.A.IPv4, 5001), ipv4Len},
		{"IPv4 A->B (egress)", p.A, p.B, ap(p.A.IPv4, 41002), ap(p.B.IPv4, 5002), ipv4Len},
		{"IPv6 B->A (ingress)", p.B, p.A, ap(p.B.IPv6, 41003), ap(p.A.IPv6, 5003), ipv6Len},
		{"IPv6 A->B (egress)", p.A, p.B, ap(p.A.IPv6, 41004), ap(p.B.IPv6, 5004), ipv6Len},
	}

	tl := startCapture(t, p.A, bin)
	for _, f := range flows {
		sendUDPFlow(t, f, payload, n)
	}
	// A second of capture makes the uncertainty of its start and end,
	// which the bitrate check allows for, small beside it.
	time.Sleep(time.Second)
	rows := stopCapture(t, tl, syscall.SIGINT)

	for _, f := range flows {
		row := oneRow(t, rows, "UDP", f.src.Addr(), f.dst.Addr(), f.src.Port(), f.dst.Port())
		frame := uint64(ethLen + f.l3Len + udpLen + len(payload))
		wantCounts(t, f.name, row, n, n*frame)
	}
	wantBitrates(t, tl, rows)
}

// TCP_INFO's tcpi_options bits (linux/tcp.h).
const (
	tcpiOptTimestamps = 1
	tcpiOptSACK       = 2
	tcpiOptWscale     = 4
)

// tcpHeaderLens returns the TCP header length of the SYN (and SYN-ACK) and
// of every later segment, from the options the connection negotiated.
// Linux writes the options as follows (tcp_options_write):
//   - MSS: 4 bytes, in SYN and SYN-ACK only;
//   - timestamps: 10 bytes padded to 12, in every segment; in the SYN the
//     SACK-permitted option (2 bytes) fills that padding;
//   - SACK-permitted without timestamps: 2 bytes padded to 4, SYN only;
//   - window scale: 3 bytes padded to 4, SYN only.
//
// Later segments carry SACK blocks only after loss or reordering, which the
// test rules out (no retransmissions, one veth).
func tcpHeaderLens(options uint8) (syn, rest int) {
	syn, rest = 20+4, 20
	switch {
	case options&tcpiOptTimestamps != 0:
		syn += 12
		rest += 12
	case options&tcpiOptSACK != 0:
		syn += 4
	}
	if options&tcpiOptWscale != 0 {
		syn += 4
	}
	return syn, rest
}

func tcpInfo(c *net.TCPConn) (*unix.TCPInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		info *unix.TCPInfo
		gerr error
	)
	if err := rc.Control(func(fd uintptr) { info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return nil, err
	}
	return info, gerr
}

// sendTCP sends size bytes from src, on A, to ln, B's listener at dst,
// over one connection, and closes it from both ends: B reads everything,
// then closes; A reads B's FIN and closes. It returns A's TCP_INFO as read
// after B's FIN, when A had sent all but its last ACK, and returns once
// both ends are done: B holds no connection, A's waits in TIME_WAIT, and
// neither sends anything more.
func sendTCP(t *testing.T, p *testnet.Pair, ln *net.TCPListener, src, dst netip.AddrPort, size int) *unix.TCPInfo {
	t.Helper()
	received := make(chan error, 1)
	go func() {
		if err := ln.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			received <- err
			return
		}
		c, err := ln.AcceptTCP()
		if err != nil {
			received <- err
			return
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			received <- err
			return
		}
		n, err := io.Copy(io.Discard, c)
		if err == nil && n != int64(size) {
			err = fmt.Errorf("received %d bytes, want %d", n, size)
		}
		received <- err
	}()

	var c *net.TCPConn
	if err := p.A.Do(func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(src), Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp4", dst.String())
		if err != nil {
			return err
		}
		c = conn.(*net.TCPConn)
		return nil
	}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatalf("send %d bytes: %v", size, err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// B's FIN: once it is read, A has sent everything but the ACK of it.
	if n, err := io.Copy(io.Discard, c); n != 0 || err != nil {
		t.Fatalf("A read %d bytes from B, error %v; want 0 and EOF", n, err)
	}
	info, err := tcpInfo(c)
	if err != nil {
		t.Fatalf("TCP_INFO: %v", err)
	}
	c.Close() // A's last ACK goes out now
	if err := <-received; err != nil {
		t.Fatalf("B: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		stA, errA := p.A.TCPStates()
		stB, errB := p.B.TCPStates()
		if err := errors.Join(errA, errB); err != nil {
			t.Fatal(err)
		}
		if len(stB)-stB["LISTEN"] == 0 && len(stA) == 1 && stA["TIME_WAIT"] == 1 {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection did not finish within 5s: A %v, B %v", stA, stB)
		}
	}
}

// snmpDelta returns after[key] - before[key].
func snmpDelta(before, after map[string]uint64, key string) uint64 { return after[key] - before[key] }

// TestE2ETCPBulk sends 8 MiB over one IPv4 connection from A to B. The
// egress skbs at A are GSO skbs of up to 45 segments, so the A->B row
// proves that segments are counted, not skbs: its packets must equal A's
// TcpOutSegs, the segments TCP handed to IP, as the namespace's own MIB
// counts them, plus the segments it retransmitted (RetransSegs; a busy
// machine can overflow veth's receive ring). The B->A row (pure ACKs,
// SYN-ACK and FIN) must equal B's. A second capture at B's end sees the
// same GSO skbs arrive on its ingress, and must count the same. SACK is
// off in both namespaces so that every ACK has the same header length,
// whatever was lost.
func TestE2ETCPBulk(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	for _, e := range []testnet.End{p.A, p.B} {
		e.Sysctl(t, "net.ipv4.tcp_sack=0")
	}
	const size = 8 << 20
	src := netip.AddrPortFrom(p.A.IPv4, 41200)
	dst := netip.AddrPortFrom(p.B.IPv4, 5201)

	var ln *net.TCPListener
	if err := p.B.Do(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// No other TCP socket exists in either namespace, so nothing else can
	// move the counters during the measurement.
	stA, errA := p.A.TCPStates()
	stB, errB := p.B.TCPStates()
	if err := errors.Join(errA, errB); err != nil {
		t.Fatal(err)
	}
	if len(stA) != 0 || len(stB) != 1 || stB["LISTEN"] != 1 {
		t.Fatalf("TCP sockets before the transfer: A %v, B %v; want none, and B's listener", stA, stB)
	}

	// Two captures of the same transfer: at the sender, whose egress sees
	// GSO skbs, and at the receiver, whose ingress sees them as they cross
	// the veth.
	tl := startCapture(t, p.A, bin)
	tlB := startCapture(t, p.B, bin)
	snmpA0, err := p.A.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	snmpB0, err := p.B.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	link0, err := p.A.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	linkB0, err := p.B.LinkStats()
	if err != nil {
		t.Fatal(err)
	}

	info := sendTCP(t, p, ln, src, dst, size)
	snmpA1, err := p.A.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	snmpB1, err := p.B.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	link1, err := p.A.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	linkB1, err := p.B.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	rows := stopCapture(t, tl, syscall.SIGINT)
	rowsB := stopCapture(t, tlB, syscall.SIGINT)

	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"A's Tcp.ActiveOpens", snmpDelta(snmpA0, snmpA1, "Tcp.ActiveOpens"), 1},
		{"B's Tcp.PassiveOpens", snmpDelta(snmpB0, snmpB1, "Tcp.PassiveOpens"), 1},
	} {
		if c.got != c.want {
			t.Fatalf("%s rose by %d, want %d: the measurement is not one connection", c.what, c.got, c.want)
		}
	}
	// OutSegs leaves out retransmitted segments; they cross the wire too.
	retransA := snmpDelta(snmpA0, snmpA1, "Tcp.RetransSegs")
	segsA := snmpDelta(snmpA0, snmpA1, "Tcp.OutSegs") + retransA
	segsB := snmpDelta(snmpB0, snmpB1, "Tcp.OutSegs") + snmpDelta(snmpB0, snmpB1, "Tcp.RetransSegs")
	syn, rest := tcpHeaderLens(info.Options)
	hdr := uint64(ethLen + ipv4Len + rest)
	// Every segment carries L2+L3+L4 headers; the SYN (and the SYN-ACK)
	// carries syn-rest more option bytes than the others.
	synExtra := uint64(syn - rest)
	t.Logf("negotiated TCP options 0x%x: SYN header %d bytes, other segments %d bytes; A's socket: tcpi_segs_out %d, tcpi_total_retrans %d, tcpi_bytes_retrans %d",
		info.Options, syn, rest, info.Segs_out, info.Total_retrans, info.Bytes_retrans)
	if uint64(info.Total_retrans) != retransA {
		t.Fatalf("A's socket retransmitted %d segments but the namespace counted %d: other TCP traffic interfered", info.Total_retrans, retransA)
	}

	ab := oneRow(t, rows, "TCP", src.Addr(), dst.Addr(), src.Port(), dst.Port())
	ba := oneRow(t, rows, "TCP", dst.Addr(), src.Addr(), dst.Port(), src.Port())
	// Retransmitted payload (TCP_INFO's tcpi_bytes_retrans) crosses the wire again.
	wantCounts(t, "TCP A->B (A's Tcp.OutSegs + RetransSegs)", ab, segsA, size+info.Bytes_retrans+segsA*hdr+synExtra)
	wantCounts(t, "TCP B->A (B's Tcp.OutSegs + RetransSegs)", ba, segsB, segsB*hdr+synExtra)
	// A's veth counts skbs: with GSO one skb carries many segments.
	skbs := link1.TxPackets - link0.TxPackets
	t.Logf("GSO: A's veth sent %d skbs (all protocols) for %d TCP segments", skbs, segsA)
	if skbs >= segsA {
		t.Errorf("A's veth sent %d skbs for %d segments: GSO was not active, so this test did not check segment counting", skbs, segsA)
	}

	// At the receiver, the same segments arrive in the same GSO skbs. A
	// skb the veth dropped would be missing there although A's counters
	// include it: the ground truth holds only without drops.
	if d := link1.TxDropped - link0.TxDropped; d != 0 {
		t.Fatalf("A's veth dropped %d skbs on the way to B: B's rows cannot match A's counters", d)
	}
	abIn := oneRow(t, rowsB, "TCP", src.Addr(), dst.Addr(), src.Port(), dst.Port())
	baOut := oneRow(t, rowsB, "TCP", dst.Addr(), src.Addr(), dst.Port(), src.Port())
	if abIn.Dir != "in" || baOut.Dir != "out" {
		t.Errorf("at B, A->B is %q and B->A %q; want in and out", abIn.Dir, baOut.Dir)
	}
	wantCounts(t, "TCP A->B received at B (A's Tcp.OutSegs + RetransSegs)", abIn, segsA, size+info.Bytes_retrans+segsA*hdr+synExtra)
	wantCounts(t, "TCP B->A sent by B (B's Tcp.OutSegs + RetransSegs)", baOut, segsB, segsB*hdr+synExtra)
	rxSkbs := linkB1.RxPackets - linkB0.RxPackets
	t.Logf("at B's ingress: %d skbs (all protocols) for %d TCP segments", rxSkbs, segsA)
	if rxSkbs >= segsA {
		t.Errorf("B's veth received %d skbs for %d segments: no GSO skb reached B's ingress, so this test did not check it", rxSkbs, segsA)
	}
}

// pinger sends echo requests on a raw ICMP socket opened inside a
// namespace and waits for each reply.
type pinger struct {
	network  string // "ip4:icmp" or "ip6:ipv6-icmp"
	proto    int    // for icmp.ParseMessage
	request  icmp.Type
	reply    icmp.Type
	src, dst netip.Addr
}

func (pg pinger) ping(e testnet.End, n int, data []byte) error {
	var c *icmp.PacketConn
	if err := e.Do(func() (err error) {
		c, err = icmp.ListenPacket(pg.network, pg.src.String())
		return err
	}); err != nil {
		return fmt.Errorf("open %s socket in %s: %w", pg.network, e.NS, err)
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	buf := make([]byte, 1500)
	for seq := 1; seq <= n; seq++ {
		msg := icmp.Message{Type: pg.request, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
		b, err := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(b, &net.IPAddr{IP: pg.dst.AsSlice()}); err != nil {
			return fmt.Errorf("send echo %d: %w", seq, err)
		}
		if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			return err
		}
		for {
			m, _, err := c.ReadFrom(buf)
			if err != nil {
				return fmt.Errorf("wait for echo reply %d: %w", seq, err)
			}
			rm, err := icmp.ParseMessage(pg.proto, buf[:m])
			if err != nil {
				return err
			}
			if echo, ok := rm.Body.(*icmp.Echo); ok && rm.Type == pg.reply && echo.ID == id && echo.Seq == seq {
				break
			}
		}
	}
	return nil
}

// TestE2EPing sends 5 echo requests from A to B, over ICMPv4 and ICMPv6,
// and waits for each reply: one row of 5 requests and one of 5 replies each.
func TestE2EPing(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	const n = 5
	data := bytes.Repeat([]byte{0xa5}, 56) // ping(8)'s default size
	cases := []struct {
		pinger
		name  string
		l3Len int
	}{
		{pinger{"ip4:icmp", 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply, p.A.IPv4, p.B.IPv4}, "ICMPv4", ipv4Len},
		{pinger{"ip6:ipv6-icmp", 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, p.A.IPv6, p.B.IPv6}, "IPv6-ICMP", ipv6Len},
	}

	tl := startCapture(t, p.A, bin)
	for _, c := range cases {
		if err := c.ping(p.A, n, data); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	rows := stopCapture(t, tl, syscall.SIGINT)

	for _, c := range cases {
		frame := uint64(ethLen + c.l3Len + icmpLen + len(data))
		req := oneRow(t, rows, c.name, c.src, c.dst, uint16(typeNumber(c.request)), 0)
		wantCounts(t, c.name+" echo request", req, n, n*frame)
		rep := oneRow(t, rows, c.name, c.dst, c.src, uint16(typeNumber(c.reply)), 0)
		wantCounts(t, c.name+" echo reply", rep, n, n*frame)
	}
}

// typeNumber is the wire value of an ICMP type.
func typeNumber(typ icmp.Type) int {
	switch v := typ.(type) {
	case ipv4.ICMPType:
		return int(v)
	case ipv6.ICMPType:
		return int(v)
	}
	return -1
}

// TestE2ESignals checks that SIGINT and SIGTERM end a capture normally:
// exit code 0 and a report with the traffic of the run; and that a timeout
// ends one by itself the same way.
func TestE2ESignals(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	const n = 3
	payload := bytes.Repeat([]byte{1}, 100)
	frame := uint64(ethLen + ipv4Len + udpLen + len(payload))
	flowFrom := func(port uint16) udpFlow {
		return udpFlow{fmt.Sprintf("UDP from port %d", port), p.B, p.A,
			netip.AddrPortFrom(p.B.IPv4, port), netip.AddrPortFrom(p.A.IPv4, 5300), ipv4Len}
	}
	check := func(t *testing.T, rows []testnet.Row, f udpFlow) {
		t.Helper()
		row := oneRow(t, rows, "UDP", f.src.Addr(), f.dst.Addr(), f.src.Port(), f.dst.Port())
		wantCounts(t, f.name, row, n, n*frame)
	}

	for i, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			f := flowFrom(uint16(41300 + i))
			tl := startCapture(t, p.A, bin)
			sendUDPFlow(t, f, payload, n)
			check(t, stopCapture(t, tl, sig), f)
		})
	}
	t.Run("timeout", func(t *testing.T) {
		f := flowFrom(41310)
		begin := time.Now()
		tl := startCapture(t, p.A, bin, "-t", "2s")
		sendUDPFlow(t, f, payload, n)
		rows := waitReport(t, tl)
		took := time.Since(begin)
		if took < 2*time.Second {
			t.Errorf("-t 2s ended after %v", took)
		}
		t.Logf("-t 2s: exited 0 by itself %v after start", took.Round(time.Millisecond))
		check(t, rows, f)
	})
}
