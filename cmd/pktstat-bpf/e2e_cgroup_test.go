package main

// cgroup mode end to end. A helper process (this test binary, re-executed
// under the name pktcg-inside) lives in a child cgroup of the watched one
// and in namespace A; its peers are sockets of the test process itself in
// namespace B, outside the cgroup. The ground truth of every row is an
// AF_PACKET capture on B's veth, decoded by gopacket: with TSO, GSO and GRO
// off on both veths, every frame it sees is one packet on the wire, while
// TCP in the helper still hands the cgroup hooks GSO skbs (TCP always
// builds them; the device segments them in software), so the GSO
// arithmetic is checked against real segments.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testnet"
)

const (
	// cgHelperEnv makes the test binary run as the helper inside the cgroup.
	cgHelperEnv = "PKTSTAT_E2E_CGROUP_HELPER"
	// cgHelperComm is the helper's executable name, and so its comm.
	cgHelperComm = "pktcg-inside"
)

// The helper mode has to take over before the test framework starts, so
// it is chosen in init rather than in TestMain (which e2e_test.go owns).
func init() {
	if os.Getenv(cgHelperEnv) == "1" {
		os.Exit(runCgroupHelper(os.Stdin, os.Stdout))
	}
}

// runCgroupHelper serves the commands of cgHelper.do until its input closes.
func runCgroupHelper(in io.Reader, out io.Writer) int {
	h := &cgHelper{connTable: newConnTable()}
	return serveCommands(in, out, h.do)
}

type cgHelper struct {
	connTable
}

// add keeps c and answers its ID and addresses.
func (h *cgHelper) add(c net.Conn) string {
	return fmt.Sprintf("%d %s %s", h.put(c), c.LocalAddr(), c.RemoteAddr())
}

// do runs one command:
//
//	listen NETWORK ADDR        TCP listener; answers its port
//	accept                     answers ID LOCAL REMOTE
//	dial NETWORK ADDR          TCP connection; answers ID LOCAL REMOTE
//	dialmp NETWORK ADDR        the same over MPTCP
//	mptcp ID                   whether the connection runs MPTCP (true/false)
//	udp NETWORK LOCAL REMOTE   connected UDP socket; answers ID LOCAL REMOTE
//	write ID COUNT SIZE        COUNT writes (datagrams) of SIZE bytes
//	read ID COUNT SIZE         TCP: COUNT*SIZE bytes; UDP: COUNT datagrams of SIZE
//	close ID
func (h *cgHelper) do(args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("empty command")
	}
	need := map[string]int{"listen": 3, "accept": 1, "dial": 3, "dialmp": 3, "udp": 4, "write": 4, "read": 4, "close": 2, "mptcp": 2}
	if n, ok := need[args[0]]; !ok || len(args) != n {
		return "", fmt.Errorf("bad command %q", args)
	}
	switch args[0] {
	case "listen":
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), args[1], args[2])
		if err != nil {
			return "", err
		}
		h.ln = ln
		return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
	case "accept":
		if h.ln == nil {
			return "", errors.New("not listening")
		}
		c, err := h.ln.Accept()
		if err != nil {
			return "", err
		}
		return h.add(c), nil
	case "dial", "dialmp":
		d := net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}
		d.SetMultipathTCP(args[0] == "dialmp")
		c, err := d.Dial(args[1], args[2])
		if err != nil {
			return "", err
		}
		return h.add(c), nil
	case "udp":
		laddr, err := net.ResolveUDPAddr(args[1], args[2])
		if err != nil {
			return "", err
		}
		raddr, err := net.ResolveUDPAddr(args[1], args[3])
		if err != nil {
			return "", err
		}
		c, err := net.DialUDP(args[1], laddr, raddr)
		if err != nil {
			return "", err
		}
		return h.add(c), nil
	}
	if args[0] == "close" {
		return "", h.drop(args[1])
	}
	c, err := h.get(args[1])
	if err != nil {
		return "", err
	}
	if args[0] == "mptcp" {
		tc, ok := c.(*net.TCPConn)
		if !ok {
			return "", errors.New("not a TCP connection")
		}
		on, err := tc.MultipathTCP()
		return strconv.FormatBool(on), err
	}
	count, err1 := strconv.Atoi(args[2])
	size, err2 := strconv.Atoi(args[3])
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	switch args[0] {
	case "write":
		buf := pattern(size)
		for i := range count {
			if _, err := c.Write(buf); err != nil {
				return "", fmt.Errorf("write %d of %d: %w", i+1, count, err)
			}
		}
		return "", nil
	default: // read
		if _, ok := c.(*net.UDPConn); ok {
			buf := make([]byte, size+1)
			for i := range count {
				n, err := c.Read(buf)
				if err != nil || n != size {
					return "", fmt.Errorf("datagram %d of %d: %d bytes, %v", i+1, count, n, err)
				}
			}
			return "", nil
		}
		_, err := io.ReadFull(c, make([]byte, count*size))
		return "", err
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// inside is the running helper.
type inside = helperProc

// startInside runs the helper in namespace e, born in the cgroup dir,
// under the name pktcg-inside.
func startInside(t *testing.T, e testnet.End, dir string) *inside {
	t.Helper()
	return startHelperProc(t, e, dir, cgHelperComm, cgHelperEnv)
}

// makeCgroupTree creates <cgroup v2 mount>/pktcg-<random>/child, removed
// when the test ends.
func makeCgroupTree(t *testing.T) (parent, child string) {
	t.Helper()
	parent, dirs := testnet.MakeCgroups(t, "pktcg", "child")
	return parent, dirs["child"]
}

// cgroupPrograms lists the programs attached directly to the cgroup dir at
// each of cgroup mode's three hooks.
func cgroupPrograms(t *testing.T, dir string) map[ebpf.AttachType][]ebpf.ProgramID {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[ebpf.AttachType][]ebpf.ProgramID{}
	for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInetIngress, ebpf.AttachCGroupInetEgress, ebpf.AttachCGroupInetSockCreate} {
		res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: at})
		if err != nil {
			t.Fatalf("query %s programs of %s: %v", at, dir, err)
		}
		for _, p := range res.Programs {
			out[at] = append(out[at], p.ID)
		}
	}
	return out
}

