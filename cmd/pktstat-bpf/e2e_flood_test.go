package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testnet"
)

// disableIPv6 turns IPv6 off in both namespaces, so that no neighbour or
// router discovery adds packets to a count that must be exact.
func disableIPv6(t *testing.T, p *testnet.Pair) {
	t.Helper()
	for _, e := range []testnet.End{p.A, p.B} {
		for _, k := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
			if out, err := e.Command("sysctl", "-qw", k).CombinedOutput(); err != nil {
				t.Fatalf("sysctl %s in %s: %v: %s", k, e.NS, err, out)
			}
		}
	}
}

// floodConfig writes frame as a trafgen packet whose bytes at the given
// offsets are random for every frame sent (drnd), and whose IPv4 header
// checksum trafgen recomputes (csumip). The UDP checksum must be 0.
func floodConfig(frame []byte, random map[int]bool) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	for i := 0; i < len(frame); i++ {
		switch {
		case i == 24: // IPv4 header checksum: bytes 24 and 25
			b.WriteString("csumip(14, 33),")
			i++
		case random[i]:
			b.WriteString("drnd(),")
		default:
			fmt.Fprintf(&b, "0x%02x,", frame[i])
		}
	}
	b.WriteString("\n}\n")
	return b.Bytes()
}

// TestE2EFloodTC sends 1,000,000 UDP frames from random sources in
// 198.18.0.0/16 and random ports (about a million distinct flows) at a
// 4096-row flow table. The report must account for every frame: the rows
// plus the overflow row add up to exactly what trafgen sent, and the
// overflow row says about how many flows had no row of their own.
func TestE2EFloodTC(t *testing.T) {
	trafgen, err := exec.LookPath("trafgen")
	if err != nil {
		t.Skip("skipped: needs trafgen; install the Debian package netsniff-ng")
	}
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	disableIPv6(t, p)

	const (
		n          = 1_000_000
		maxEntries = 4096
	)
	// To 198.18.0.99, an address nobody has: A drops the frames after
	// the hook, without answering.
	frame := udpFrameTo(t, p, [4]byte{198, 18, 0, 99}, 9, 9, make([]byte, 18))
	frame[40], frame[41] = 0, 0 // no UDP checksum, so random fields need none
	// Source address 198.18.x.y and source port: 32 random bits.
	conf := filepath.Join(t.TempDir(), "flood.cfg")
	if err := os.WriteFile(conf, floodConfig(frame, map[int]bool{28: true, 29: true, 34: true, 35: true}), 0o644); err != nil {
		t.Fatal(err)
	}
	frame[28], frame[29] = 0, 0

	tl := startCapture(t, p.A, bin, "--max-entries", strconv.Itoa(maxEntries))
	link0, err := p.A.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := p.B.Command(trafgen, "--dev", p.B.Link, "--conf", conf, "-n", strconv.Itoa(n),
		"--no-sock-mem", "-P", "1", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("trafgen: %v\n%s", err, out)
	}
	elapsed := time.Since(start)
	// Wait until A's veth has received everything trafgen sent.
	deadline := time.Now().Add(5 * time.Second)
	var link1 = link0
	for time.Now().Before(deadline) {
		if link1, err = p.A.LinkStats(); err != nil {
			t.Fatal(err)
		}
		if link1.RxPackets+link1.RxDropped-link0.RxPackets-link0.RxDropped >= n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rows := stopCapture(t, tl, syscall.SIGINT)
	dropped := link1.RxDropped - link0.RxDropped

	var total, overflow testnet.Row
	tracked := 0
	for _, r := range rows {
		total.Packets += r.Packets
		total.Bytes += r.Bytes
		if r.Overflow {
			overflow = r
			continue
		}
		tracked++
		if r.Proto != "UDP" || r.Dir != "in" {
			t.Errorf("unexpected row %+v: only the flood should be on the wire", r)
		}
	}
	t.Logf("trafgen sent %d frames in %v (%.2f Mpps); A's veth dropped %d before the hook; report: %d rows, overflow %d packets from about %d flows; total %d packets / %d bytes",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds()/1e6, dropped, tracked, overflow.Packets, overflow.UntrackedFlows, total.Packets, total.Bytes)
	if tracked != maxEntries {
		t.Errorf("%d rows, want a full table of %d", tracked, maxEntries)
	}
	if want := uint64(n) - dropped; total.Packets != want || total.Bytes != want*uint64(len(frame)) {
		t.Errorf("rows + overflow = %d packets / %d bytes, want every frame that reached the hook: %d / %d",
			total.Packets, total.Bytes, want, want*uint64(len(frame)))
	}
	// Distinct flows: 10^6 draws from 2^32 (source, port) pairs repeat
	// about n^2/2^33 = 116 times, so about n - 4096 - 116 had no row. The
	// sketch's standard error is 3.3%; allow 4 of them.
	if want := float64(n - maxEntries - 116); float64(overflow.UntrackedFlows) < 0.87*want || float64(overflow.UntrackedFlows) > 1.13*want {
		t.Errorf("overflow row estimates %d untracked flows, want about %.0f", overflow.UntrackedFlows, want)
	}
}

// TestE2EIntervals streams NDJSON every 200ms while datagrams arrive in
// bursts across several intervals: the per-interval counts add up to
// exactly what was sent, and each line's totals add up its rows.
func TestE2EIntervals(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	disableIPv6(t, p)
	const (
		bursts  = 6
		perBurs = 300
		payload = 100
	)
	f := udpFlow{name: "B->A", from: p.B, to: p.A,
		src: netip.AddrPortFrom(p.B.IPv4, 40100), dst: netip.AddrPortFrom(p.A.IPv4, 9100)}

	tl := startCapture(t, p.A, bin, "--interval", "200ms")
	for i := 0; i < bursts; i++ {
		sendUDPFlow(t, f, make([]byte, payload), perBurs)
		time.Sleep(150 * time.Millisecond)
	}
	if err := tl.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, err := tl.Wait(toolWait); err != nil || code != 0 {
		t.Fatalf("exit %d, %v\n%s", code, err, tl.Stderr())
	}
	ivs, err := testnet.ParseIntervals(tl.Stdout())
	if err != nil {
		t.Fatal(err)
	}
	var got testnet.Row
	withTraffic := 0
	for i, iv := range ivs {
		var sum uint64
		for _, r := range iv.Rows {
			sum += r.Packets
			if r.Proto == "UDP" && r.SrcIP == f.src.Addr().String() && r.SrcPort == f.src.Port() && r.DstPort == f.dst.Port() {
				got.Packets += r.Packets
				got.Bytes += r.Bytes
				withTraffic++
			}
		}
		if iv.Totals.Packets != sum+iv.Overflow.Packets {
			t.Errorf("interval %d: totals %d packets, rows+overflow %d", i, iv.Totals.Packets, sum+iv.Overflow.Packets)
		}
		if i < len(ivs)-1 && (iv.Interval < 0.15 || iv.Interval > 0.4) {
			t.Errorf("interval %d lasted %.3fs, want about 0.2s", i, iv.Interval)
		}
		if iv.Iface == nil || iv.Iface.Name != p.A.Link {
			t.Errorf("interval %d has no counters of %s: %+v", i, p.A.Link, iv.Iface)
		}
	}
	const n = bursts * perBurs
	wantCounts(t, fmt.Sprintf("UDP B->A summed over %d intervals", len(ivs)), got, n, n*(14+20+8+payload))
	if withTraffic < 3 {
		t.Errorf("the flow appeared in %d intervals, want the bursts spread over at least 3", withTraffic)
	}
}
