package e2e

// End-to-end test of the live table (-g): the real binary runs in a tmux
// pane inside A's namespace, the test sends known UDP traffic, reads the
// screen with tmux capture-pane, presses keys with tmux send-keys, and
// checks what a user would see, then that q leaves nothing behind.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// tmuxSession is one detached tmux server with one session, on a socket of
// its own so that tests never touch each other's (or a user's) tmux.
type tmuxSession struct {
	t      *testing.T
	socket string
}

const tuiSession = "tui"

func newTmux(t *testing.T, width, height int, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed to drive the TUI (apt-get install tmux): %v", err)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := &tmuxSession{t: t, socket: "pktstat-tui-" + hex.EncodeToString(b)}
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	s.run("-f", "/dev/null", "new-session", "-d", "-s", tuiSession,
		"-x", strconv.Itoa(width), "-y", strconv.Itoa(height), command)
	return s
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is the pane's text, one string per line.
func (s *tmuxSession) screen() []string {
	s.t.Helper()
	return strings.Split(strings.TrimRight(s.run("capture-pane", "-p", "-t", tuiSession), "\n"), "\n")
}

// keys types keys into the pane (tmux key names: Enter, Escape, ...).
func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	s.run(append([]string{"send-keys", "-t", tuiSession}, keys...)...)
}

