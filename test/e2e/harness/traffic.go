package harness

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// Wire sizes of the headers in every frame on a veth.
const (
	EthLen  = 14
	IPv4Len = 20
	IPv6Len = 40
	UDPLen  = 8
	ICMPLen = 8 // ICMPv4 and ICMPv6 echo: type, code, checksum, ID, sequence
)

// UDPFlow is one direction of datagrams between the pair's ends.
type UDPFlow struct {
	Name     string
	From, To testnet.End
	Src, Dst netip.AddrPort
	L3Len    int // the IP header's length: IPv4Len or IPv6Len
}

// NewUDPFlow is the flow of datagrams from src on from to dst on to.
func NewUDPFlow(name string, from, to testnet.End, src, dst netip.AddrPort) UDPFlow {
	l3 := IPv6Len
	if src.Addr().Is4() {
		l3 = IPv4Len
	}
	return UDPFlow{Name: name, From: from, To: to, Src: src, Dst: dst, L3Len: l3}
}

// SendUDPFlow sends n datagrams of payload along f and checks that the
// receiver got every one of them.
func SendUDPFlow(t *testing.T, f UDPFlow, payload []byte, n int) {
	t.Helper()
	rx, err := f.To.ListenUDP(f.Dst)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := f.From.DialUDP(f.Src, f.Dst)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := testnet.SendUDP(tx, payload, n); err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	if got, err := testnet.ReadUDP(rx, n, len(payload), 5*time.Second); err != nil {
		t.Fatalf("%s: %d of %d datagrams arrived: %v", f.Name, got, n, err)
	}
}

// TCP_INFO's tcpi_options bits (linux/tcp.h).
const (
	tcpiOptTimestamps = 1
	tcpiOptSACK       = 2
	tcpiOptWscale     = 4
)

// TCPHeaderLens returns the TCP header length of the SYN (and SYN-ACK) and
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
func TCPHeaderLens(options uint8) (syn, rest int) {
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

// NoSACK turns SACK off in both namespaces of p, so that every ACK of a
// SendTCP transfer has the same header length, whatever was lost.
func NoSACK(t *testing.T, p *testnet.Pair) {
	t.Helper()
	for _, e := range []testnet.End{p.A, p.B} {
		e.Sysctl(t, "net.ipv4.tcp_sack=0")
	}
}

// SendTCP sends size bytes from src, on A, to ln, B's listener at dst,
// over one connection, and closes it from both ends: B reads everything,
// then closes; A reads B's FIN and closes. It returns A's TCP_INFO as read
// after B's FIN, when A had sent all but its last ACK, and returns once
// both ends are done: B holds no connection, A's waits in TIME_WAIT, and
// neither sends anything more.
func SendTCP(t *testing.T, p *testnet.Pair, ln *net.TCPListener, src, dst netip.AddrPort, size int) *unix.TCPInfo {
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

// SNMPDelta returns after[key] - before[key].
func SNMPDelta(before, after map[string]uint64, key string) uint64 { return after[key] - before[key] }

// UDPFrameTo builds an Ethernet/IPv4/UDP frame from B to A's MAC address
// and to the IPv4 address dst with gopacket, lengths and checksums filled
// in.
func UDPFrameTo(t *testing.T, p *testnet.Pair, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: p.B.MAC, DstMAC: p.A.MAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IP(p.B.IPv4.AsSlice()), DstIP: net.IP(dst[:])}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatalf("build frame: %v", err)
	}
	return buf.Bytes()
}

// Pattern is n bytes of a counting pattern: what the helpers and the tests
// send as payload.
func Pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// ParseAddrPort parses an address and port as a socket names it (a
// helper's answer), IPv4 as IPv4.
func ParseAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	// A dual-stack socket names an IPv4 peer as ::ffff:a.b.c.d; rows say IPv4.
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// IPReceives is the count of IPv4 packets that e's IP layer received.
func IPReceives(t *testing.T, e testnet.End) uint64 {
	t.Helper()
	return SNMP(t, e)["Ip.InReceives"]
}

// SNMP is e's namespace's /proc/net/snmp counters, as testnet.End.SNMP
// reads them; it fails the test if they cannot be read.
func SNMP(t *testing.T, e testnet.End) map[string]uint64 {
	t.Helper()
	snmp, err := e.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	return snmp
}

// LinkStats is e's veth's counters, as testnet.End.LinkStats reads them;
// it fails the test if they cannot be read.
func LinkStats(t *testing.T, e testnet.End) *netlink.LinkStatistics {
	t.Helper()
	st, err := e.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Settle waits until the frames that reached e's veth have been through
// the hooks, which run before the IP layer: until e's IP layer received
// want packets more than before, or its count stopped moving for 300ms
// (the stack may merge the frames that the hooks passed); at most 5s. The
// veth's own counters move when a frame is queued, before the hooks run,
// and a tool stopped before they ran would miss the frames.
func Settle(t *testing.T, e testnet.End, before, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	last, still := IPReceives(t, e), time.Now()
	for last-before < want && time.Since(still) < 300*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if now := IPReceives(t, e); now != last {
			last, still = now, time.Now()
		}
	}
}
