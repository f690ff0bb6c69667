package main

// Process mode (-k) end to end. Three helper processes (this test binary,
// re-executed under the names pktproc-srv, pktproc-cli1 and pktproc-cli2)
// are born in three child cgroups that the test creates: the server in
// namespace B, the two clients in namespace A. Each client exchanges a
// known number of bytes with the server over TCP (IPv4 and IPv6), UDP
// (a connected socket and an unconnected one, to the server's one
// unconnected wildcard socket) and ICMP (ping and raw sockets, both
// families), and the helpers count their own successful send and receive
// system calls. A TCP connection and a UDP socket of client 1 exist before
// the tool starts. Every row of those three processes must be one the test
// expects, with the right PID, name and cgroup, and exact packets and
// bytes in both directions.

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
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testnet"
)

// procHelperEnv makes the test binary run as a process-mode helper.
const procHelperEnv = "PKTSTAT_E2E_PROCESS_HELPER"

// The helper mode has to take over before the test framework starts.
func init() {
	if os.Getenv(procHelperEnv) == "1" {
		os.Exit(runProcHelper(os.Stdin, os.Stdout))
	}
}

// runProcHelper serves the commands of procHelper.do until its input closes.
func runProcHelper(in io.Reader, out io.Writer) int {
	h := &procHelper{connTable: newConnTable()}
	return serveCommands(in, out, h.do)
}

type procHelper struct {
	connTable
}

// do runs one command. Counts in the answers are successful system
// calls, the ground truth for process mode's TCP packets.
//
//	listen NETWORK ADDR            TCP listener; answers its port
//	adopt                          takes descriptor 3 as its TCP listener
//	accept                         answers ID LOCAL REMOTE
//	dial NETWORK ADDR              TCP connection; answers ID LOCAL REMOTE
//	udp NETWORK LOCAL [REMOTE]     UDP socket, connected with REMOTE; answers ID LOCAL
//	write ID COUNT SIZE            COUNT writes of SIZE bytes; answers the write calls
//	read ID BYTES                  reads BYTES bytes; answers the read calls that returned data
//	sendto ID ADDR COUNT SIZE      COUNT datagrams of SIZE bytes to ADDR
//	recv ID COUNT SIZE             COUNT datagrams, each of SIZE bytes
//	serve ID COUNT REPLY           COUNT datagrams from anyone, each answered with REPLY bytes
//	ping NETWORK DST COUNT SIZE    COUNT echo requests of SIZE data bytes, each answered;
//	                               NETWORK as icmp.ListenPacket takes it ("udp4" is a ping socket)
//	close ID
func (h *procHelper) do(args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("empty command")
	}
	ints := func(from int) ([]int, error) {
		var out []int
		for _, a := range args[from:] {
			n, err := strconv.Atoi(a)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", a, err)
			}
			out = append(out, n)
		}
		return out, nil
	}
	conn := func() (net.Conn, error) {
		if len(args) < 2 {
			return nil, errors.New("no connection given")
		}
		c, err := h.get(args[1])
		if err != nil {
			return nil, err
		}
		return c, c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	switch args[0] {
	case "listen":
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err := lc.Listen(context.Background(), args[1], args[2])
		if err != nil {
			return "", err
		}
		h.ln = ln
		return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
	case "adopt":
		ln, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			return "", err
		}
		h.ln = ln
		return "", nil
	case "accept":
		c, err := h.ln.Accept()
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s %s", h.put(c), c.LocalAddr(), c.RemoteAddr()), nil
	case "dial":
		d := net.Dialer{Timeout: 5 * time.Second}
		d.SetMultipathTCP(false)
		c, err := d.Dial(args[1], args[2])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s %s", h.put(c), c.LocalAddr(), c.RemoteAddr()), nil
	case "udp":
		laddr, err := net.ResolveUDPAddr(args[1], args[2])
		if err != nil {
			return "", err
		}
		var c *net.UDPConn
		if len(args) > 3 {
			raddr, err := net.ResolveUDPAddr(args[1], args[3])
			if err != nil {
				return "", err
			}
			c, err = net.DialUDP(args[1], laddr, raddr)
			if err != nil {
				return "", err
			}
		} else if c, err = net.ListenUDP(args[1], laddr); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s", h.put(c), c.LocalAddr()), nil
	case "write":
		c, err := conn()
		if err != nil {
			return "", err
		}
		n, err := ints(2)
		if err != nil {
			return "", err
		}
		calls, err := rawWrite(c, n[0], pattern(n[1]))
		return strconv.Itoa(calls), err
	case "read":
		c, err := conn()
		if err != nil {
			return "", err
		}
		n, err := ints(2)
		if err != nil {
			return "", err
		}
		calls, err := rawRead(c, n[0])
		return strconv.Itoa(calls), err
	case "sendto":
		c, err := conn()
		if err != nil {
			return "", err
		}
		to, err := netip.ParseAddrPort(args[2])
		if err != nil {
			return "", err
		}
		n, err := ints(3)
		if err != nil {
			return "", err
		}
		for i := range n[0] {
			if _, err := c.(*net.UDPConn).WriteToUDPAddrPort(pattern(n[1]), to); err != nil {
				return "", fmt.Errorf("datagram %d: %w", i+1, err)
			}
		}
		return strconv.Itoa(n[0]), nil
	case "recv":
		c, err := conn()
		if err != nil {
			return "", err
		}
		n, err := ints(2)
		if err != nil {
			return "", err
		}
		buf := make([]byte, n[1]+1)
		for i := range n[0] {
			got, err := c.Read(buf)
			if err != nil || got != n[1] {
				return "", fmt.Errorf("datagram %d of %d: %d bytes, %v", i+1, n[0], got, err)
			}
		}
		return strconv.Itoa(n[0]), nil
	case "serve":
		c, err := conn()
		if err != nil {
			return "", err
		}
		n, err := ints(2)
		if err != nil {
			return "", err
		}
		u := c.(*net.UDPConn)
		buf := make([]byte, 1<<16)
		total := 0
		for i := range n[0] {
			got, from, err := u.ReadFromUDPAddrPort(buf)
			if err != nil {
				return "", fmt.Errorf("datagram %d of %d: %w", i+1, n[0], err)
			}
			total += got
			if _, err := u.WriteToUDPAddrPort(pattern(n[1]), from); err != nil {
				return "", err
			}
		}
		return strconv.Itoa(total), nil
	case "ping":
		n, err := ints(3)
		if err != nil {
			return "", err
		}
		return "", ping(args[1], args[2], n[0], n[1])
	case "close":
		if len(args) < 2 {
			return "", errors.New("no connection given")
		}
		return "", h.drop(args[1])
	}
	return "", fmt.Errorf("bad command %q", args)
}

