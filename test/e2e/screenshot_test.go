//go:build screenshot

// This file is built only with -tags screenshot (docs/screenshot.sh): it
// renders a picture, it checks nothing, and go test ./... leaves it out.

package e2e

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// screenshotEnv names the image TestScreenshot writes, relative to the
// repository's root; docs/tui.png when it is not set.
const screenshotEnv = "PKTSTAT_SCREENSHOT"

// freeze is the pinned renderer of terminal output to an image.
const freeze = "github.com/charmbracelet/freeze@v0.2.2"

// TestScreenshot renders the live table (-g) to the image that
// $PKTSTAT_SCREENSHOT names (relative to the repository's root), while
// paced UDP flows of different rates, IPv4 and IPv6, cross a test veth:
// tmux runs the TUI, capture-pane -e keeps its colours, and freeze draws
// them.
func TestScreenshot(t *testing.T) {
	out := os.Getenv(screenshotEnv)
	if out == "" {
		out = "docs/tui.png"
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join("../..", out)
	}
	bin, p := harness.BinaryAndPair(t)
	const width, height = 110, 18
	tm, _ := startTUISized(t, bin, p, width, height, "iface "+p.A.Link, "-i", p.A.Link, "-r", "1s")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ap := netip.AddrPortFrom
	flows := []struct {
		from  bool // from A, else from B
		src   uint16
		dst   uint16
		v6    bool
		size  int
		every time.Duration
	}{
		{false, 40000, 443, false, 1200, time.Millisecond},
		{true, 41000, 53, false, 80, 5 * time.Millisecond},
		{false, 42000, 5201, true, 1400, 2 * time.Millisecond},
		{true, 43000, 123, false, 48, 50 * time.Millisecond},
		{false, 44000, 8080, true, 600, 10 * time.Millisecond},
		{true, 45000, 4789, false, 900, 4 * time.Millisecond},
	}
	var waits []func() int
	for _, f := range flows {
		from, to := p.B, p.A
		if f.from {
			from, to = p.A, p.B
		}
		src, dst := from.IPv4, to.IPv4
		if f.v6 {
			src, dst = from.IPv6, to.IPv6
		}
		rx, err := to.ListenUDP(ap(dst, f.dst))
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		waits = append(waits, pacedUDP(ctx, t, from, ap(src, f.src), ap(dst, f.dst), f.size, 100000, f.every))
	}
	// Three refreshes of steady traffic, so that every rate is settled.
	time.Sleep(3500 * time.Millisecond)
	screen := tm.run("capture-pane", "-e", "-p", "-t", tuiSession)
	cancel()
	for _, w := range waits {
		w()
	}
	if !strings.Contains(screen, "UDP") {
		t.Fatalf("no flows on the screen:\n%s", screen)
	}
	render := exec.Command("go", "run", freeze, "--language", "ansi", "--window", "--padding", "20", "--margin", "0", "-o", out)
	render.Stdin = strings.NewReader(screen)
	if b, err := render.CombinedOutput(); err != nil {
		t.Fatalf("freeze: %v\n%s", err, b)
	}
	t.Logf("wrote %s", out)
}
