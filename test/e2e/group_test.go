package e2e

// End-to-end test of --group-by: two runs of the tool watch A's veth at
// once, one grouping by protocol and one by destination port, while the
// test sends known datagrams to two ports and pings; each group's totals
// must equal what the test sent.

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

func TestE2EGroupBy(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	const (
		nIn, nOut, nPing = 700, 300, 5
		portIn, portOut  = 5001, 5002
	)
	payload := bytes.Repeat([]byte{0x5a}, 200)
	pingData := bytes.Repeat([]byte{0xa5}, 56)
	udpFrame := uint64(harness.EthLen + harness.IPv4Len + harness.UDPLen + len(payload))
	icmpFrame := uint64(harness.EthLen + harness.IPv4Len + harness.ICMPLen + len(pingData))
	in := harness.NewUDPFlow("UDP B->A (ingress)", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 41001), netip.AddrPortFrom(p.A.IPv4, portIn))
	out := harness.NewUDPFlow("UDP A->B (egress)", p.A, p.B, netip.AddrPortFrom(p.A.IPv4, 41002), netip.AddrPortFrom(p.B.IPv4, portOut))

	byProto := harness.StartCapture(t, p.A, bin, "--group-by", "proto")
	byPort := harness.StartCapture(t, p.A, bin, "--group-by", "dport")
	harness.SendUDPFlow(t, in, payload, nIn)
	harness.SendUDPFlow(t, out, payload, nOut)
	pg := pinger{"ip4:icmp", 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply, p.A.IPv4, p.B.IPv4}
	if err := pg.ping(p.A, nPing, pingData); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	protoRows := harness.StopCapture(t, byProto, syscall.SIGINT)
	portRows := harness.StopCapture(t, byPort, syscall.SIGINT)

	// One row per protocol: every datagram of both flows in one, every
	// echo request and reply in another. Other protocols (IPv6 neighbour
	// discovery, ARP) may have rows of their own.
	group := func(rows []harness.Row, what string, match func(harness.Row) bool) harness.Row {
		t.Helper()
		found := findRows(rows, match)
		if len(found) != 1 {
			t.Fatalf("%d rows for %s, want 1: %+v", len(found), what, rows)
		}
		return found[0]
	}
	udp := group(protoRows, "proto UDP", func(r harness.Row) bool { return r.Proto == "UDP" })
	harness.WantCounts(t, "group proto UDP", udp, nIn+nOut, (nIn+nOut)*udpFrame)
	icmp := group(protoRows, "proto ICMPv4", func(r harness.Row) bool { return r.Proto == "ICMPv4" })
	harness.WantCounts(t, "group proto ICMPv4", icmp, 2*nPing, 2*nPing*icmpFrame)
	for _, r := range protoRows {
		if !r.Overflow && (r.SrcIP != "" || r.DstIP != "" || r.SrcPort != 0 || r.DstPort != 0 || r.Dir != "") {
			t.Errorf("a row grouped by proto has other fields: %+v", r)
		}
	}
	harness.WantBitrates(t, byProto, protoRows)

	// One row per destination port; the pings have no port (0).
	for _, c := range []struct {
		port    uint16
		packets uint64
	}{{portIn, nIn}, {portOut, nOut}} {
		r := group(portRows, "a destination port", func(r harness.Row) bool { return !r.Overflow && r.DstPort == c.port })
		harness.WantCounts(t, fmt.Sprintf("group dport %d", c.port), r, c.packets, c.packets*udpFrame)
		if r.Proto != "" || r.SrcIP != "" {
			t.Errorf("a row grouped by dport has other fields: %+v", r)
		}
	}
	noPort := group(portRows, "dport 0", func(r harness.Row) bool { return !r.Overflow && r.DstPort == 0 })
	if noPort.Packets < 2*nPing || noPort.Bytes < 2*nPing*icmpFrame {
		t.Errorf("dport 0 (rows without ports): %d packets, %d bytes; want at least the %d pings' %d bytes", noPort.Packets, noPort.Bytes, 2*nPing, 2*nPing*icmpFrame)
	}
}

// TestE2EGroupByCgroupIntervals is pktstat-bpf's issue #5: one total per
// cgroup per period. Two helpers, each in a cgroup of its own below the
// watched one, exchange known datagrams with sockets outside; with
// --group-by cgroup --interval -j, every interval has at most one row per
// cgroup, and each cgroup's rows over the intervals add up to exactly
// what its helper sent and received (IP packets: cgroup mode sees no
// link-layer header).
func TestE2EGroupByCgroupIntervals(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	parent, dirs := testnet.MakeCgroups(t, "pktcg", "one", "two")
	helpers := []*harness.Helper{
		harness.StartCgroupHelper(t, p.A, dirs["one"]),
		harness.StartCgroupHelper(t, p.A, dirs["two"]),
	}
	tl := harness.StartTool(t, p.B, bin, "-c", parent, "-t", "0", "-j", "--interval", "300ms", "--group-by", "cgroup")

	want := map[string]harness.Tally{}
	for i, h := range helpers {
		n, size, m, back := 20+10*i, 100+200*i, 5+i, 60
		out, err := p.B.ListenUDP(netip.AddrPortFrom(p.B.IPv4, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { out.Close() })
		res := h.Call(t, "udp udp4 %s %s", netip.AddrPortFrom(p.A.IPv4, 0), out.LocalAddr().(*net.UDPAddr).AddrPort())
		h.Call(t, "write %s %d %d", res[0], n, size)
		if got, err := testnet.ReadUDP(out, n, size, 5*time.Second); err != nil {
			t.Fatalf("helper %d: %d of %d datagrams arrived: %v", i, got, n, err)
		}
		for range m {
			if _, err := out.WriteToUDPAddrPort(harness.Pattern(back), harness.ParseAddrPort(t, res[1])); err != nil {
				t.Fatal(err)
			}
		}
		h.Call(t, "read %s %d %d", res[0], m, back)
		h.Call(t, "close %s", res[0])
		const hdr = harness.IPv4Len + harness.UDPLen
		want[h.Cgroup] = harness.Tally{Packets: uint64(n + m), Bytes: uint64(n*(hdr+size) + m*(hdr+back))}
		time.Sleep(400 * time.Millisecond) // the helpers' traffic in different intervals
	}
	ivs := harness.StopIntervals(t, tl, syscall.SIGTERM)

	got := map[string]harness.Tally{}
	for i, iv := range ivs {
		seen := map[string]bool{}
		for _, r := range iv.Rows {
			if r.Overflow {
				t.Errorf("interval %d has an overflow row: %+v", i, r)
				continue
			}
			if seen[r.Cgroup] || r.SrcIP != "" || r.Proto != "" || r.PID != 0 || r.Comm != "" {
				t.Errorf("interval %d: a second row for cgroup %q, or fields other than the cgroup: %+v", i, r.Cgroup, r)
			}
			seen[r.Cgroup] = true
			g := got[r.Cgroup]
			g.Packets += r.Packets
			g.Bytes += r.Bytes
			got[r.Cgroup] = g
		}
	}
	if len(got) != len(want) {
		t.Errorf("cgroups in the report: %v, want %v", got, want)
	}
	for cg, w := range want {
		if got[cg] != w {
			t.Errorf("cgroup %s over %d intervals: %d packets / %d bytes, ground truth %d / %d", cg, len(ivs), got[cg].Packets, got[cg].Bytes, w.Packets, w.Bytes)
		} else {
			t.Logf("cgroup %s over %d intervals: %d packets / %d bytes, equal to ground truth", cg, len(ivs), w.Packets, w.Bytes)
		}
	}
}