// rawWrite writes buf count times and returns how many write system calls
// moved data (a short write takes more than one).
func rawWrite(c net.Conn, count int, buf []byte) (int, error) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	calls := 0
	for range count {
		off := 0
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			for off < len(buf) {
				n, err := unix.Write(int(fd), buf[off:])
				if errors.Is(err, unix.EAGAIN) {
					return false
				}
				if err != nil {
					werr = err
					return true
				}
				calls++
				off += n
			}
			return true
		})
		if err = errors.Join(err, werr); err != nil {
			return calls, err
		}
	}
	return calls, nil
}

// rawRead reads exactly total bytes and returns how many read system calls
// returned data.
func rawRead(c net.Conn, total int) (int, error) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<16)
	calls, got := 0, 0
	var rerr error
	for got < total && rerr == nil {
		err := rc.Read(func(fd uintptr) bool {
			n, err := unix.Read(int(fd), buf[:min(len(buf), total-got)])
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false
			case err != nil:
				rerr = err
			case n == 0:
				rerr = io.ErrUnexpectedEOF
			default:
				calls++
				got += n
			}
			return true
		})
		if err != nil {
			return calls, err
		}
	}
	return calls, rerr
}

// ping sends count echo requests with size bytes of data to dst, one at a
// time, each after the previous reply. Raw sockets filter everything but
// echo replies in the kernel, so that they queue nothing else.
func ping(network, dst string, count, size int) error {
	v6 := strings.HasSuffix(network, "6") || strings.HasPrefix(network, "ip6")
	c, err := icmp.ListenPacket(network, "")
	if err != nil {
		return err
	}
	defer c.Close()
	var to net.Addr = &net.IPAddr{IP: net.ParseIP(dst)}
	if strings.HasPrefix(network, "udp") {
		to = &net.UDPAddr{IP: net.ParseIP(dst)}
	}
	req, rep, proto := icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply), 1
	if v6 {
		req, rep, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	switch network {
	case "ip4:icmp":
		var f ipv4.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv4.ICMPTypeEchoReply)
		if err := c.IPv4PacketConn().SetICMPFilter(&f); err != nil {
			return err
		}
	case "ip6:ipv6-icmp":
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		if err := c.IPv6PacketConn().SetICMPFilter(&f); err != nil {
			return err
		}
	}
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		m := icmp.Message{Type: req, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: seq, Data: pattern(size)}}
		b, err := m.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(b, to); err != nil {
			return fmt.Errorf("echo request %d: %w", seq, err)
		}
		if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
			return err
		}
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("echo reply %d: %w", seq, err)
		}
		got, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			return err
		}
		if echo, ok := got.Body.(*icmp.Echo); !ok || got.Type != rep || echo.Seq != seq {
			return fmt.Errorf("echo request %d: answered with %+v", seq, got)
		}
	}
	return nil
}

