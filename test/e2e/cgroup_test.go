package e2e

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
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

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
func exchangeTCP(t *testing.T, h *harness.Helper, hid string, out *net.TCPConn, up, down int) {
	t.Helper()
	if err := out.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// One write: TCP builds GSO skbs of several segments from it.
	h.Call(t, "write %s 1 %d", hid, up)
	if _, err := io.ReadFull(out, make([]byte, up)); err != nil {
		t.Fatalf("outside end read: %v", err)
	}
	if _, err := out.Write(harness.Pattern(down)); err != nil {
		t.Fatal(err)
	}
	h.Call(t, "read %s 1 %d", hid, down)
	// The outside end closes first. Had the helper closed first, its
	// socket could be closed in FIN_WAIT2 when the outside end's FIN came,
	// and the kernel would hand that FIN, and send its ACK, through a
	// timewait socket, which belongs to no cgroup: cgroup_skb programs see
	// neither (docs/accounting.md). Closing second, the helper's socket
	// takes the last ACK as a full socket of its cgroup.
	if err := out.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	h.Call(t, "eof %s", hid)
	h.Call(t, "close %s", hid)
	if n, err := out.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("outside end: want EOF after the helper closed, got %d bytes, %v", n, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
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
	bin, p := harness.BinaryAndPair(t)
	harness.OffloadsOff(t, p.A)
	harness.OffloadsOff(t, p.B)
	parent, child := harness.MakeCgroupTree(t)
	h := harness.StartCgroupHelper(t, p.A, child)

	// Before the tool starts: a listener, and a connection accepted on it.
	lport := h.Call(t, "listen tcp4 %s", netip.AddrPortFrom(p.A.IPv4, 0))[0]
	lAddr := harness.ParseAddrPort(t, p.A.IPv4.String()+":"+lport)
	waitP := h.Send(t, "accept")
	outP := dialTCP(t, p.B, "tcp4", lAddr)
	resP := waitP()

	tl := harness.StartTool(t, p.B, bin, "-c", parent, "-t", "0", "-j")
	if got := testnet.CgroupPrograms(t, parent); len(got[ebpf.AttachCGroupInetIngress]) != 1 ||
		len(got[ebpf.AttachCGroupInetEgress]) != 1 || len(got[ebpf.AttachCGroupInetSockCreate]) != 1 {
		t.Fatalf("while running, the programs on %s are %v; want one per hook", parent, got)
	}
	sn := harness.StartSniffer(t, p.B)

	cases := cgroupTCPCases(t, p, h, lAddr, resP, outP)
	udpCases, udpTruth := cgroupUDPCases(t, p, h)
	cases = append(cases, udpCases...)
	noise := outsideTraffic(t, p, sn)

	for _, c := range cases {
		if c.proto == "TCP" {
			sn.WaitClosed(t, c.up)
		}
	}
	harness.StopTool(t, tl, syscall.SIGTERM)
	drops, err := sn.Close()
	if err != nil || drops != 0 {
		t.Fatalf("the capture on %s failed (%v) or dropped %d frames: no ground truth", p.B.Link, err, drops)
	}
	if sn.MaxL3 > 1500 {
		t.Fatalf("the capture saw a %d-byte IP packet, above the MTU: offloads are on, frames are not wire packets", sn.MaxL3)
	}
	harness.WantNothingAttached(t, parent, "SIGTERM")
	for id, want := range udpTruth {
		if got := sn.Get(id); got.Packets != want.Packets || got.Bytes != want.Bytes {
			t.Errorf("%s: the capture saw %d packets / %d bytes, the datagrams sent make %d / %d", id, got.Packets, got.Bytes, want.Packets, want.Bytes)
		}
	}
	checkCgroupRows(t, p, tl, sn, cases, noise, h)
}

// cgroupCase is one flow of TestE2ECgroup.
type cgroupCase struct {
	name  string
	up    harness.FlowID // helper -> outside
	proto string
}

// cgroupTCPCases runs TestE2ECgroup's TCP connections while the tool runs,
// each with the helper's end, and returns them: the connection resP /
// outP, accepted on the listener at lAddr before the tool started; one
// more accepted on it now; one the helper opens over IPv6; and one over
// MPTCP where the namespaces allow it.
func cgroupTCPCases(t *testing.T, p *testnet.Pair, h *harness.Helper, lAddr netip.AddrPort, resP []string, outP *net.TCPConn) []cgroupCase {
	t.Helper()
	var cases []cgroupCase

	// 1. The connection from before start-up (its socket was seeded).
	upP := harness.FlowID{Proto: "TCP", Src: harness.ParseAddrPort(t, resP[1]), Dst: harness.ParseAddrPort(t, resP[2])}
	before := harness.SNMP(t, p.A)
	exchangeTCP(t, h, resP[0], outP, 40_000, 25_000)
	after := harness.SNMP(t, p.A)
	// The hooks must have seen GSO skbs, or the segment arithmetic went
	// untested: IP handed fewer skbs to the device than TCP sent segments.
	skbs, segs := after["Ip.OutRequests"]-before["Ip.OutRequests"], after["Tcp.OutSegs"]-before["Tcp.OutSegs"]
	t.Logf("connection 1 in A: TCP sent %d segments in %d IP skbs", segs, skbs)
	if skbs >= segs {
		t.Errorf("A's IP sent %d skbs for %d TCP segments: no GSO skb reached the egress hook", skbs, segs)
	}
	cases = append(cases, cgroupCase{"TCP/IPv4 connected before start", upP, "TCP"})

	// 2. Accepted now, on the listener from before start-up: the owner
	//    comes from the listener's storage, cloned to the child socket.
	//    Go's listeners are MPTCP sockets by default (since Go 1.24), so
	//    here the storage the child inherits is the listening subflow's,
	//    which took its owner from the MPTCP socket that was seeded.
	waitS := h.Send(t, "accept")
	outS := dialTCP(t, p.B, "tcp4", lAddr)
	resS := waitS()
	upS := harness.FlowID{Proto: "TCP", Src: harness.ParseAddrPort(t, resS[1]), Dst: harness.ParseAddrPort(t, resS[2])}
	exchangeTCP(t, h, resS[0], outS, 15_000, 8_000)
	cases = append(cases, cgroupCase{"TCP/IPv4 accepted after start", upS, "TCP"})

	// 3. Opened by the helper, over IPv6 (sock_create records its owner).
	lnC := listenTCP(t, p.B, "tcp6", p.B.IPv6)
	resC := h.Call(t, "dial tcp6 %s", lnC.Addr().(*net.TCPAddr).AddrPort())
	outC := acceptIn(t, lnC)
	upC := harness.FlowID{Proto: "TCP", Src: harness.ParseAddrPort(t, resC[1]), Dst: harness.ParseAddrPort(t, resC[2])}
	exchangeTCP(t, h, resC[0], outC, 200_000, 100_000)
	cases = append(cases, cgroupCase{"TCP/IPv6 opened after start", upC, "TCP"})

	// 4. MPTCP from the helper to an MPTCP listener: the packets pass
	//    through a subflow that the kernel creates, with no sock_create.
	if mptcpEnabled(t, p.A) && mptcpEnabled(t, p.B) {
		lnM := listenTCP(t, p.B, "tcp4", p.B.IPv4)
		resM := h.Call(t, "dialmp tcp4 %s", lnM.Addr().(*net.TCPAddr).AddrPort())
		outM := acceptIn(t, lnM)
		if on := h.Call(t, "mptcp %s", resM[0]); on[0] != "true" {
			t.Fatalf("the helper's MPTCP connection fell back to TCP")
		}
		upM := harness.FlowID{Proto: "TCP", Src: harness.ParseAddrPort(t, resM[1]), Dst: harness.ParseAddrPort(t, resM[2])}
		exchangeTCP(t, h, resM[0], outM, 30_000, 10_000)
		cases = append(cases, cgroupCase{"MPTCP/IPv4 opened after start", upM, "TCP"})
	} else {
		t.Log("MPTCP is off in the test namespaces (net.mptcp.enabled): no MPTCP connection checked")
	}
	return cases
}

// cgroupUDPCases sends TestE2ECgroup's UDP both ways, IPv4 and IPv6, from
// sockets of the helper, and returns the flows and what their datagrams
// make at the IP layer.
func cgroupUDPCases(t *testing.T, p *testnet.Pair, h *harness.Helper) ([]cgroupCase, map[harness.FlowID]harness.Tally) {
	t.Helper()
	var cases []cgroupCase
	// 5, 6. UDP both ways, IPv4 and IPv6: n datagrams of size up, m down.
	udpTruth := map[harness.FlowID]harness.Tally{}
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
		t.Cleanup(func() { out.Close() })
		res := h.Call(t, "udp %s %s %s", u.network, netip.AddrPortFrom(u.local, 0), out.LocalAddr().(*net.UDPAddr).AddrPort())
		up := harness.FlowID{Proto: "UDP", Src: harness.ParseAddrPort(t, res[1]), Dst: harness.ParseAddrPort(t, res[2])}
		h.Call(t, "write %s %d %d", res[0], u.n, u.size)
		if got, err := testnet.ReadUDP(out, u.n, u.size, 5*time.Second); err != nil {
			t.Fatalf("%s: %d of %d datagrams arrived: %v", u.name, got, u.n, err)
		}
		for range u.m {
			if _, err := out.WriteToUDPAddrPort(harness.Pattern(u.back), up.Src); err != nil {
				t.Fatal(err)
			}
		}
		h.Call(t, "read %s %d %d", res[0], u.m, u.back)
		h.Call(t, "close %s", res[0])
		// UDP's ground truth is also plain arithmetic: IP and UDP headers
		// around each payload; checked against the capture once it ends.
		ipHdr := 20
		if u.local.Is6() {
			ipHdr = 40
		}
		udpTruth[up] = harness.Tally{Packets: uint64(u.n), Bytes: uint64(u.n * (ipHdr + 8 + u.size))}
		udpTruth[up.Reverse()] = harness.Tally{Packets: uint64(u.m), Bytes: uint64(u.m * (ipHdr + 8 + u.back))}
		cases = append(cases, cgroupCase{u.name, up, "UDP"})
	}
	return cases, udpTruth
}

