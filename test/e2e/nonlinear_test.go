package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// udpFrame builds an Ethernet/IPv4/UDP frame from B to A with gopacket,
// lengths and checksums filled in.
func udpFrame(t *testing.T, p *testnet.Pair, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	return harness.UDPFrameTo(t, p, p.A.IPv4.As4(), sport, dport, payload)
}

// trafgenConfig writes frame as a trafgen packet: { 0x.., 0x.., ... }.
func trafgenConfig(frame []byte) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, c := range frame {
		fmt.Fprintf(&b, "0x%02x,", c)
		if i%16 == 15 {
			b.WriteString("\n")
		}
	}
	b.WriteString("\n}\n")
	return b.Bytes()
}

// TestE2ENonLinear has trafgen send N copies of one UDP frame from B. Its
// frames come from a packet mmap ring, and arrive at A's TC ingress with
// their headers outside the skb's linear area: a parser that reads only
// direct packet memory counts none of them. A counter program at the head
// of A's TCX ingress chain confirms that they do arrive non-linear.
func TestE2ENonLinear(t *testing.T) {
	bin := harness.Binary(t)
	trafgen, err := exec.LookPath("trafgen")
	if err != nil {
		t.Skip("skipped: needs trafgen; install the Debian package netsniff-ng")
	}
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	const n = 20000
	const sport, dport = 41500, 5500
	frame := udpFrame(t, p, sport, dport, bytes.Repeat([]byte{0x42}, 100))
	conf := filepath.Join(t.TempDir(), "udp.cfg")
	if err := os.WriteFile(conf, trafgenConfig(frame), 0o644); err != nil {
		t.Fatal(err)
	}

	tl := harness.StartCapture(t, p.A, bin, "--tc-attach", "tcx")
	// Ahead of ours, so it sees the skbs as our program receives them.
	probe := harness.NewCounterProg(t, "nonlinear_probe", len(frame), harness.EthLen+harness.IPv4Len+harness.UDPLen)
	harness.AttachTCXHead(t, p.A, probe.Prog, ebpf.AttachTCXIngress)
	rx0 := harness.LinkStats(t, p.A)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := p.B.Command(trafgen, "--dev", p.B.Link, "--conf", conf, "-n", strconv.Itoa(n),
		"--no-sock-mem", "--cpus", "1", "--no-cpu-stats")
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	begin := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("trafgen: %v\n%s", err, out)
	}
	took := time.Since(begin)
	rx1 := harness.LinkStats(t, p.A)
	// The hooks run after the veth counted a frame as received; the tool
	// stops only once the probe, on the same hook, has seen them all.
	for deadline := time.Now().Add(5 * time.Second); probe.Count(t, 0) < n && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	rows := harness.StopCapture(t, tl, syscall.SIGINT)

	seen, nonLinear := probe.Count(t, 0), probe.Count(t, 1)
	t.Logf("trafgen sent %d frames of %d bytes in %v; A's veth received %d skbs (%d dropped); the probe saw %d, %d of them with L2-L4 headers outside the linear area",
		n, len(frame), took.Round(time.Millisecond), rx1.RxPackets-rx0.RxPackets, rx1.RxDropped-rx0.RxDropped, seen, nonLinear)
	if seen != n {
		t.Fatalf("the probe at A's ingress saw %d of the %d frames: some were lost before the hook, so n is not the ground truth", seen, n)
	}
	if nonLinear != n {
		t.Errorf("%d of %d frames arrived with non-linear headers; this test is meant to feed non-linear skbs", nonLinear, n)
	}
	row := harness.OneRow(t, rows, "UDP", p.B.IPv4, p.A.IPv4, sport, dport)
	harness.WantCounts(t, "trafgen UDP B->A (non-linear skbs)", row, n, uint64(n*len(frame)))
}