// procHelperRun is a running helper.
type procHelperRun = helperProc

// startProcHelper runs a helper named name (its comm) in namespace e, born
// in the cgroup dir.
func startProcHelper(t *testing.T, e testnet.End, dir, name string) *procHelperRun {
	t.Helper()
	return startHelperProc(t, e, dir, name, procHelperEnv)
}

// callInt runs a command whose answer is one number.
func (h *helperProc) callInt(t *testing.T, format string, args ...any) uint64 {
	t.Helper()
	f := h.call(t, format, args...)
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		t.Fatalf("%s: %q answered %q", h.name, fmt.Sprintf(format, args...), f)
	}
	return n
}

// makeProcCgroups creates <cgroup v2 mount>/pktproc-<random>/{names...}
// and removes them when the test ends, after the processes in them.
func makeProcCgroups(t *testing.T, names ...string) map[string]string {
	t.Helper()
	_, dirs := testnet.MakeCgroups(t, "pktproc", names...)
	return dirs
}

// procRowKey is one row of process mode: a direction of a flow, and its owner.
type procRowKey struct {
	proto    string
	src, dst netip.AddrPort
	dir      string
	pid      uint32
}

func (k procRowKey) String() string {
	return fmt.Sprintf("pid %d %s %s %s -> %s", k.pid, k.dir, k.proto, k.src, k.dst)
}

// procKey is the row key of a report row in process mode.
func procKey(r testnet.Row) procRowKey {
	a, _ := netip.ParseAddr(r.SrcIP)
	b, _ := netip.ParseAddr(r.DstIP)
	return procRowKey{r.Proto, netip.AddrPortFrom(a, r.SrcPort), netip.AddrPortFrom(b, r.DstPort), r.Dir, r.PID}
}

// procWant is what the test expects of one row.
type procWant struct {
	packets, bytes uint64
	owner          *procHelperRun
}

// expect records one direction of a flow as both of its ends see it: the
// sender's "out" row and the receiver's "in" row, each with its own
// packets (the system calls each side made) and the same bytes.
type procExpect map[procRowKey]procWant

func (e procExpect) add(proto string, src, dst netip.AddrPort, bytes uint64, from *procHelperRun, sends uint64, to *procHelperRun, recvs uint64) {
	if from != nil {
		e[procRowKey{proto, src, dst, "out", uint32(from.pid)}] = procWant{sends, bytes, from}
	}
	if to != nil {
		e[procRowKey{proto, src, dst, "in", uint32(to.pid)}] = procWant{recvs, bytes, to}
	}
}

func parseAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	// A dual-stack socket names an IPv4 peer as ::ffff:a.b.c.d; rows say IPv4.
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// TestE2EProcess is the end-to-end scenario; see the top of this file.
func TestE2EProcess(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	// Ping sockets need the group to be allowed, per namespace.
	p.A.Sysctl(t, "net.ipv4.ping_group_range=0 0")
	dirs := makeProcCgroups(t, "srv", "cli1", "cli2")
	srv := startProcHelper(t, p.B, dirs["srv"], "pktproc-srv")
	cli1 := startProcHelper(t, p.A, dirs["cli1"], "pktproc-cli1")
	cli2 := startProcHelper(t, p.A, dirs["cli2"], "pktproc-cli2")
	want := procExpect{}

	// Before the tool starts: the server listens (dual stack) and accepts
	// client 1's connection. Both ends exist before the tool does.
	lport := srv.call(t, "listen tcp %s", "[::]:0")[0]
	acc1 := srv.send(t, "accept")
	c1 := cli1.call(t, "dial tcp4 %s:%s", p.B.IPv4, lport)
	s1 := acc1()
	// And client 1 opens a UDP socket, whose datagrams only the start-up
	// walk of every process's files can attribute: no send or receive call
	// names a datagram socket's owner.
	u0 := cli1.call(t, "udp udp4 %s:0", p.A.IPv4)

	tl := testnet.StartTool(t, p.B, bin, "-k", "-t", "0", "-j")
	if !strings.Contains(tl.Stderr(), "mode=process/") {
		t.Fatalf("the start-up log does not name the backend:\n%s", tl.Stderr())
	}
	t.Logf("start-up log:\n%s", tl.Stderr())
	progs := toolPrograms(t, tl.PID())
	if len(progs) < 6 {
		t.Fatalf("the tool holds programs %v; want at least its 6 (sock_create, iterator, 2 tracepoints, 2 cgroup_skb)", progs)
	}

	// TCP over IPv4 on the connection from before start-up: 3 writes of
	// 7000 bytes up, 2 of 5000 down.
	c1src, c1dst := parseAddrPort(t, c1[1]), parseAddrPort(t, c1[2])
	sends := cli1.callInt(t, "write %s 3 7000", c1[0])
	reads := srv.callInt(t, "read %s 21000", s1[0])
	want.add("TCP", c1src, c1dst, 21000, cli1, sends, srv, reads)
	sends = srv.callInt(t, "write %s 2 5000", s1[0])
	reads = cli1.callInt(t, "read %s 10000", c1[0])
	want.add("TCP", c1dst, c1src, 10000, srv, sends, cli1, reads)

	// TCP over IPv6, accepted after start-up on the listener from before:
	// the accepted socket inherits the listener's owner, the server.
	acc2 := srv.send(t, "accept")
	c2 := cli2.call(t, "dial tcp6 [%s]:%s", p.B.IPv6, lport)
	s2 := acc2()
	c2src, c2dst := parseAddrPort(t, c2[1]), parseAddrPort(t, c2[2])
	sends = cli2.callInt(t, "write %s 4 3000", c2[0])
	reads = srv.callInt(t, "read %s 12000", s2[0])
	want.add("TCP", c2src, c2dst, 12000, cli2, sends, srv, reads)
	sends = srv.callInt(t, "write %s 1 9000", s2[0])
	reads = cli2.callInt(t, "read %s 9000", c2[0])
	want.add("TCP", c2dst, c2src, 9000, srv, sends, cli2, reads)

	// UDP: the server has one unconnected socket bound to the wildcard
	// address of both families. Client 1 sends over a connected IPv4
	// socket, client 2 with sendto over IPv6; each datagram is answered.
	us := srv.call(t, "udp udp [::]:0")
	uport := parseAddrPort(t, us[1]).Port()
	u1 := cli1.call(t, "udp udp4 %s:0 %s:%d", p.A.IPv4, p.B.IPv4, uport)
	u1src, u1dst := parseAddrPort(t, u1[1]), netip.AddrPortFrom(p.B.IPv4, uport)
	serve := srv.send(t, "serve %s 5 120", us[0])
	cli1.call(t, "write %s 5 300", u1[0])
	cli1.call(t, "recv %s 5 120", u1[0])
	if got := serve(); got[0] != "1500" {
		t.Fatalf("the server received %s bytes from client 1, want 1500", got[0])
	}
	want.add("UDP", u1src, u1dst, 5*300, cli1, 5, srv, 5)
	want.add("UDP", u1dst, u1src, 5*120, srv, 5, cli1, 5)

	// Client 1's socket from before start-up sends with sendto.
	u0src := parseAddrPort(t, u0[1])
	serve = srv.send(t, "serve %s 2 50", us[0])
	cli1.call(t, "sendto %s %s 2 400", u0[0], u1dst)
	cli1.call(t, "recv %s 2 50", u0[0])
	if got := serve(); got[0] != "800" {
		t.Fatalf("the server received %s bytes from client 1's older socket, want 800", got[0])
	}
	want.add("UDP", u0src, u1dst, 2*400, cli1, 2, srv, 2)
	want.add("UDP", u1dst, u0src, 2*50, srv, 2, cli1, 2)

	u2 := cli2.call(t, "udp udp6 [%s]:0", p.A.IPv6)
	u2src, u2dst := parseAddrPort(t, u2[1]), netip.AddrPortFrom(p.B.IPv6, uport)
	serve = srv.send(t, "serve %s 3 40", us[0])
	cli2.call(t, "sendto %s %s 3 700", u2[0], u2dst)
	cli2.call(t, "recv %s 3 40", u2[0])
	if got := serve(); got[0] != "2100" {
		t.Fatalf("the server received %s bytes from client 2, want 2100", got[0])
	}
	want.add("UDP", u2src, u2dst, 3*700, cli2, 3, srv, 3)
	want.add("UDP", u2dst, u2src, 3*40, srv, 3, cli2, 3)

	// ICMP, one pinger at a time (a raw socket sees every echo reply of
	// its namespace): the echo replies come from B's kernel, which is no
	// process, so only the clients have rows. A message is its 8-byte
	// header and its data.
	for _, pg := range []struct {
		h       *procHelperRun
		network string
		dst     netip.Addr
		n, size int
	}{
		{cli1, "udp4", p.B.IPv4, 4, 56},
		{cli1, "ip6:ipv6-icmp", p.B.IPv6, 3, 100},
		{cli2, "ip4:icmp", p.B.IPv4, 2, 200},
		{cli2, "udp6", p.B.IPv6, 5, 24},
	} {
		pg.h.call(t, "ping %s %s %d %d", pg.network, pg.dst, pg.n, pg.size)
		src := p.A.IPv4
		proto, req, rep := "ICMPv4", uint16(8), uint16(0)
		if pg.dst.Is6() {
			src, proto, req, rep = p.A.IPv6, "IPv6-ICMP", 128, 129
		}
		n, bytes := uint64(pg.n), uint64(pg.n*(8+pg.size))
		want.add(proto, netip.AddrPortFrom(src, req), netip.AddrPortFrom(pg.dst, 0), bytes, pg.h, n, nil, 0)
		want.add(proto, netip.AddrPortFrom(pg.dst, rep), netip.AddrPortFrom(src, 0), bytes, nil, 0, pg.h, n)
	}

	stopTool(t, tl, syscall.SIGTERM)
	wantProgramsGone(t, progs)

	rows := decodeProcRows(t, tl.Stdout())
	for _, r := range checkProcRows(t, rows, want, srv, cli1, cli2) {
		if strings.Contains(r.Proto, "ICMP") && r.Dir == "out" && (r.SrcIP == p.B.IPv4.String() || r.SrcIP == p.B.IPv6.String()) {
			// B's kernel answers the pings: no process owns that socket.
			t.Logf("kernel's %s (pid %d, comm %q, cgroup %q): %d packets / %d bytes", procKey(r), r.PID, r.Comm, r.Cgroup, r.Packets, r.Bytes)
		}
	}
}