// wantNothingAttached polls briefly (links are released with the process's
// last file descriptor) and fails if a program is still on the cgroup.
func wantNothingAttached(t *testing.T, dir, after string) {
	t.Helper()
	begin := time.Now()
	var left map[ebpf.AttachType][]ebpf.ProgramID
	for deadline := begin.Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = cgroupPrograms(t, dir)
		n := 0
		for _, ids := range left {
			n += len(ids)
		}
		if n == 0 {
			t.Logf("after %s: no program on %s (checked %v after exit)", after, dir, time.Since(begin).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still attached to %s: %v", after, dir, left)
		}
	}
}

// ethtoolValue and ethtoolIfreq are struct ethtool_value and the struct
// ifreq that carries a pointer to it (linux/ethtool.h, linux/if.h).
type ethtoolValue struct{ cmd, data uint32 }

type ethtoolIfreq struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// offloadsOff turns TSO, GSO and GRO off on e's veth, so that every frame
// on it is one packet on the wire.
func offloadsOff(t *testing.T, e testnet.End) {
	t.Helper()
	err := e.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, cmd := range []uint32{unix.ETHTOOL_STSO, unix.ETHTOOL_SGSO, unix.ETHTOOL_SGRO} {
			v := &ethtoolValue{cmd: cmd}
			ifr := &ethtoolIfreq{data: unsafe.Pointer(v)}
			copy(ifr.name[:], e.Link)
			if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(ifr))); errno != 0 {
				return fmt.Errorf("ethtool command %#x on %s: %w", cmd, e.Link, errno)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// flowID is one direction of one flow.
type flowID struct {
	proto    string // "TCP" or "UDP"
	src, dst netip.AddrPort
}

func (f flowID) reverse() flowID { return flowID{f.proto, f.dst, f.src} }

func (f flowID) String() string { return fmt.Sprintf("%s %s -> %s", f.proto, f.src, f.dst) }

// tally is what the capture saw of one direction of a flow.
type tally struct {
	packets, bytes uint64 // IP packets and their total length
	fin            bool
	finEnd         uint32 // sequence number just after the FIN
	ack            bool
	lastAck        uint32
}

// sniffer captures every frame on one veth with an AF_PACKET socket.
type sniffer struct {
	fd    int
	mu    sync.Mutex
	flows map[flowID]*tally
	maxL3 int // the largest IP packet seen
	stop  chan struct{}
	done  chan error
}

func startSniffer(t *testing.T, e testnet.End) *sniffer {
	t.Helper()
	proto := int(htons(unix.ETH_P_ALL))
	s := &sniffer{flows: map[flowID]*tally{}, stop: make(chan struct{}), done: make(chan error, 1)}
	err := e.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		s.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: e.Index}); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
			return err
		}
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		t.Fatalf("open a packet socket on %s: %v", e.Link, err)
	}
	go s.loop(e.Index)
	t.Cleanup(func() { s.close() })
	return s
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *sniffer) loop(ifindex int) {
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-s.stop:
			s.done <- nil
			return
		default:
		}
		n, from, err := unix.Recvfrom(s.fd, buf, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			s.done <- err
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Ifindex != ifindex || n > len(buf) {
			continue
		}
		s.add(buf[:n])
	}
}

