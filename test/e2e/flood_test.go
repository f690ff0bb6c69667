package e2e

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// disableIPv6 turns IPv6 off in both namespaces, so that no neighbour or
// router discovery adds packets to a count that must be exact.
func disableIPv6(t *testing.T, p *testnet.Pair) {
	t.Helper()
	for _, e := range []testnet.End{p.A, p.B} {
		for _, k := range []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"} {
			e.Sysctl(t, k)
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

// TestE2EFlood sends 1,000,000 UDP frames from random sources in
// 198.18.0.0/16 and random ports (about a million distinct flows) at a
// 4096-row flow table, in TC mode and in native XDP mode. The report must
// account for every frame: the rows plus the overflow row add up to exactly
// what trafgen sent, and the overflow row says about how many flows had no
// row of their own.
func TestE2EFlood(t *testing.T) {
	trafgen, err := exec.LookPath("trafgen")
	if err != nil {
		t.Skip("skipped: needs trafgen; install the Debian package netsniff-ng")
	}
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"tc", nil},
		{"xdp-native", []string{"-x", "--xdp_mode", "native"}},
	} {
		t.Run(mode.name, func(t *testing.T) { testFlood(t, trafgen, mode.args) })
	}
}

func testFlood(t *testing.T, trafgen string, modeArgs []string) {
	bin, p := harness.BinaryAndPair(t)
	disableIPv6(t, p)

	const (
		n          = 1_000_000
		maxEntries = 4096
	)
	// To 198.18.0.99, an address nobody has: A drops the frames after
	// the hook, without answering.
	frame := harness.UDPFrameTo(t, p, [4]byte{198, 18, 0, 99}, 9, 9, make([]byte, 18))
	frame[40], frame[41] = 0, 0 // no UDP checksum, so random fields need none
	// Source address 198.18.x.y and source port: 32 random bits.
	conf := filepath.Join(t.TempDir(), "flood.cfg")
	if err := os.WriteFile(conf, floodConfig(frame, map[int]bool{28: true, 29: true, 34: true, 35: true}), 0o644); err != nil {
		t.Fatal(err)
	}
	frame[28], frame[29] = 0, 0

	var (
		rows    []harness.Row
		elapsed time.Duration
	)
	captureWithoutDrops(t, p, n, func() (stop func()) {
		tl := harness.StartCapture(t, p.A, bin, append([]string{"--max-entries", strconv.Itoa(maxEntries)}, modeArgs...)...)
		return func() { rows = harness.StopCapture(t, tl, syscall.SIGINT) }
	}, func() {
		start := time.Now()
		out, err := p.B.Command(trafgen, "--dev", p.B.Link, "--conf", conf, "-n", strconv.Itoa(n),
			"--no-sock-mem", "-P", "1", "-q").CombinedOutput()
		if err != nil {
			t.Fatalf("trafgen: %v\n%s", err, out)
		}
		elapsed = time.Since(start)
	})

	var total, overflow harness.Row
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
	t.Logf("trafgen sent %d frames in %v (%.2f Mpps); A's veth dropped none before the hook; report: %d rows, overflow %d packets from about %d flows; total %d packets / %d bytes",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds()/1e6, tracked, overflow.Packets, overflow.UntrackedFlows, total.Packets, total.Bytes)
	if tracked != maxEntries {
		t.Errorf("%d rows, want a full table of %d", tracked, maxEntries)
	}
	if total.Packets != n || total.Bytes != n*uint64(len(frame)) {
		t.Errorf("rows + overflow = %d packets / %d bytes, want every frame sent: %d / %d",
			total.Packets, total.Bytes, n, n*len(frame))
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
	bin, p := harness.BinaryAndPair(t)
	disableIPv6(t, p)
	const (
		bursts  = 6
		perBurs = 300
		payload = 100
	)
	f := harness.NewUDPFlow("B->A", p.B, p.A,
		netip.AddrPortFrom(p.B.IPv4, 40100), netip.AddrPortFrom(p.A.IPv4, 9100))

	tl := harness.StartCapture(t, p.A, bin, "--interval", "200ms")
	for i := 0; i < bursts; i++ {
		harness.SendUDPFlow(t, f, make([]byte, payload), perBurs)
		time.Sleep(150 * time.Millisecond)
	}
	ivs := harness.StopIntervals(t, tl, syscall.SIGINT)
	var got harness.Row
	withTraffic := 0
	for i, iv := range ivs {
		var sum uint64
		for _, r := range iv.Rows {
			sum += r.Packets
			if r.Proto == "UDP" && r.SrcIP == f.Src.Addr().String() && r.SrcPort == f.Src.Port() && r.DstPort == f.Dst.Port() {
				got.Packets += r.Packets
				got.Bytes += r.Bytes
				withTraffic++
			}
		}
		if iv.Totals.Packets != sum+iv.Overflow.Packets {
			t.Errorf("interval %d: totals %d packets, rows+overflow %d", i, iv.Totals.Packets, sum+iv.Overflow.Packets)
		}
		// Reports follow a ticker, which skips a tick that a slow report
		// delays: every interval but the last is about a whole number of
		// periods.
		if k := math.Round(iv.Interval / 0.2); i < len(ivs)-1 && (k < 1 || math.Abs(iv.Interval-k*0.2) > 0.05) {
			t.Errorf("interval %d lasted %.3fs, want about a whole number of 0.2s periods", i, iv.Interval)
		}
		if iv.Iface == nil || iv.Iface.Name != p.A.Link {
			t.Errorf("interval %d has no counters of %s: %+v", i, p.A.Link, iv.Iface)
		}
	}
	const n = bursts * perBurs
	harness.WantCounts(t, fmt.Sprintf("UDP B->A summed over %d intervals", len(ivs)), got, n, n*(14+20+8+payload))
	if withTraffic < 3 {
		t.Errorf("the flow appeared in %d intervals, want the bursts spread over at least 3", withTraffic)
	}
}

// vmRSS reads a process's resident set size from /proc, in bytes.
func vmRSS(t *testing.T, pid int) uint64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// captureWithoutDrops runs a capture of n frames from B to A, in which
// start starts the tool and returns what stops it, and send sends the
// frames. The frames sent are what the hook saw only if A's veth dropped
// none of them before it; on a loaded machine its receive backlog can
// overflow, and then the capture starts over, up to 3 times. The tool is
// stopped once A's veth has received the frames (at most 5s) and its IP
// layer has settled.
func captureWithoutDrops(t *testing.T, p *testnet.Pair, n uint64, start func() (stop func()), send func()) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		stop := start()
		link0 := harness.LinkStats(t, p.A)
		ip0 := harness.IPReceives(t, p.A)
		send()
		link1 := link0
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			link1 = harness.LinkStats(t, p.A)
			if link1.RxPackets+link1.RxDropped-link0.RxPackets-link0.RxDropped >= n {
				break
			}
		}
		dropped := link1.RxDropped - link0.RxDropped
		harness.Settle(t, p.A, ip0, n-dropped)
		stop()
		if dropped == 0 {
			return
		}
		if attempt == 3 {
			t.Fatalf("A's veth dropped %d frames before the hook in each of 3 runs: the frames sent are not what the hook saw", dropped)
		}
		t.Logf("attempt %d: A's veth dropped %d frames before the hook; starting over", attempt, dropped)
	}
}