// checkProcRows checks the helpers' rows against want: each wanted row
// once, with its helper's comm and cgroup and exact counts, and no other
// row of a helper. It returns the rows of other processes.
func checkProcRows(t *testing.T, rows []testnet.Row, want procExpect, helpers ...*procHelperRun) (others []testnet.Row) {
	t.Helper()
	byPID := map[uint32]*procHelperRun{}
	for _, h := range helpers {
		byPID[uint32(h.pid)] = h
	}
	seen := map[procRowKey]bool{}
	for _, r := range rows {
		h, ours := byPID[r.PID]
		if !ours {
			others = append(others, r)
			continue
		}
		k := procKey(r)
		w, wanted := want[k]
		if !wanted {
			t.Errorf("unexpected row of %s: %s: %d packets, %d bytes", h.name, k, r.Packets, r.Bytes)
			continue
		}
		if seen[k] {
			t.Errorf("two rows for %s", k)
		}
		seen[k] = true
		if r.Comm != h.name || r.Cgroup != h.cg {
			t.Errorf("%s: comm %q cgroup %q, want %q %q", k, r.Comm, r.Cgroup, h.name, h.cg)
		}
		if r.Packets != w.packets || r.Bytes != w.bytes {
			t.Errorf("%s: %d packets / %d bytes, want %d / %d", k, r.Packets, r.Bytes, w.packets, w.bytes)
			continue
		}
		t.Logf("%s (%s, %s): %d packets / %d bytes, as sent", k, r.Comm, r.Cgroup, r.Packets, r.Bytes)
	}
	for k, w := range want {
		if !seen[k] {
			t.Errorf("no row for %s (%s), want %d packets / %d bytes", k, w.owner.name, w.packets, w.bytes)
		}
	}
	return others
}