// outsideTraffic has the test process, outside the cgroup, talk to itself
// across the same veth, over UDP and TCP, and returns those flows' upward
// directions once the capture has seen the TCP connection close.
func outsideTraffic(t *testing.T, p *testnet.Pair, sn *harness.Sniffer) []harness.FlowID {
	t.Helper()
	var noise []harness.FlowID
	rx, err := p.B.ListenUDP(netip.AddrPortFrom(p.B.IPv4, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	tx, err := p.A.DialUDP(netip.AddrPortFrom(p.A.IPv4, 0), rx.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	if err := testnet.SendUDP(tx, harness.Pattern(120), 4); err != nil {
		t.Fatal(err)
	}
	if got, err := testnet.ReadUDP(rx, 4, 120, 5*time.Second); err != nil {
		t.Fatalf("outside UDP: %d of 4 arrived: %v", got, err)
	}
	noise = append(noise, harness.FlowID{Proto: "UDP", Src: tx.LocalAddr().(*net.UDPAddr).AddrPort(), Dst: rx.LocalAddr().(*net.UDPAddr).AddrPort()})

	ln := listenTCP(t, p.B, "tcp4", p.B.IPv4)
	c := dialTCP(t, p.A, "tcp4", ln.Addr().(*net.TCPAddr).AddrPort())
	s := acceptIn(t, ln)
	if _, err := c.Write(harness.Pattern(5000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.Close()
	id := harness.FlowID{Proto: "TCP", Src: c.LocalAddr().(*net.TCPAddr).AddrPort(), Dst: c.RemoteAddr().(*net.TCPAddr).AddrPort()}
	sn.WaitClosed(t, id)
	return append(noise, id)
}

// checkCgroupRows checks TestE2ECgroup's report against the capture: one
// row per direction of every case, with the helper as its owner and the
// capture's packets and bytes, and no row of the outside traffic.
func checkCgroupRows(t *testing.T, p *testnet.Pair, tl *harness.Tool, sn *harness.Sniffer, cases []cgroupCase, noise []harness.FlowID, h *harness.Helper) {
	t.Helper()
	pid, child := h.PID, h.Cgroup
	rows := harness.Report(t, tl)
	byID := map[harness.FlowID][]harness.Row{}
	for _, r := range rows {
		byID[harness.RowFlow(r)] = append(byID[harness.RowFlow(r)], r)
	}
	for _, c := range cases {
		for _, dir := range []struct {
			what string
			id   harness.FlowID
		}{{"up (egress)", c.up}, {"down (ingress)", c.up.Reverse()}} {
			truth := sn.Get(dir.id)
			got := byID[dir.id]
			if len(got) != 1 {
				t.Errorf("%s %s: %d rows for %s, want exactly 1: %+v", c.name, dir.what, len(got), dir.id, got)
				continue
			}
			r := got[0]
			if r.PID != uint32(pid) || r.Comm != harness.CgroupHelperComm || r.Cgroup != child {
				t.Errorf("%s %s: owner pid %d comm %q cgroup %q, want %d %q %q", c.name, dir.what, r.PID, r.Comm, r.Cgroup, pid, harness.CgroupHelperComm, child)
			}
			if r.Packets != truth.Packets || r.Bytes != truth.Bytes {
				t.Errorf("%s %s: report %d packets / %d bytes, capture %d / %d", c.name, dir.what, r.Packets, r.Bytes, truth.Packets, truth.Bytes)
				continue
			}
			t.Logf("%s %s: %d packets / %d bytes, equal to the capture on %s", c.name, dir.what, r.Packets, r.Bytes, p.B.Link)
		}
	}
	for _, id := range append(noise, noise[0].Reverse(), noise[1].Reverse()) {
		if sn.Get(id).Packets == 0 && id.Src.Addr() == p.A.IPv4 {
			t.Errorf("outside traffic %s never crossed the veth: the check below proves nothing", id)
		}
		if got := byID[id]; len(got) != 0 {
			t.Errorf("traffic of two processes outside the cgroup is in the report: %+v", got)
		}
	}
	if len(rows) != 2*len(cases) {
		t.Errorf("report has %d rows, want %d (two per flow):\n%s", len(rows), 2*len(cases), tl.Stdout())
	}
	harness.WantBitrates(t, tl, rows)
}

// TestE2ECgroupEndings checks that nothing stays on the cgroup however the
// tool ends, and that a normal end prints the plain report with the owner.
func TestE2ECgroupEndings(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	parent, child := harness.MakeCgroupTree(t)
	h := harness.StartCgroupHelper(t, p.A, child)
	out, err := p.B.ListenUDP(netip.AddrPortFrom(p.B.IPv4, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	t.Run("timeout", func(t *testing.T) {
		tl := harness.StartTool(t, p.B, bin, "-c", parent, "-t", "3s")
		res := h.Call(t, "udp udp4 %s %s", netip.AddrPortFrom(p.A.IPv4, 0), out.LocalAddr().(*net.UDPAddr).AddrPort())
		writeTwoThenWait(t, h, res[0], out, tl)
		harness.WantNothingAttached(t, parent, "the timeout")
		// Two datagrams of 64 bytes: 2 x (20 + 8 + 64) bytes of IP.
		tail := fmt.Sprintf(", packets: 2, bytes: 184, proto: UDP, src: %s, dst: %s, pid: %d, comm: %s, cgroup: %s\n",
			res[1], res[2], h.PID, harness.CgroupHelperComm, child)
		const summary = "summary: packets: 2, bytes: 184, rows: 1, flows beyond --top: 0, flows not tracked (flow table full): about 0\n"
		if lines := strings.SplitAfter(tl.Stdout(), "\n"); len(lines) != 3 || lines[2] != "" || !strings.HasPrefix(lines[0], "bitrate: ") || !strings.HasSuffix(lines[0], tail) || lines[1] != summary {
			t.Errorf("plain report:\n%q\nwant one line ending in\n%q\nand the summary\n%q", tl.Stdout(), tail, summary)
		}
		h.Call(t, "close %s", res[0])
	})
	t.Run("SIGKILL", func(t *testing.T) {
		tl := harness.StartTool(t, p.B, bin, "-c", parent, "-t", "0")
		if got := testnet.CgroupPrograms(t, parent); len(got[ebpf.AttachCGroupInetIngress])+len(got[ebpf.AttachCGroupInetEgress])+len(got[ebpf.AttachCGroupInetSockCreate]) != 3 {
			t.Fatalf("while running, the programs on %s are %v; want one per hook", parent, got)
		}
		if err := tl.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code, err := tl.Wait(harness.ToolWait); err != nil || code != -1 {
			t.Fatalf("exit %d, %v; want killed", code, err)
		}
		harness.WantNothingAttached(t, parent, "SIGKILL")
	})
}

// TestE2ECgroupBadInput checks that a bad -c names its problem in one
// line, and that -c with another mode is a usage error.
func TestE2ECgroupBadInput(t *testing.T) {
	bin := harness.Binary(t)
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
			r := harness.RunBinary(t, exec.Command(bin, append(c.args, "-t", "1s")...), nil)
			r.Want(t, c.code, c.parts...)
		})
	}
}

// writeTwoThenWait has h's socket sock send two datagrams of 64 bytes to
// out, waits until both arrived, and then until the tool tl exits 0 at its
// -t timeout: the "timeout" ending of TestE2ECgroupEndings and
// TestE2EProcessEndings.
func writeTwoThenWait(t *testing.T, h *harness.Helper, sock string, out *net.UDPConn, tl *harness.Tool) {
	t.Helper()
	h.Call(t, "write %s 2 64", sock)
	if got, err := testnet.ReadUDP(out, 2, 64, 5*time.Second); err != nil {
		t.Fatalf("%d of 2 datagrams arrived: %v", got, err)
	}
	code, err := tl.Wait(harness.ToolWait)
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v\nstderr:\n%s", code, err, tl.Stderr())
	}
}