// add counts one frame under its flow, as gopacket decodes it.
func (s *sniffer) add(frame []byte) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	var (
		src, dst netip.Addr
		l3       int
	)
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		l3 = int(ip.Length)
	case *layers.IPv6:
		src, _ = netip.AddrFromSlice(ip.SrcIP.To16())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To16())
		l3 = 40 + int(ip.Length)
	default:
		return
	}
	var id flowID
	var tcp *layers.TCP
	switch l4 := pkt.TransportLayer().(type) {
	case *layers.TCP:
		id = flowID{"TCP", netip.AddrPortFrom(src, uint16(l4.SrcPort)), netip.AddrPortFrom(dst, uint16(l4.DstPort))}
		tcp = l4
	case *layers.UDP:
		id = flowID{"UDP", netip.AddrPortFrom(src, uint16(l4.SrcPort)), netip.AddrPortFrom(dst, uint16(l4.DstPort))}
	default:
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxL3 = max(s.maxL3, l3)
	tl := s.flows[id]
	if tl == nil {
		tl = &tally{}
		s.flows[id] = tl
	}
	tl.packets++
	tl.bytes += uint64(l3)
	if tcp != nil {
		if tcp.FIN {
			tl.fin, tl.finEnd = true, tcp.Seq+uint32(len(tcp.Payload))+1
		}
		if tcp.ACK {
			tl.ack, tl.lastAck = true, tcp.Ack
		}
	}
}

func (s *sniffer) get(id flowID) tally {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tl := s.flows[id]; tl != nil {
		return *tl
	}
	return tally{}
}

// waitClosed waits until the capture has seen both FINs of the TCP
// connection and the ACK of each: its last packet.
func (s *sniffer) waitClosed(t *testing.T, id flowID) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		a, b := s.get(id), s.get(id.reverse())
		if a.fin && b.fin && a.ack && b.ack && a.lastAck == b.finEnd && b.lastAck == a.finEnd {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the capture saw no complete close within 10s (%+v / %+v)", id, a, b)
		}
	}
}

// close stops the capture and fails if the kernel dropped any frame.
func (s *sniffer) close() (drops uint32, err error) {
	select {
	case <-s.stop:
		return 0, nil
	default:
	}
	close(s.stop)
	err = <-s.done
	st, serr := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	unix.Close(s.fd)
	if serr != nil {
		return 0, errors.Join(err, serr)
	}
	return st.Drops, err
}

// rowID is the flow of a report row.
func rowID(r testnet.Row) flowID {
	a, _ := netip.ParseAddr(r.SrcIP)
	b, _ := netip.ParseAddr(r.DstIP)
	return flowID{r.Proto, netip.AddrPortFrom(a, r.SrcPort), netip.AddrPortFrom(b, r.DstPort)}
}

// mptcpEnabled reports whether e's namespace lets sockets use MPTCP.
func mptcpEnabled(t *testing.T, e testnet.End) bool {
	t.Helper()
	out, err := e.Command("cat", "/proc/sys/net/mptcp/enabled").Output()
	return err == nil && strings.TrimSpace(string(out)) == "1"
}