// TestE2EProcessWorker is a pre-fork server. The test process, the
// master, listens after the tool has started, so the listener and every
// socket accepted on it start with the master as owner; a worker that
// inherited the listener accepts and does all the I/O. TCP rows belong to
// the process that makes the calls: the worker, with its own name and
// cgroup.
func TestE2EProcessWorker(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	dirs := makeProcCgroups(t, "worker", "cli")
	tl := testnet.StartTool(t, p.B, bin, "-k", "-t", "0", "-j")

	var ln *net.TCPListener
	if err := p.B.Do(func() (err error) {
		ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: p.B.IPv4.AsSlice()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lf, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	worker := startHelperProcFiles(t, p.B, dirs["worker"], "pktproc-worker", procHelperEnv, []*os.File{lf})
	cli := startProcHelper(t, p.A, dirs["cli"], "pktproc-cli")
	worker.call(t, "adopt")
	accepted := worker.send(t, "accept")
	c := cli.call(t, "dial tcp4 %s", ln.Addr())
	s := accepted()

	want := procExpect{}
	src, dst := parseAddrPort(t, c[1]), parseAddrPort(t, c[2])
	sends := cli.callInt(t, "write %s 3 4000", c[0])
	reads := worker.callInt(t, "read %s 12000", s[0])
	want.add("TCP", src, dst, 12000, cli, sends, worker, reads)
	sends = worker.callInt(t, "write %s 2 6000", s[0])
	reads = cli.callInt(t, "read %s 12000", c[0])
	want.add("TCP", dst, src, 12000, worker, sends, cli, reads)

	stopTool(t, tl, syscall.SIGTERM)
	for _, r := range checkProcRows(t, decodeProcRows(t, tl.Stdout()), want, worker, cli) {
		if r.Proto == "TCP" && r.PID == uint32(os.Getpid()) {
			t.Errorf("the master has a TCP row, but the worker made every call: %s", procKey(r))
		}
	}
}

func decodeProcRows(t *testing.T, out string) []testnet.Row {
	t.Helper()
	rows, err := testnet.ParseRows(out)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// toolPrograms returns the IDs of the eBPF programs that process pid holds,
// through program and link descriptors, from /proc/PID/fdinfo.
func toolPrograms(t *testing.T, pid int) []ebpf.ProgramID {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[ebpf.ProgramID]bool{}
	var ids []ebpf.ProgramID
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			v, ok := strings.CutPrefix(line, "prog_id:")
			if !ok {
				continue
			}
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err == nil && !seen[ebpf.ProgramID(id)] {
				seen[ebpf.ProgramID(id)] = true
				ids = append(ids, ebpf.ProgramID(id))
			}
		}
	}
	return ids
}

// wantProgramsGone polls briefly: programs are freed with the last link
// and file descriptor that hold them.
func wantProgramsGone(t *testing.T, ids []ebpf.ProgramID) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var left []ebpf.ProgramID
		for _, id := range ids {
			if prog, err := ebpf.NewProgramFromID(id); err == nil {
				prog.Close()
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("programs %v of the tool are still loaded after it exited", left)
		}
	}
}

