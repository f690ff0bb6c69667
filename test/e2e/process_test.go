package e2e

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
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

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
func procKey(r harness.Row) procRowKey {
	a, _ := netip.ParseAddr(r.SrcIP)
	b, _ := netip.ParseAddr(r.DstIP)
	return procRowKey{r.Proto, netip.AddrPortFrom(a, r.SrcPort), netip.AddrPortFrom(b, r.DstPort), r.Dir, r.PID}
}

// procWant is what the test expects of one row.
type procWant struct {
	packets, bytes uint64
	owner          *harness.Helper
}

// expect records one direction of a flow as both of its ends see it: the
// sender's "out" row and the receiver's "in" row, each with its own
// packets (the system calls each side made) and the same bytes.
type procExpect map[procRowKey]procWant

func (e procExpect) add(proto string, src, dst netip.AddrPort, bytes uint64, from *harness.Helper, sends uint64, to *harness.Helper, recvs uint64) {
	if from != nil {
		e[procRowKey{proto, src, dst, "out", uint32(from.PID)}] = procWant{sends, bytes, from}
	}
	if to != nil {
		e[procRowKey{proto, src, dst, "in", uint32(to.PID)}] = procWant{recvs, bytes, to}
	}
}

// tcpRound has cli write up writes of upSize bytes on its end c of a
// connection (as "dial" answers: id, local and remote address) and srv
// read them on its end s, then srv write down writes of downSize bytes
// and cli read them; both directions are expected rows, with the system
// calls each side counted.
func (e procExpect) tcpRound(t *testing.T, cli *harness.Helper, c []string, srv *harness.Helper, s []string, up, upSize, down, downSize uint64) {
	t.Helper()
	src, dst := harness.ParseAddrPort(t, c[1]), harness.ParseAddrPort(t, c[2])
	sends := cli.CallInt(t, "write %s %d %d", c[0], up, upSize)
	reads := srv.CallInt(t, "read %s %d", s[0], up*upSize)
	e.add("TCP", src, dst, up*upSize, cli, sends, srv, reads)
	sends = srv.CallInt(t, "write %s %d %d", s[0], down, downSize)
	reads = cli.CallInt(t, "read %s %d", c[0], down*downSize)
	e.add("TCP", dst, src, down*downSize, srv, sends, cli, reads)
}