// TestE2EIntervalChurnBoundedMemory streams 200ms intervals while trafgen
// sends 1,600,000 frames of new random flows (about as many distinct
// flows, some 80,000 per interval). Each interval drains the kernel table,
// so neither the table nor the tool's memory grows with the run: the
// resident set late in the run stays near what it was early on. The
// intervals still add up to every frame sent.
func TestE2EIntervalChurnBoundedMemory(t *testing.T) {
	trafgen, err := exec.LookPath("trafgen")
	if err != nil {
		t.Skip("skipped: needs trafgen; install the Debian package netsniff-ng")
	}
	bin, p := harness.BinaryAndPair(t)
	disableIPv6(t, p)
	const n = 1_600_000
	frame := harness.UDPFrameTo(t, p, [4]byte{198, 18, 0, 99}, 9, 9, make([]byte, 18))
	frame[40], frame[41] = 0, 0
	conf := filepath.Join(t.TempDir(), "churn.cfg")
	if err := os.WriteFile(conf, floodConfig(frame, map[int]bool{28: true, 29: true, 34: true, 35: true}), 0o644); err != nil {
		t.Fatal(err)
	}

	var (
		tl      *harness.Tool
		ivs     []harness.Interval
		samples []uint64
	)
	captureWithoutDrops(t, p, n, func() (stop func()) {
		tl = harness.StartCapture(t, p.A, bin, "--interval", "200ms", "--top", "10")
		return func() { ivs = harness.StopIntervals(t, tl, syscall.SIGINT) }
	}, func() {
		gen := p.B.Command(trafgen, "--dev", p.B.Link, "--conf", conf, "-n", strconv.Itoa(n), "--no-sock-mem", "-P", "1", "-q")
		if err := gen.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- gen.Wait() }()
		samples = samples[:0]
		for sending := true; sending; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("trafgen: %v", err)
				}
				sending = false
			case <-time.After(250 * time.Millisecond):
				samples = append(samples, vmRSS(t, tl.PID()))
			}
		}
	})
	var packets, rows uint64
	maxRows := 0
	for _, iv := range ivs {
		packets += iv.Totals.Packets
		rows += uint64(len(iv.Rows))
		maxRows = max(maxRows, len(iv.Rows))
	}
	if packets != n {
		t.Errorf("intervals add up to %d packets, trafgen sent %d", packets, n)
	}
	if maxRows > 11 {
		t.Errorf("an interval has %d rows with --top 10, want at most 10 and the overflow", maxRows)
	}
	if len(samples) < 8 {
		t.Fatalf("only %d memory samples: the run was too short to judge", len(samples))
	}
	half := len(samples) / 2
	early, late := slices.Max(samples[:half]), slices.Max(samples[half:])
	t.Logf("%d intervals over %d frames; resident set: early max %d MiB, late max %d MiB (samples %v)", len(ivs), n, early>>20, late>>20, samples)
	if late > early+early/2 {
		t.Errorf("resident set grew from %d MiB early in the run to %d MiB late: memory is not bounded", early>>20, late>>20)
	}
}