// acceptIn accepts one connection on a listener of the test process.
func acceptIn(t *testing.T, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	if err := ln.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func listenTCP(t *testing.T, e testnet.End, network string, addr netip.Addr) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	err := e.Do(func() (err error) {
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err = lc.Listen(context.Background(), network, netip.AddrPortFrom(addr, 0).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

func dialTCP(t *testing.T, e testnet.End, network string, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	var c net.Conn
	err := e.Do(func() (err error) {
		d := net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}
		c, err = d.Dial(network, to.String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// exchangeTCP runs one connection with the helper's end hid: the helper
// sends up bytes, the outside end sends down bytes back, then the helper
// closes first and the outside end closes on EOF. The helper closing first
// makes the last packet its ACK of the outside FIN, which it counts before
// sending; so once the capture has seen that ACK, the tool has counted the
// whole connection.
func exchangeTCP(t *testing.T, h *inside, hid string, out *net.TCPConn, up, down int) {
	t.Helper()
	if err := out.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// One write: TCP builds GSO skbs of several segments from it.
	h.call(t, "write %s 1 %d", hid, up)
	if _, err := io.ReadFull(out, make([]byte, up)); err != nil {
		t.Fatalf("outside end read: %v", err)
	}
	if _, err := out.Write(pattern(down)); err != nil {
		t.Fatal(err)
	}
	h.call(t, "read %s 1 %d", hid, down)
	h.call(t, "close %s", hid)
	if n, err := out.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("outside end: want EOF after the helper closed, got %d bytes, %v", n, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func addrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// TestE2ECgroup runs the tool on a cgroup whose child holds the helper and
// checks every row of the report against the capture on B's veth: exact
// packets and IP bytes in both directions of five flows (TCP over IPv4 that
// was connected before the tool started, TCP over IPv4 accepted on a
// listener that predates the tool, TCP over IPv6 opened by the helper, UDP
// over IPv4 and IPv6), each row carrying the helper's PID, name and cgroup,
// one row per direction. Traffic between two sockets of the test process,
// outside the cgroup, crosses the same veth and must not appear.
func TestE2ECgroup(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	offloadsOff(t, p.A)
	offloadsOff(t, p.B)
	parent, child := makeCgroupTree(t)
	h := startInside(t, p.A, child)

	// Before the tool starts: a listener, and a connection accepted on it.
	lport := h.call(t, "listen tcp4 %s", netip.AddrPortFrom(p.A.IPv4, 0))[0]
	lAddr := addrPort(t, p.A.IPv4.String()+":"+lport)
	waitP := h.send(t, "accept")
	outP := dialTCP(t, p.B, "tcp4", lAddr)
	resP := waitP()
	pid := h.pid

	tl := testnet.StartTool(t, p.B, bin, "-c", parent, "-t", "0", "-j")
	if got := cgroupPrograms(t, parent); len(got[ebpf.AttachCGroupInetIngress]) != 1 ||
		len(got[ebpf.AttachCGroupInetEgress]) != 1 || len(got[ebpf.AttachCGroupInetSockCreate]) != 1 {
		t.Fatalf("while running, the programs on %s are %v; want one per hook", parent, got)
	}
	sn := startSniffer(t, p.B)

	type flowCase struct {
		name  string
		up    flowID // helper -> outside
		proto string
	}
	var cases []flowCase

	// 1. The connection from before start-up (its socket was seeded).
	upP := flowID{"TCP", addrPort(t, resP[1]), addrPort(t, resP[2])}
	before, err := p.A.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	exchangeTCP(t, h, resP[0], outP, 40_000, 25_000)
	after, err := p.A.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	// The hooks must have seen GSO skbs, or the segment arithmetic went
	// untested: IP handed fewer skbs to the device than TCP sent segments.
	skbs, segs := after["Ip.OutRequests"]-before["Ip.OutRequests"], after["Tcp.OutSegs"]-before["Tcp.OutSegs"]
	t.Logf("connection 1 in A: TCP sent %d segments in %d IP skbs", segs, skbs)
	if skbs >= segs {
		t.Errorf("A's IP sent %d skbs for %d TCP segments: no GSO skb reached the egress hook", skbs, segs)
	}
	cases = append(cases, flowCase{"TCP/IPv4 connected before start", upP, "TCP"})

	// 2. Accepted now, on the listener from before start-up: the owner
	//    comes from the listener's storage, cloned to the child socket.
	//    Go's listeners are MPTCP sockets by default (since Go 1.24), so
	//    here the storage the child inherits is the listening subflow's,
	//    which took its owner from the MPTCP socket that was seeded.
	waitS := h.send(t, "accept")
	outS := dialTCP(t, p.B, "tcp4", lAddr)
	resS := waitS()
	upS := flowID{"TCP", addrPort(t, resS[1]), addrPort(t, resS[2])}
	exchangeTCP(t, h, resS[0], outS, 15_000, 8_000)
	cases = append(cases, flowCase{"TCP/IPv4 accepted after start", upS, "TCP"})

	// 3. Opened by the helper, over IPv6 (sock_create records its owner).
	lnC := listenTCP(t, p.B, "tcp6", p.B.IPv6)
	resC := h.call(t, "dial tcp6 %s", lnC.Addr().(*net.TCPAddr).AddrPort())
	outC := acceptIn(t, lnC)
	upC := flowID{"TCP", addrPort(t, resC[1]), addrPort(t, resC[2])}
	exchangeTCP(t, h, resC[0], outC, 200_000, 100_000)
	cases = append(cases, flowCase{"TCP/IPv6 opened after start", upC, "TCP"})

	// 4. MPTCP from the helper to an MPTCP listener: the packets pass
	//    through a subflow that the kernel creates, with no sock_create.
	if mptcpEnabled(t, p.A) && mptcpEnabled(t, p.B) {
		lnM := listenTCP(t, p.B, "tcp4", p.B.IPv4)
		resM := h.call(t, "dialmp tcp4 %s", lnM.Addr().(*net.TCPAddr).AddrPort())
		outM := acceptIn(t, lnM)
		if on := h.call(t, "mptcp %s", resM[0]); on[0] != "true" {
			t.Fatalf("the helper's MPTCP connection fell back to TCP")
		}
		upM := flowID{"TCP", addrPort(t, resM[1]), addrPort(t, resM[2])}
		exchangeTCP(t, h, resM[0], outM, 30_000, 10_000)
		cases = append(cases, flowCase{"MPTCP/IPv4 opened after start", upM, "TCP"})
	} else {
		t.Log("MPTCP is off in the test namespaces (net.mptcp.enabled): no MPTCP connection checked")
	}

	// 5, 6. UDP both ways, IPv4 and IPv6: n datagrams of size up, m down.
	udpTruth := map[flowID]tally{}
	for _, u := range []struct {
		name             string
		network          string
		local, remote    netip.Addr
		n, size, m, back int
	}{
		{"UDP/IPv4", "udp4", p.A.IPv4, p.B.IPv4, 7, 300, 5, 200},
		{"UDP/IPv6", "udp6", p.A.IPv6, p.B.IPv6, 3, 100, 2, 50},
	} {
		out, err := p.B.ListenUDP(netip.AddrPortFrom(u.remote, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		res := h.call(t, "udp %s %s %s", u.network, netip.AddrPortFrom(u.local, 0), out.LocalAddr().(*net.UDPAddr).AddrPort())
		up := flowID{"UDP", addrPort(t, res[1]), addrPort(t, res[2])}
		h.call(t, "write %s %d %d", res[0], u.n, u.size)
		if got, err := testnet.ReadUDP(out, u.n, u.size, 5*time.Second); err != nil {
			t.Fatalf("%s: %d of %d datagrams arrived: %v", u.name, got, u.n, err)
		}
		for range u.m {
			if _, err := out.WriteToUDPAddrPort(pattern(u.back), up.src); err != nil {
				t.Fatal(err)
			}
		}
		h.call(t, "read %s %d %d", res[0], u.m, u.back)
		h.call(t, "close %s", res[0])
		// UDP's ground truth is also plain arithmetic: IP and UDP headers
		// around each payload; checked against the capture once it ends.
		ipHdr := 20
		if u.local.Is6() {
			ipHdr = 40
		}
		udpTruth[up] = tally{packets: uint64(u.n), bytes: uint64(u.n * (ipHdr + 8 + u.size))}
		udpTruth[up.reverse()] = tally{packets: uint64(u.m), bytes: uint64(u.m * (ipHdr + 8 + u.back))}
		cases = append(cases, flowCase{u.name, up, "UDP"})
	}

	// Outside the cgroup: the test process talks to itself across the
	// same veth, over UDP and TCP.
	var noise []flowID
	{
		rx, err := p.B.ListenUDP(netip.AddrPortFrom(p.B.IPv4, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		tx, err := p.A.DialUDP(netip.AddrPortFrom(p.A.IPv4, 0), rx.LocalAddr().(*net.UDPAddr).AddrPort())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		if err := testnet.SendUDP(tx, pattern(120), 4); err != nil {
			t.Fatal(err)
		}
		if got, err := testnet.ReadUDP(rx, 4, 120, 5*time.Second); err != nil {
			t.Fatalf("outside UDP: %d of 4 arrived: %v", got, err)
		}
		noise = append(noise, flowID{"UDP", tx.LocalAddr().(*net.UDPAddr).AddrPort(), rx.LocalAddr().(*net.UDPAddr).AddrPort()})

		ln := listenTCP(t, p.B, "tcp4", p.B.IPv4)
		c := dialTCP(t, p.A, "tcp4", ln.Addr().(*net.TCPAddr).AddrPort())
		s := acceptIn(t, ln)
		if _, err := c.Write(pattern(5000)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, make([]byte, 5000)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		s.Close()
		id := flowID{"TCP", c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()}
		sn.waitClosed(t, id)
		noise = append(noise, id)
	}

	for _, c := range cases {
		if c.proto == "TCP" {
			sn.waitClosed(t, c.up)
		}
	}
	stopTool(t, tl, syscall.SIGTERM)
	drops, err := sn.close()
	if err != nil || drops != 0 {
		t.Fatalf("the capture on %s failed (%v) or dropped %d frames: no ground truth", p.B.Link, err, drops)
	}
	if sn.maxL3 > 1500 {
		t.Fatalf("the capture saw a %d-byte IP packet, above the MTU: offloads are on, frames are not wire packets", sn.maxL3)
	}
	wantNothingAttached(t, parent, "SIGTERM")
	for id, want := range udpTruth {
		if got := sn.get(id); got.packets != want.packets || got.bytes != want.bytes {
			t.Errorf("%s: the capture saw %d packets / %d bytes, the datagrams sent make %d / %d", id, got.packets, got.bytes, want.packets, want.bytes)
		}
	}

	rows, err := testnet.ParseRows(tl.Stdout())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[flowID][]testnet.Row{}
	for _, r := range rows {
		byID[rowID(r)] = append(byID[rowID(r)], r)
	}
	for _, c := range cases {
		for _, dir := range []struct {
			what string
			id   flowID
		}{{"up (egress)", c.up}, {"down (ingress)", c.up.reverse()}} {
			truth := sn.get(dir.id)
			got := byID[dir.id]
			if len(got) != 1 {
				t.Errorf("%s %s: %d rows for %s, want exactly 1: %+v", c.name, dir.what, len(got), dir.id, got)
				continue
			}
			r := got[0]
			if r.PID != uint32(pid) || r.Comm != cgHelperComm || r.Cgroup != child {
				t.Errorf("%s %s: owner pid %d comm %q cgroup %q, want %d %q %q", c.name, dir.what, r.PID, r.Comm, r.Cgroup, pid, cgHelperComm, child)
			}
			if r.Packets != truth.packets || r.Bytes != truth.bytes {
				t.Errorf("%s %s: report %d packets / %d bytes, capture %d / %d", c.name, dir.what, r.Packets, r.Bytes, truth.packets, truth.bytes)
				continue
			}
			t.Logf("%s %s: %d packets / %d bytes, equal to the capture on %s", c.name, dir.what, r.Packets, r.Bytes, p.B.Link)
		}
	}
	for _, id := range append(noise, noise[0].reverse(), noise[1].reverse()) {
		if sn.get(id).packets == 0 && id.src.Addr() == p.A.IPv4 {
			t.Errorf("outside traffic %s never crossed the veth: the check below proves nothing", id)
		}
		if got := byID[id]; len(got) != 0 {
			t.Errorf("traffic of two processes outside the cgroup is in the report: %+v", got)
		}
	}
	if len(rows) != 2*len(cases) {
		t.Errorf("report has %d rows, want %d (two per flow):\n%s", len(rows), 2*len(cases), tl.Stdout())
	}
	wantBitrates(t, tl, rows)
}

// TestE2ECgroupEndings checks that nothing stays on the cgroup however the
// tool ends, and that a normal end prints the plain report with the owner.
func TestE2ECgroupEndings(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	parent, child := makeCgroupTree(t)
	h := startInside(t, p.A, child)
	out, err := p.B.ListenUDP(netip.AddrPortFrom(p.B.IPv4, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	t.Run("timeout", func(t *testing.T) {
		tl := testnet.StartTool(t, p.B, bin, "-c", parent, "-t", "3s")
		res := h.call(t, "udp udp4 %s %s", netip.AddrPortFrom(p.A.IPv4, 0), out.LocalAddr().(*net.UDPAddr).AddrPort())
		h.call(t, "write %s 2 64", res[0])
		if got, err := testnet.ReadUDP(out, 2, 64, 5*time.Second); err != nil {
			t.Fatalf("%d of 2 datagrams arrived: %v", got, err)
		}
		code, err := tl.Wait(toolWait)
		if err != nil || code != 0 {
			t.Fatalf("exit %d, %v\nstderr:\n%s", code, err, tl.Stderr())
		}
		wantNothingAttached(t, parent, "the timeout")
		// Two datagrams of 64 bytes: 2 x (20 + 8 + 64) bytes of IP.
		tail := fmt.Sprintf(", packets: 2, bytes: 184, proto: UDP, src: %s, dst: %s, pid: %d, comm: %s, cgroup: %s\n",
			res[1], res[2], h.pid, cgHelperComm, child)
		const summary = "summary: packets: 2, bytes: 184, rows: 1, flows beyond --top: 0, flows not tracked (flow table full): about 0\n"
		if lines := strings.SplitAfter(tl.Stdout(), "\n"); len(lines) != 3 || lines[2] != "" || !strings.HasPrefix(lines[0], "bitrate: ") || !strings.HasSuffix(lines[0], tail) || lines[1] != summary {
			t.Errorf("plain report:\n%q\nwant one line ending in\n%q\nand the summary\n%q", tl.Stdout(), tail, summary)
		}
		h.call(t, "close %s", res[0])
	})
	t.Run("SIGKILL", func(t *testing.T) {
		tl := testnet.StartTool(t, p.B, bin, "-c", parent, "-t", "0")
		if got := cgroupPrograms(t, parent); len(got[ebpf.AttachCGroupInetIngress])+len(got[ebpf.AttachCGroupInetEgress])+len(got[ebpf.AttachCGroupInetSockCreate]) != 3 {
			t.Fatalf("while running, the programs on %s are %v; want one per hook", parent, got)
		}
		if err := tl.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code, err := tl.Wait(toolWait); err != nil || code != -1 {
			t.Fatalf("exit %d, %v; want killed", code, err)
		}
		wantNothingAttached(t, parent, "SIGKILL")
	})
}

// TestE2ECgroupBadInput checks that a bad -c names its problem in one
// line, and that -c with another mode is a usage error.
func TestE2ECgroupBadInput(t *testing.T) {
	bin := e2eBinary(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		code  int
		parts []string
	}{
		{"missing", []string{"-c", filepath.Join(tmp, "nope")}, 1, []string{filepath.Join(tmp, "nope"), "does not exist", "cgroup v2 is mounted at"}},
		{"file", []string{"-c", file}, 1, []string{file, "is a file, not a directory"}},
		{"not a cgroup", []string{"-c", tmp}, 1, []string{tmp, "is not a cgroup v2 directory"}},
		{"with -x", []string{"-c", tmp, "-x"}, 2, []string{"-x (--xdp) and -c (--cgroup)", "give only one"}},
		{"with -i", []string{"-c", tmp, "-i", "lo"}, 2, []string{"-i (--iface) does not apply to -c (--cgroup)"}},
	}
	if v1 := cgroups.Mounts("cgroup"); len(v1) > 0 {
		cases = append(cases, struct {
			name  string
			args  []string
			code  int
			parts []string
		}{"cgroup v1", []string{"-c", v1[0]}, 1, []string{v1[0], "cgroup v1 hierarchy"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runBinary(t, exec.Command(bin, append(c.args, "-t", "1s")...), nil)
			r.want(t, c.code, c.parts...)
		})
	}
}