// TestE2EProcess is the end-to-end scenario; see the top of this file.
func TestE2EProcess(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	// Ping sockets need the group to be allowed, per namespace.
	p.A.Sysctl(t, "net.ipv4.ping_group_range=0 0")
	dirs := harness.MakeProcessCgroups(t, "srv", "cli1", "cli2")
	srv := harness.StartProcessHelper(t, p.B, dirs["srv"], "pktproc-srv")
	cli1 := harness.StartProcessHelper(t, p.A, dirs["cli1"], "pktproc-cli1")
	cli2 := harness.StartProcessHelper(t, p.A, dirs["cli2"], "pktproc-cli2")
	want := procExpect{}

	// Before the tool starts: the server listens (dual stack) and accepts
	// client 1's connection. Both ends exist before the tool does.
	lport := srv.Call(t, "listen tcp %s", "[::]:0")[0]
	acc1 := srv.Send(t, "accept")
	c1 := cli1.Call(t, "dial tcp4 %s:%s", p.B.IPv4, lport)
	s1 := acc1()
	// And client 1 opens a UDP socket, whose datagrams only the start-up
	// walk of every process's files can attribute: no send or receive call
	// names a datagram socket's owner.
	u0 := cli1.Call(t, "udp udp4 %s:0", p.A.IPv4)

	tl := harness.StartTool(t, p.B, bin, "-k", "-t", "0", "-j")
	if !strings.Contains(tl.Stderr(), "mode=process/") {
		t.Fatalf("the start-up log does not name the backend:\n%s", tl.Stderr())
	}
	t.Logf("start-up log:\n%s", tl.Stderr())
	progs := harness.ToolPrograms(t, tl.PID())
	if len(progs) < 6 {
		t.Fatalf("the tool holds programs %v; want at least its 6 (sock_create, iterator, 2 tracepoints, 2 cgroup_skb)", progs)
	}

	// TCP over IPv4 on the connection from before start-up: 3 writes of
	// 7000 bytes up, 2 of 5000 down.
	want.tcpRound(t, cli1, c1, srv, s1, 3, 7000, 2, 5000)

	// TCP over IPv6, accepted after start-up on the listener from before:
	// the accepted socket inherits the listener's owner, the server.
	acc2 := srv.Send(t, "accept")
	c2 := cli2.Call(t, "dial tcp6 [%s]:%s", p.B.IPv6, lport)
	s2 := acc2()
	want.tcpRound(t, cli2, c2, srv, s2, 4, 3000, 1, 9000)

	// UDP: the server has one unconnected socket bound to the wildcard
	// address of both families. Client 1 sends over a connected IPv4
	// socket, client 2 with sendto over IPv6; each datagram is answered.
	us := srv.Call(t, "udp udp [::]:0")
	uport := harness.ParseAddrPort(t, us[1]).Port()
	u1 := cli1.Call(t, "udp udp4 %s:0 %s:%d", p.A.IPv4, p.B.IPv4, uport)
	u1src, u1dst := harness.ParseAddrPort(t, u1[1]), netip.AddrPortFrom(p.B.IPv4, uport)
	// udpRound: cli sends n datagrams of size bytes with send (a "write"
	// on a connected socket or a "sendto"), the server answers each with
	// reply bytes, and cli receives them on sock; both directions are
	// expected rows.
	udpRound := func(cli *harness.Helper, who, send, sock string, src, dst netip.AddrPort, n, size, reply uint64) {
		t.Helper()
		serve := srv.Send(t, "serve %s %d %d", us[0], n, reply)
		cli.Call(t, "%s %d %d", send, n, size)
		cli.Call(t, "recv %s %d %d", sock, n, reply)
		if got := serve(); got[0] != strconv.FormatUint(n*size, 10) {
			t.Fatalf("the server received %s bytes from %s, want %d", got[0], who, n*size)
		}
		want.add("UDP", src, dst, n*size, cli, n, srv, n)
		want.add("UDP", dst, src, n*reply, srv, n, cli, n)
	}
	udpRound(cli1, "client 1", "write "+u1[0], u1[0], u1src, u1dst, 5, 300, 120)

	// Client 1's socket from before start-up sends with sendto.
	u0src := harness.ParseAddrPort(t, u0[1])
	udpRound(cli1, "client 1's older socket", fmt.Sprintf("sendto %s %s", u0[0], u1dst), u0[0], u0src, u1dst, 2, 400, 50)

	u2 := cli2.Call(t, "udp udp6 [%s]:0", p.A.IPv6)
	u2src, u2dst := harness.ParseAddrPort(t, u2[1]), netip.AddrPortFrom(p.B.IPv6, uport)
	udpRound(cli2, "client 2", fmt.Sprintf("sendto %s %s", u2[0], u2dst), u2[0], u2src, u2dst, 3, 700, 40)

	// ICMP, one pinger at a time (a raw socket sees every echo reply of
	// its namespace): the echo replies come from B's kernel, which is no
	// process, so only the clients have rows. A message is its 8-byte
	// header and its data.
	for _, pg := range []struct {
		h       *harness.Helper
		network string
		dst     netip.Addr
		n, size int
	}{
		{cli1, "udp4", p.B.IPv4, 4, 56},
		{cli1, "ip6:ipv6-icmp", p.B.IPv6, 3, 100},
		{cli2, "ip4:icmp", p.B.IPv4, 2, 200},
		{cli2, "udp6", p.B.IPv6, 5, 24},
	} {
		pg.h.Call(t, "ping %s %s %d %d", pg.network, pg.dst, pg.n, pg.size)
		src := p.A.IPv4
		proto, req, rep := "ICMPv4", uint16(8), uint16(0)
		if pg.dst.Is6() {
			src, proto, req, rep = p.A.IPv6, "IPv6-ICMP", 128, 129
		}
		n, bytes := uint64(pg.n), uint64(pg.n*(8+pg.size))
		want.add(proto, netip.AddrPortFrom(src, req), netip.AddrPortFrom(pg.dst, 0), bytes, pg.h, n, nil, 0)
		want.add(proto, netip.AddrPortFrom(pg.dst, rep), netip.AddrPortFrom(src, 0), bytes, nil, 0, pg.h, n)
	}

	harness.StopTool(t, tl, syscall.SIGTERM)
	harness.WantProgramsGone(t, progs)

	rows := harness.Report(t, tl)
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
func checkProcRows(t *testing.T, rows []harness.Row, want procExpect, helpers ...*harness.Helper) (others []harness.Row) {
	t.Helper()
	byPID := map[uint32]*harness.Helper{}
	for _, h := range helpers {
		byPID[uint32(h.PID)] = h
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
			t.Errorf("unexpected row of %s: %s: %d packets, %d bytes", h.Name, k, r.Packets, r.Bytes)
			continue
		}
		if seen[k] {
			t.Errorf("two rows for %s", k)
		}
		seen[k] = true
		if r.Comm != h.Name || r.Cgroup != h.Cgroup {
			t.Errorf("%s: comm %q cgroup %q, want %q %q", k, r.Comm, r.Cgroup, h.Name, h.Cgroup)
		}
		if r.Packets != w.packets || r.Bytes != w.bytes {
			t.Errorf("%s: %d packets / %d bytes, want %d / %d", k, r.Packets, r.Bytes, w.packets, w.bytes)
			continue
		}
		t.Logf("%s (%s, %s): %d packets / %d bytes, as sent", k, r.Comm, r.Cgroup, r.Packets, r.Bytes)
	}
	for k, w := range want {
		if !seen[k] {
			t.Errorf("no row for %s (%s), want %d packets / %d bytes", k, w.owner.Name, w.packets, w.bytes)
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
	bin, p := harness.BinaryAndPair(t)
	dirs := harness.MakeProcessCgroups(t, "worker", "cli")
	tl := harness.StartTool(t, p.B, bin, "-k", "-t", "0", "-j")

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
	worker := harness.StartHelperFiles(t, p.B, dirs["worker"], "pktproc-worker", harness.ProcessHelperEnv, []*os.File{lf})
	cli := harness.StartProcessHelper(t, p.A, dirs["cli"], "pktproc-cli")
	worker.Call(t, "adopt")
	accepted := worker.Send(t, "accept")
	c := cli.Call(t, "dial tcp4 %s", ln.Addr())
	s := accepted()

	want := procExpect{}
	want.tcpRound(t, cli, c, worker, s, 3, 4000, 2, 6000)

	harness.StopTool(t, tl, syscall.SIGTERM)
	for _, r := range checkProcRows(t, harness.Report(t, tl), want, worker, cli) {
		if r.Proto == "TCP" && r.PID == uint32(os.Getpid()) {
			t.Errorf("the master has a TCP row, but the worker made every call: %s", procKey(r))
		}
	}
}

// TestE2EProcessEndings checks the plain report's owner fields, and that
// the tool leaves no program behind however it ends.
func TestE2EProcessEndings(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	dirs := harness.MakeProcessCgroups(t, "plain")
	h := harness.StartProcessHelper(t, p.A, dirs["plain"], "pktproc-plain")
	out, err := p.B.ListenUDP(netip.AddrPortFrom(p.B.IPv4, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	t.Run("timeout", func(t *testing.T) {
		tl := harness.StartTool(t, p.B, bin, "-k", "-t", "2s")
		progs := harness.ToolPrograms(t, tl.PID())
		res := h.Call(t, "udp udp4 %s:0 %s", p.A.IPv4, out.LocalAddr().(*net.UDPAddr).AddrPort())
		writeTwoThenWait(t, h, res[0], out, tl)
		harness.WantProgramsGone(t, progs)
		// Two datagrams of 64 payload bytes, sent by the helper.
		tail := fmt.Sprintf(", packets: 2, bytes: 128, proto: UDP, src: %s, dst: %s, pid: %d, comm: pktproc-plain, cgroup: %s",
			res[1], out.LocalAddr(), h.PID, dirs["plain"])
		found := 0
		for _, line := range strings.Split(tl.Stdout(), "\n") {
			if strings.HasPrefix(line, "bitrate: ") && strings.HasSuffix(line, tail) {
				found++
			}
		}
		if found != 1 {
			t.Errorf("plain report has %d lines ending in\n%q\nwant 1; report:\n%s", found, tail, tl.Stdout())
		}
		h.Call(t, "close %s", res[0])
	})
	t.Run("SIGKILL", func(t *testing.T) {
		tl := harness.StartTool(t, p.B, bin, "-k", "-t", "0")
		progs := harness.ToolPrograms(t, tl.PID())
		if len(progs) < 6 {
			t.Fatalf("the tool holds programs %v; want at least 6", progs)
		}
		if err := tl.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code, err := tl.Wait(harness.ToolWait); err != nil || code != -1 {
			t.Fatalf("exit %d, %v; want killed", code, err)
		}
		harness.WantProgramsGone(t, progs)
	})
}

// TestE2EProcessBadInput checks that -k with another mode or with flags
// that do not apply to it is a usage error, and a forced backend that
// cannot work here fails in one line that says why.
func TestE2EProcessBadInput(t *testing.T) {
	bin := harness.Binary(t)
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
			r := harness.RunBinary(t, exec.Command(bin, append(c.args, "-t", "1s")...), nil)
			r.Want(t, c.code, c.parts...)
		})
	}
}