// TestE2EProcessEndings checks the plain report's owner fields, and that
// the tool leaves no program behind however it ends.
func TestE2EProcessEndings(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	dirs := makeProcCgroups(t, "plain")
	h := startProcHelper(t, p.A, dirs["plain"], "pktproc-plain")
	out, err := p.B.ListenUDP(netip.AddrPortFrom(p.B.IPv4, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	t.Run("timeout", func(t *testing.T) {
		tl := testnet.StartTool(t, p.B, bin, "-k", "-t", "2s")
		progs := toolPrograms(t, tl.PID())
		res := h.call(t, "udp udp4 %s:0 %s", p.A.IPv4, out.LocalAddr().(*net.UDPAddr).AddrPort())
		h.call(t, "write %s 2 64", res[0])
		if got, err := testnet.ReadUDP(out, 2, 64, 5*time.Second); err != nil {
			t.Fatalf("%d of 2 datagrams arrived: %v", got, err)
		}
		code, err := tl.Wait(toolWait)
		if err != nil || code != 0 {
			t.Fatalf("exit %d, %v\nstderr:\n%s", code, err, tl.Stderr())
		}
		wantProgramsGone(t, progs)
		// Two datagrams of 64 payload bytes, sent by the helper.
		tail := fmt.Sprintf(", packets: 2, bytes: 128, proto: UDP, src: %s, dst: %s, pid: %d, comm: pktproc-plain, cgroup: %s",
			res[1], out.LocalAddr(), h.pid, dirs["plain"])
		found := 0
		for _, line := range strings.Split(tl.Stdout(), "\n") {
			if strings.HasPrefix(line, "bitrate: ") && strings.HasSuffix(line, tail) {
				found++
			}
		}
		if found != 1 {
			t.Errorf("plain report has %d lines ending in\n%q\nwant 1; report:\n%s", found, tail, tl.Stdout())
		}
		h.call(t, "close %s", res[0])
	})
	t.Run("SIGKILL", func(t *testing.T) {
		tl := testnet.StartTool(t, p.B, bin, "-k", "-t", "0")
		progs := toolPrograms(t, tl.PID())
		if len(progs) < 6 {
			t.Fatalf("the tool holds programs %v; want at least 6", progs)
		}
		if err := tl.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code, err := tl.Wait(toolWait); err != nil || code != -1 {
			t.Fatalf("exit %d, %v; want killed", code, err)
		}
		wantProgramsGone(t, progs)
	})
}

// TestE2EProcessBadInput checks that -k with another mode or with flags
// that do not apply to it is a usage error, and a forced backend that
// cannot work here fails in one line that says why.
func TestE2EProcessBadInput(t *testing.T) {
	bin := e2eBinary(t)
	cases := []struct {
		name  string
		args  []string
		code  int
		parts []string
	}{
		{"with -x", []string{"-k", "-x"}, 2, []string{"-x (--xdp) and -k (--kprobes, --process)", "give only one"}},
		{"with -c", []string{"--process", "-c", "/sys/fs/cgroup"}, 2, []string{"-c (--cgroup) and -k (--kprobes, --process)", "give only one"}},
		{"with -i", []string{"-k", "-i", "lo"}, 2, []string{"-i (--iface) does not apply to -k"}},
		{"bad backend", []string{"-k", "--process-backend", "ebpf"}, 2, []string{`invalid --process-backend "ebpf"`}},
		{"backend without -k", []string{"--process-backend", "tracepoint"}, 2, []string{"--process-backend applies only to process mode"}},
	}
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe"); errors.Is(err, os.ErrNotExist) {
		cases = append(cases, struct {
			name  string
			args  []string
			code  int
			parts []string
		}{"kprobes forced without kprobes", []string{"-k", "--process-backend", "kprobe"}, 1, []string{"kprobe: attach kprobe inet_sendmsg", "this kernel has no kprobes"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runBinary(t, exec.Command(bin, append(c.args, "-t", "1s")...), nil)
			r.want(t, c.code, c.parts...)
		})
	}
}