// waitScreen polls the screen until ok accepts it, for at most d.
func (s *tmuxSession) waitScreen(d time.Duration, what string, ok func([]string) bool) []string {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		lines := s.screen()
		if ok(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("screen never showed %s within %s; last screen:\n%s", what, d, strings.Join(lines, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var flowsRE = regexp.MustCompile(`flows (\d+) shown, table (\d+)/131072`)

// tuiRow is one flow row as drawn at 120 columns: bitrate (number and
// unit), pps, packets, bytes, proto, source, destination, dir.
type tuiRow struct {
	line           int
	bitrate        string
	pps            string
	packets, bytes uint64
	proto          string
	dir            string
}

// findRow finds the row from src to dst on the screen.
func findRow(lines []string, src, dst string) (tuiRow, bool) {
	for i, l := range lines {
		// The dir column is the last and is dropped first when the
		// addresses leave no room for it.
		f := strings.Fields(l)
		if len(f) < 8 || len(f) > 9 || f[6] != src || f[7] != dst {
			continue
		}
		f = append(f, "")
		p, err1 := strconv.ParseUint(f[3], 10, 64)
		b, err2 := strconv.ParseUint(f[4], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		return tuiRow{line: i, bitrate: f[0] + " " + f[1], pps: f[2], packets: p, bytes: b, proto: f[5], dir: f[8]}, true
	}
	return tuiRow{}, false
}

// pacedUDP sends count datagrams of payload bytes at the given rate, and
// stops by itself at count or when ctx ends.
func pacedUDP(ctx context.Context, t *testing.T, from testnet.End, local, remote netip.AddrPort, payload, count int, every time.Duration) (wait func() int) {
	t.Helper()
	c, err := from.DialUDP(local, remote)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		sent int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer c.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		buf := make([]byte, payload)
		for sent < count {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
			sent++
		}
	}()
	return func() int { wg.Wait(); return sent }
}

func TestE2ETUI(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t) // no ARP or neighbor discovery rows

	// Sinks on A, so that A answers nothing (no ICMP port unreachable).
	for _, port := range []uint16{9001, 9002} {
		ln, err := p.A.ListenUDP(netip.AddrPortFrom(p.A.IPv4, port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
	}
	sink, err := p.B.ListenUDP(netip.AddrPortFrom(p.B.IPv4, 40002))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })

	tm, exitFile, logFile := startTUICapture(t, bin, p)

	// Two flows from B at clearly different rates (10:1), and one from A.
	const (
		payload   = 100
		frame     = harness.EthLen + harness.IPv4Len + harness.UDPLen + payload // bytes counted per datagram at TC
		fastCount = 600                                                         // 200/s for 3 s
		slowCount = 60                                                          // 20/s for 3 s
		outCount  = 30                                                          // 10/s for 3 s
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var (
		fastSrc = netip.AddrPortFrom(p.B.IPv4, 40000)
		slowSrc = netip.AddrPortFrom(p.B.IPv4, 40001)
		fastDst = netip.AddrPortFrom(p.A.IPv4, 9002)
		slowDst = netip.AddrPortFrom(p.A.IPv4, 9001)
		outSrc  = netip.AddrPortFrom(p.A.IPv4, 9003)
		outDst  = netip.AddrPortFrom(p.B.IPv4, 40002)
	)
	waitFast := pacedUDP(ctx, t, p.B, fastSrc, fastDst, payload, fastCount, 5*time.Millisecond)
	waitSlow := pacedUDP(ctx, t, p.B, slowSrc, slowDst, payload, slowCount, 50*time.Millisecond)
	waitOut := pacedUDP(ctx, t, p.A, outSrc, outDst, payload, outCount, 100*time.Millisecond)

	// While both send, the faster flow leads the default sort by bitrate,
	// and the header counts both directions.
	live := tm.waitScreen(10*time.Second, "both flows sending, the faster first", func(l []string) bool {
		f, ok1 := findRow(l, fastSrc.String(), fastDst.String())
		s, ok2 := findRow(l, slowSrc.String(), slowDst.String())
		return ok1 && ok2 && f.bitrate != "0.00 bps" && s.bitrate != "0.00 bps" && f.packets > 100 && f.line < s.line
	})
	t.Logf("screen while sending:\n%s", strings.Join(live, "\n"))
	checkTUIHeader(t, live, fastSrc, fastDst)

	if n := waitFast(); n != fastCount {
		t.Fatalf("sent %d fast datagrams, want %d", n, fastCount)
	}
	if n := waitSlow(); n != slowCount {
		t.Fatalf("sent %d slow datagrams, want %d", n, slowCount)
	}
	if n := waitOut(); n != outCount {
		t.Fatalf("sent %d datagrams from A, want %d", n, outCount)
	}

	// Once the traffic stops, the rates drop to zero and the totals are
	// exactly what was sent.
	wants := []tuiWant{{fastSrc, fastDst, fastCount, "in"}, {slowSrc, slowDst, slowCount, "in"}, {outSrc, outDst, outCount, "out"}}
	quiet := tm.waitScreen(10*time.Second, "exact totals at zero rates", func(l []string) bool {
		for _, w := range wants {
			r, ok := findRow(l, w.src.String(), w.dst.String())
			if !ok || r.packets != w.packets || r.bitrate != "0.00 bps" {
				return false
			}
		}
		return true
	})
	for _, w := range wants {
		r, _ := findRow(quiet, w.src.String(), w.dst.String())
		if r.bytes != w.packets*frame || r.pps != "0.0" || r.dir != w.dir {
			t.Errorf("%s -> %s: %+v, want %d packets of %d bytes, 0.0 pps, %s", w.src, w.dst, r, w.packets, frame, w.dir)
		}
	}
	// At equal (zero) rates, more packets come first.
	if got := tuiOrder(quiet, wants); got != "fast slow out" {
		t.Errorf("order by bitrate, then packets: %q, want fast slow out", got)
	}

	sorted, filtered, small := checkTUIKeys(t, tm, wants, slowSrc, slowDst)

	tm.keys("q")
	checkTUIQuit(t, tm, p, exitFile, logFile)
	t.Logf("screen sorted by destination:\n%s", strings.Join(sorted, "\n"))
	t.Logf("screen filtered by :9001:\n%s", strings.Join(filtered, "\n"))
	t.Logf("the same at 80x24:\n%s", strings.Join(small, "\n"))
}

// startTUICapture runs the binary with -g on A's veth in a 120x30 tmux pane
// that stays open after it exits, and waits until it is capturing and its
// header is drawn. It returns the pane, the file that gets "EXIT=<code>"
// once the binary exits, and the file of its stderr.
func startTUICapture(t *testing.T, bin string, p *testnet.Pair) (tm *tmuxSession, exitFile, logFile string) {
	t.Helper()
	dir := t.TempDir()
	exitFile, logFile = filepath.Join(dir, "exit"), filepath.Join(dir, "stderr")
	// The pane stays open after the binary exits (sleep), so the test can
	// look at the terminal it left behind.
	command := fmt.Sprintf("nsenter --net=%s -- %s -g -i %s -r 500ms --expire 60s 2>%s; echo EXIT=$? >%s; sleep 60",
		p.A.NetnsPath(), bin, p.A.Link, logFile, exitFile)
	tm = newTmux(t, 120, 30, command)

	// Ready when the programs are attached, as the log says.
	deadline := time.Now().Add(30 * time.Second)
	for {
		log, _ := os.ReadFile(logFile)
		if strings.Contains(string(log), "msg=capturing") {
			break
		}
		if ex, err := os.ReadFile(exitFile); err == nil {
			t.Fatalf("pktstat-bpf exited before capturing (%s): %s", strings.TrimSpace(string(ex)), log)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pktstat-bpf did not start capturing within 30s: %s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tm.waitScreen(10*time.Second, "the header", func(l []string) bool {
		return len(l) > 0 && strings.Contains(l[0], "iface "+p.A.Link)
	})
	return tm, exitFile, logFile
}

// checkTUIHeader checks the header and the rates line of TestE2ETUI's
// screen while its flows send, and the fast flow's row.
func checkTUIHeader(t *testing.T, live []string, fastSrc, fastDst netip.AddrPort) {
	t.Helper()
	// Besides the test's three flows, the kernel's own IPv6 chatter (MLD
	// reports, router and neighbor solicitations) may have rows.
	// The kernel's table is drained at every refresh: it held the flows
	// that sent in the last interval, which the test's three all did.
	m := flowsRE.FindStringSubmatch(live[0])
	if m == nil {
		t.Fatalf("header line: %q has no flow counts", live[0])
	}
	shown, _ := strconv.Atoi(m[1])
	table, _ := strconv.Atoi(m[2])
	if !strings.Contains(live[0], "mode tc/") || table > shown {
		t.Errorf("header line: %q, want the mode, and no more table rows than flows shown", live[0])
	} else if table < 3 {
		t.Errorf("header line: %q, want at least the test's 3 flows in the table", live[0])
	}
	if !strings.HasPrefix(live[1], "in ") || strings.HasPrefix(live[1], "in 0.00 bps") || !strings.Contains(live[1], "out ") {
		t.Errorf("rates line: %q", live[1])
	}
	if f, _ := findRow(live, fastSrc.String(), fastDst.String()); f.dir != "in" || f.proto != "UDP" {
		t.Errorf("fast row: %+v, want a UDP row, in", f)
	}
}

// tuiWant is one of TestE2ETUI's flows once its traffic has stopped.
type tuiWant struct {
	src, dst netip.AddrPort
	packets  uint64
	dir      string
}

// tuiOrder names the rows of TestE2ETUI's fast, slow and out flows
// (wants, in that order) in the order the screen l shows them.
func tuiOrder(l []string, wants []tuiWant) string {
	var names []string
	rows := map[int]string{}
	for name, w := range map[string]tuiWant{"fast": wants[0], "slow": wants[1], "out": wants[2]} {
		r, ok := findRow(l, w.src.String(), w.dst.String())
		if ok {
			rows[r.line] = name
		}
	}
	for i := range l {
		if n, ok := rows[i]; ok {
			names = append(names, n)
		}
	}
	return strings.Join(names, " ")
}

// checkTUIKeys sorts TestE2ETUI's table by destination, reverses it, sorts
// it by bytes, filters it on a port and resizes the pane, checking the
// screen after each; it returns the screens sorted, filtered and resized.
func checkTUIKeys(t *testing.T, tm *tmuxSession, wants []tuiWant, slowSrc, slowDst netip.AddrPort) (sorted, filtered, small []string) {
	t.Helper()
	order := func(l []string) string { return tuiOrder(l, wants) }
	// Destination sort: 198.18.0.1:9001 (slow), :9002 (fast), then
	// 198.18.0.2:40002 (out); r reverses it.
	tm.keys("4")
	sorted = tm.waitScreen(15*time.Second, "sort by destination", func(l []string) bool {
		return order(l) == "slow fast out" && strings.Contains(strings.Join(l, "\n"), "sort destination ▲")
	})
	tm.keys("r")
	tm.waitScreen(15*time.Second, "reversed sort by destination", func(l []string) bool {
		return order(l) == "out fast slow" && strings.Contains(strings.Join(l, "\n"), "sort destination ▼")
	})
	// Bytes: fast has the most.
	tm.keys("2")
	tm.waitScreen(15*time.Second, "sort by bytes", func(l []string) bool {
		return order(l) == "fast slow out" && strings.Contains(strings.Join(l, "\n"), "sort bytes ▼")
	})

	// A filter on a port keeps only the rows that have it.
	tm.keys("/")
	tm.keys("-l", ":9001")
	tm.keys("Enter")
	filtered = tm.waitScreen(15*time.Second, "only the :9001 row", func(l []string) bool {
		return order(l) == "slow" && strings.Contains(strings.Join(l, "\n"), `filter ":9001"`)
	})

	// The table follows a resize down to 80x24; the filter stays.
	tm.run("resize-window", "-t", tuiSession, "-x", "80", "-y", "24")
	small = tm.waitScreen(15*time.Second, "the table redrawn at 80x24", func(l []string) bool {
		_, ok := findRow(l, slowSrc.String(), slowDst.String())
		return ok && len(l) == 24 && strings.HasPrefix(l[23], "q quit")
	})
	for i, l := range small {
		if w := utf8.RuneCountInString(l); w > 80 {
			t.Errorf("line %d is %d columns at 80x24: %q", i, w, l)
		}
	}
	return sorted, filtered, small
}

// checkTUIQuit waits for the binary to exit after q and checks what it
// left: exit code 0, the terminal restored, nothing attached, and no
// warning or error in its log.
func checkTUIQuit(t *testing.T, tm *tmuxSession, p *testnet.Pair, exitFile, logFile string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var exit string
	for {
		b, err := os.ReadFile(exitFile)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			exit = strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pktstat-bpf still running 10s after q")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if exit != "EXIT=0" {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("after q: %s, want EXIT=0; stderr: %s", exit, log)
	}
	// The terminal is back: off the alternate screen, cursor shown.
	if got := strings.TrimSpace(tm.run("display-message", "-p", "-t", tuiSession, "#{alternate_on} #{cursor_flag}")); got != "0 1" {
		t.Errorf("terminal after q: alternate_on cursor_flag = %q, want \"0 1\"", got)
	}
	if left := harness.OurTCX(t, p.A); len(left) > 0 {
		t.Errorf("programs still attached after q: %v", left)
	}
	log, _ := os.ReadFile(logFile)
	if strings.Contains(string(log), "level=ERROR") || strings.Contains(string(log), "level=WARN") {
		t.Errorf("stderr has warnings or errors:\n%s", log)
	}
}

// startTUI runs the binary with -g on A's veth in a fresh tmux pane and
// waits until its table is drawn. It returns the pane and the file that
// gets "EXIT=<code>" once the binary exits.
func startTUI(t *testing.T, bin string, p *testnet.Pair, args ...string) (*tmuxSession, string) {
	t.Helper()
	return startTUISized(t, bin, p, 80, 24, "iface "+p.A.Link, append([]string{"-i", p.A.Link}, args...)...)
}

// startTUISized is startTUI in a pane of width x height, with args as
// given, waiting for a header that contains head.
func startTUISized(t *testing.T, bin string, p *testnet.Pair, width, height int, head string, args ...string) (*tmuxSession, string) {
	t.Helper()
	dir := t.TempDir()
	exitFile, logFile := filepath.Join(dir, "exit"), filepath.Join(dir, "stderr")
	command := fmt.Sprintf("nsenter --net=%s -- %s -g %s 2>%s; echo EXIT=$? >%s; sleep 60",
		p.A.NetnsPath(), bin, strings.Join(args, " "), logFile, exitFile)
	tm := newTmux(t, width, height, command)
	tm.waitScreen(30*time.Second, "the table", func(l []string) bool {
		return len(l) == height && strings.Contains(l[0], head) && strings.HasPrefix(l[height-1], "q quit")
	})
	return tm, exitFile
}

// waitExit waits up to 10 s for the exit file and returns its line.
func waitExit(t *testing.T, exitFile string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(exitFile); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatal("pktstat-bpf still running 10s after it was told to quit")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2ETUIOtherModes: the live table in XDP mode, and in process mode
// with its owner columns, shows a paced UDP flow with its exact packets
// and bytes (frames at XDP, payload in process mode) and, in process mode,
// the sending process; q ends both with exit code 0.
func TestE2ETUIOtherModes(t *testing.T) {
	bin := harness.Binary(t)
	const n, payload = 40, 100
	for _, m := range []struct {
		name, head string
		args       []string
		width      int
		bytes      uint64 // what the mode counts of the n datagrams
	}{
		{"xdp", "mode xdp/native", []string{"-x", "--xdp_mode", "native"}, 80, n * (harness.EthLen + harness.IPv4Len + harness.UDPLen + payload)},
		{"process", "mode process/", []string{"-k"}, 160, n * payload},
	} {
		t.Run(m.name, func(t *testing.T) {
			p := testnet.NewPair(t)
			p.PinNeighbors(t)
			args := append(append([]string(nil), m.args...), "-r", "200ms")
			if m.name == "xdp" {
				args = append(args, "-i", p.A.Link)
			}
			tm, exitFile := startTUISized(t, bin, p, m.width, 24, m.head, args...)
			ln, err := p.A.ListenUDP(netip.AddrPortFrom(p.A.IPv4, 9010))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			src, dst := netip.AddrPortFrom(p.B.IPv4, 40010), netip.AddrPortFrom(p.A.IPv4, 9010)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if sent := pacedUDP(ctx, t, p.B, src, dst, payload, n, 10*time.Millisecond)(); sent != n {
				t.Fatalf("sent %d of %d datagrams", sent, n)
			}
			screen := tm.waitScreen(10*time.Second, "the flow with every datagram", func(l []string) bool {
				for _, line := range l {
					f := strings.Fields(line)
					if !strings.Contains(line, src.String()) || !strings.Contains(line, dst.String()) || len(f) < 5 {
						continue
					}
					packets, err1 := strconv.ParseUint(f[3], 10, 64)
					bytes, err2 := strconv.ParseUint(f[4], 10, 64)
					if err1 != nil || err2 != nil || packets != n || bytes != m.bytes {
						continue
					}
					// Process mode names the sender, this test process.
					return m.name != "process" || strings.Contains(line, " "+strconv.Itoa(os.Getpid())+" ")
				}
				return false
			})
			t.Logf("%s mode:\n%s", m.name, strings.Join(screen, "\n"))
			tm.keys("q")
			if got := waitExit(t, exitFile); got != "EXIT=0" {
				t.Errorf("after q: %s, want EXIT=0", got)
			}
		})
	}
}

// TestE2ETUICgroup: the live table in cgroup mode shows a process inside
// the cgroup with its PID and name, and its datagrams' exact L3 bytes.
func TestE2ETUICgroup(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	parent, child := harness.MakeCgroupTree(t)
	h := harness.StartCgroupHelper(t, p.A, child)
	const n, size = 25, 200
	dst := netip.AddrPortFrom(p.B.IPv4, 6500)
	rx, err := p.B.ListenUDP(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tm, exitFile := startTUISized(t, bin, p, 160, 24, "mode cgroup", "-c", parent, "-r", "200ms")
	src := netip.AddrPortFrom(p.A.IPv4, 42500)
	id := h.Call(t, "udp udp4 %s %s", src, dst)[0]
	defer h.Call(t, "close %s", id)
	h.Call(t, "write %s %d %d", id, n, size)
	if got, err := testnet.ReadUDP(rx, n, size, 5*time.Second); err != nil {
		t.Fatalf("%d of %d datagrams arrived: %v", got, n, err)
	}
	want := []string{strconv.Itoa(n), strconv.Itoa(n * (harness.IPv4Len + harness.UDPLen + size)), "UDP", src.String(), dst.String(), "out", strconv.Itoa(h.PID), harness.CgroupHelperComm}
	screen := tm.waitScreen(10*time.Second, "the inside process's row", func(l []string) bool {
		for _, line := range l {
			f := strings.Fields(line)
			if len(f) >= 11 && slices.Equal(f[3:11], want) {
				return true
			}
		}
		return false
	})
	t.Logf("cgroup mode:\n%s", strings.Join(screen, "\n"))
	tm.keys("q")
	if got := waitExit(t, exitFile); got != "EXIT=0" {
		t.Errorf("after q: %s, want EXIT=0", got)
	}
}

// TestE2ETUIQuitKeys: x and ctrl+c end the table like q does, with exit
// code 0, the terminal restored and nothing left attached; so do SIGINT
// and SIGTERM sent to the process.
func TestE2ETUIQuitKeys(t *testing.T) {
	bin := harness.Binary(t)
	for _, how := range []string{"x", "C-c", "SIGINT", "SIGTERM"} {
		t.Run(how, func(t *testing.T) {
			p := testnet.NewPair(t)
			tm, exitFile := startTUI(t, bin, p, "-r", "200ms")
			if got := strings.TrimSpace(tm.run("display-message", "-p", "-t", tuiSession, "#{alternate_on}")); got != "1" {
				t.Errorf("the table is not on the alternate screen: alternate_on = %q", got)
			}
			if len(harness.OurTCX(t, p.A)) != 2 {
				t.Fatalf("programs attached while the table runs: %v, want ingress and egress", harness.OurTCX(t, p.A))
			}
			switch how {
			case "SIGINT", "SIGTERM":
				sig := map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM}[how]
				// The pane runs a shell whose one child is the binary
				// (nsenter execs it in place).
				shell := strings.TrimSpace(tm.run("display-message", "-p", "-t", tuiSession, "#{pane_pid}"))
				kids, err := os.ReadFile("/proc/" + shell + "/task/" + shell + "/children")
				if err != nil {
					t.Fatal(err)
				}
				f := strings.Fields(string(kids))
				if len(f) != 1 {
					t.Fatalf("pane shell %s has children %q, want the binary alone", shell, f)
				}
				pid, _ := strconv.Atoi(f[0])
				if comm, _ := os.ReadFile("/proc/" + f[0] + "/comm"); strings.TrimSpace(string(comm)) != "pktstat-bpf" {
					t.Fatalf("pane shell's child %d is %q, not pktstat-bpf", pid, comm)
				}
				if err := syscall.Kill(pid, sig); err != nil {
					t.Fatalf("send %s to %d: %v", how, pid, err)
				}
			default:
				tm.keys(how)
			}
			if got := waitExit(t, exitFile); got != "EXIT=0" {
				t.Errorf("after %s: %s, want EXIT=0", how, got)
			}
			if got := strings.TrimSpace(tm.run("display-message", "-p", "-t", tuiSession, "#{alternate_on} #{cursor_flag}")); got != "0 1" {
				t.Errorf("terminal after %s: alternate_on cursor_flag = %q, want \"0 1\"", how, got)
			}
			if left := harness.OurTCX(t, p.A); len(left) > 0 {
				t.Errorf("programs still attached after %s: %v", how, left)
			}
		})
	}
}

// TestE2ETUINoTerminal: without a terminal, -g fails at once with a clear
// message and attaches nothing.
func TestE2ETUINoTerminal(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	cmd := p.A.Command(bin, "-g", "-i", p.A.Link)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 1 || !strings.Contains(stderr.String(), "-g (--tui) needs a terminal") || stdout.Len() != 0 {
		t.Errorf("-g without a terminal: exit %d, stdout %q, stderr %q; want exit 1 and the reason", code, stdout.String(), stderr.String())
	}
	if strings.Contains(stderr.String(), "msg=capturing") {
		t.Errorf("-g without a terminal attached before failing: %s", stderr.String())
	}
}

var untrackedRE = regexp.MustCompile(`^! flow table full \(2/2\), raise --max-entries: (\d+) packets \(`)

// TestE2ETUITableFull: with a flow table of 2 entries and more flows than
// that, the header warns, and counts at least the packets that no row
// shows.
func TestE2ETUITableFull(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	ln, err := p.A.ListenUDP(netip.AddrPortFrom(p.A.IPv4, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Every refresh drains the table, so the three flows fill it only if
	// they arrive between two refreshes: the sockets are opened first, and
	// the datagrams go out in turns within a fraction of a millisecond of
	// the second between refreshes.
	tm, exitFile := startTUI(t, bin, p, "--max-entries", "2", "-r", "1s")
	const perFlow = 10
	var (
		srcs  []netip.AddrPort
		conns []*net.UDPConn
	)
	for i := range 3 {
		src := netip.AddrPortFrom(p.B.IPv4, uint16(41000+i))
		srcs = append(srcs, src)
		c, err := p.B.DialUDP(src, netip.AddrPortFrom(p.A.IPv4, 9))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	payload := make([]byte, 64)
	for range perFlow {
		for _, c := range conns {
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each of the test's packets is on a row or counted in the warning,
	// so the screen to check is the first whose warning and rows hold
	// them all; one drawn while they were arriving would hold fewer.
	var lost, shown uint64
	lines := tm.waitScreen(10*time.Second, "a table-full warning that accounts for all of the test's packets", func(l []string) bool {
		m := untrackedRE.FindStringSubmatch(l[2])
		if m == nil {
			return false
		}
		lost, _ = strconv.ParseUint(m[1], 10, 64)
		shown = 0
		for _, src := range srcs {
			if r, ok := findRow(l, src.String(), netip.AddrPortFrom(p.A.IPv4, 9).String()); ok {
				shown += r.packets
			}
		}
		// The kernel's own IPv6 chatter may hold rows or be lost too,
		// so the test's packets give a lower bound.
		return lost > 0 && lost+shown >= 3*perFlow
	})
	if shown > 2*perFlow {
		t.Errorf("rows hold %d of the test's packets, but a table of 2 rows holds at most 2 of its 3 flows of %d:\n%s",
			shown, perFlow, strings.Join(lines, "\n"))
	}
	t.Logf("screen with a full table:\n%s", strings.Join(lines, "\n"))
	if !strings.Contains(lines[0], "table 2/2") {
		t.Errorf("header: %q, want table 2/2", lines[0])
	}
	tm.keys("q")
	if got := waitExit(t, exitFile); got != "EXIT=0" {
		t.Errorf("after q: %s", got)
	}
}
