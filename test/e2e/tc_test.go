package e2e

// End-to-end tier: the built binary runs on A's end of a veth pair in a
// test namespace, the test sends exactly known traffic from and to B, and
// the JSON report must match ground truth exactly: the number of datagrams
// and pings the test sent, and the kernel's own segment counters for TCP.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// TestE2EUDP counts N datagrams each way, IPv4 and IPv6: B->A is A's
// ingress, A->B is A's egress. Every datagram reached its receiver, so
// every one crossed A's hooks.
func TestE2EUDP(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	const n = 1000
	payload := bytes.Repeat([]byte{0x5a}, 200)
	ap := func(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }
	flows := []harness.UDPFlow{
		harness.NewUDPFlow("IPv4 B->A (ingress)", p.B, p.A, ap(p.B.IPv4, 41001), ap(p.A.IPv4, 5001)),
		harness.NewUDPFlow("IPv4 A->B (egress)", p.A, p.B, ap(p.A.IPv4, 41002), ap(p.B.IPv4, 5002)),
		harness.NewUDPFlow("IPv6 B->A (ingress)", p.B, p.A, ap(p.B.IPv6, 41003), ap(p.A.IPv6, 5003)),
		harness.NewUDPFlow("IPv6 A->B (egress)", p.A, p.B, ap(p.A.IPv6, 41004), ap(p.B.IPv6, 5004)),
	}

	tl := harness.StartCapture(t, p.A, bin)
	for _, f := range flows {
		harness.SendUDPFlow(t, f, payload, n)
	}
	// A second of capture makes the uncertainty of its start and end,
	// which the bitrate check allows for, small beside it.
	time.Sleep(time.Second)
	rows := harness.StopCapture(t, tl, syscall.SIGINT)

	for _, f := range flows {
		row := harness.OneRow(t, rows, "UDP", f.Src.Addr(), f.Dst.Addr(), f.Src.Port(), f.Dst.Port())
		frame := uint64(harness.EthLen + f.L3Len + harness.UDPLen + len(payload))
		harness.WantCounts(t, f.Name, row, n, n*frame)
	}
	harness.WantBitrates(t, tl, rows)
}

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
	bin, p := harness.BinaryAndPair(t)
	harness.NoSACK(t, p)
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
	tl := harness.StartCapture(t, p.A, bin)
	tlB := harness.StartCapture(t, p.B, bin)
	snmpA0 := harness.SNMP(t, p.A)
	snmpB0 := harness.SNMP(t, p.B)
	link0 := harness.LinkStats(t, p.A)
	linkB0 := harness.LinkStats(t, p.B)

	info := harness.SendTCP(t, p, ln, src, dst, size)
	snmpA1 := harness.SNMP(t, p.A)
	snmpB1 := harness.SNMP(t, p.B)
	link1 := harness.LinkStats(t, p.A)
	linkB1 := harness.LinkStats(t, p.B)
	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	rowsB := harness.StopCapture(t, tlB, syscall.SIGINT)

	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"A's Tcp.ActiveOpens", harness.SNMPDelta(snmpA0, snmpA1, "Tcp.ActiveOpens"), 1},
		{"B's Tcp.PassiveOpens", harness.SNMPDelta(snmpB0, snmpB1, "Tcp.PassiveOpens"), 1},
	} {
		if c.got != c.want {
			t.Fatalf("%s rose by %d, want %d: the measurement is not one connection", c.what, c.got, c.want)
		}
	}
	// OutSegs leaves out retransmitted segments; they cross the wire too.
	retransA := harness.SNMPDelta(snmpA0, snmpA1, "Tcp.RetransSegs")
	segsA := harness.SNMPDelta(snmpA0, snmpA1, "Tcp.OutSegs") + retransA
	segsB := harness.SNMPDelta(snmpB0, snmpB1, "Tcp.OutSegs") + harness.SNMPDelta(snmpB0, snmpB1, "Tcp.RetransSegs")
	syn, rest := harness.TCPHeaderLens(info.Options)
	hdr := uint64(harness.EthLen + harness.IPv4Len + rest)
	// Every segment carries L2+L3+L4 headers; the SYN (and the SYN-ACK)
	// carries syn-rest more option bytes than the others.
	synExtra := uint64(syn - rest)
	t.Logf("negotiated TCP options 0x%x: SYN header %d bytes, other segments %d bytes; A's socket: tcpi_segs_out %d, tcpi_total_retrans %d, tcpi_bytes_retrans %d",
		info.Options, syn, rest, info.Segs_out, info.Total_retrans, info.Bytes_retrans)
	if uint64(info.Total_retrans) != retransA {
		t.Fatalf("A's socket retransmitted %d segments but the namespace counted %d: other TCP traffic interfered", info.Total_retrans, retransA)
	}

	ab := harness.OneRow(t, rows, "TCP", src.Addr(), dst.Addr(), src.Port(), dst.Port())
	ba := harness.OneRow(t, rows, "TCP", dst.Addr(), src.Addr(), dst.Port(), src.Port())
	// Retransmitted payload (TCP_INFO's tcpi_bytes_retrans) crosses the wire again.
	harness.WantCounts(t, "TCP A->B (A's Tcp.OutSegs + RetransSegs)", ab, segsA, size+info.Bytes_retrans+segsA*hdr+synExtra)
	harness.WantCounts(t, "TCP B->A (B's Tcp.OutSegs + RetransSegs)", ba, segsB, segsB*hdr+synExtra)
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
	abIn := harness.OneRow(t, rowsB, "TCP", src.Addr(), dst.Addr(), src.Port(), dst.Port())
	baOut := harness.OneRow(t, rowsB, "TCP", dst.Addr(), src.Addr(), dst.Port(), src.Port())
	if abIn.Dir != "in" || baOut.Dir != "out" {
		t.Errorf("at B, A->B is %q and B->A %q; want in and out", abIn.Dir, baOut.Dir)
	}
	harness.WantCounts(t, "TCP A->B received at B (A's Tcp.OutSegs + RetransSegs)", abIn, segsA, size+info.Bytes_retrans+segsA*hdr+synExtra)
	harness.WantCounts(t, "TCP B->A sent by B (B's Tcp.OutSegs + RetransSegs)", baOut, segsB, segsB*hdr+synExtra)
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
	bin, p := harness.BinaryAndPair(t)
	const n = 5
	data := bytes.Repeat([]byte{0xa5}, 56) // ping(8)'s default size
	cases := []struct {
		pinger
		name  string
		l3Len int
	}{
		{pinger{"ip4:icmp", 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply, p.A.IPv4, p.B.IPv4}, "ICMPv4", harness.IPv4Len},
		{pinger{"ip6:ipv6-icmp", 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, p.A.IPv6, p.B.IPv6}, "IPv6-ICMP", harness.IPv6Len},
	}

	tl := harness.StartCapture(t, p.A, bin)
	for _, c := range cases {
		if err := c.ping(p.A, n, data); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	rows := harness.StopCapture(t, tl, syscall.SIGINT)

	for _, c := range cases {
		frame := uint64(harness.EthLen + c.l3Len + harness.ICMPLen + len(data))
		req := harness.OneRow(t, rows, c.name, c.src, c.dst, uint16(typeNumber(c.request)), 0)
		harness.WantCounts(t, c.name+" echo request", req, n, n*frame)
		rep := harness.OneRow(t, rows, c.name, c.dst, c.src, uint16(typeNumber(c.reply)), 0)
		harness.WantCounts(t, c.name+" echo reply", rep, n, n*frame)
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

// TestE2ESignals checks that SIGINT, SIGTERM, SIGHUP (a closed terminal)
// and SIGQUIT end a capture normally:
// exit code 0 and a report with the traffic of the run; and that a timeout
// ends one by itself the same way.
func TestE2ESignals(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	const n = 3
	payload := bytes.Repeat([]byte{1}, 100)
	frame := uint64(harness.EthLen + harness.IPv4Len + harness.UDPLen + len(payload))
	flowFrom := func(port uint16) harness.UDPFlow {
		return harness.NewUDPFlow(fmt.Sprintf("UDP from port %d", port), p.B, p.A,
			netip.AddrPortFrom(p.B.IPv4, port), netip.AddrPortFrom(p.A.IPv4, 5300))
	}
	check := func(t *testing.T, rows []harness.Row, f harness.UDPFlow) {
		t.Helper()
		row := harness.OneRow(t, rows, "UDP", f.Src.Addr(), f.Dst.Addr(), f.Src.Port(), f.Dst.Port())
		harness.WantCounts(t, f.Name, row, n, n*frame)
	}

	for i, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			f := flowFrom(uint16(41300 + i))
			tl := harness.StartCapture(t, p.A, bin)
			harness.SendUDPFlow(t, f, payload, n)
			check(t, harness.StopCapture(t, tl, sig), f)
		})
	}
	t.Run("timeout", func(t *testing.T) {
		f := flowFrom(41310)
		begin := time.Now()
		tl := harness.StartCapture(t, p.A, bin, "-t", "2s")
		harness.SendUDPFlow(t, f, payload, n)
		rows := harness.WaitReport(t, tl)
		took := time.Since(begin)
		if took < 2*time.Second {
			t.Errorf("-t 2s ended after %v", took)
		}
		t.Logf("-t 2s: exited 0 by itself %v after start", took.Round(time.Millisecond))
		check(t, rows, f)
	})
}
