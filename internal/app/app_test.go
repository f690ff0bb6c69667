package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/metrics"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// fakeSource is a capture whose nth drain (from 1) holds n packets of
// 100 bytes each in one UDP flow, its port the drain's number, and, when
// lost is set, 7 packets that found the table full. It records what the
// run did to it, in order.
type fakeSource struct {
	mu      sync.Mutex
	drains  int
	lost    bool
	stopErr error // what Stop returns
	closeEr error // what Close returns
	events  []string
}

func (f *fakeSource) Drain() (flow.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drains++
	f.events = append(f.events, "drain")
	n := uint64(f.drains)
	s := flow.Snapshot{Flows: []flow.Flow{{
		Key: flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoUDP, Src: netip.MustParseAddr("198.18.0.1"),
			Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: uint16(f.drains), DstPort: 53, Dir: flow.Out},
		Counters: flow.Counters{Packets: n, Bytes: 100 * n},
	}}}
	if f.lost {
		s.Untracked[flow.In] = flow.Counters{Packets: 7, Bytes: 700}
		s.UntrackedFlows = 3
	}
	return s, nil
}

func (f *fakeSource) record(e string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
	return nil
}

func (f *fakeSource) Stop() error {
	f.record("stop")
	return f.stopErr
}
func (f *fakeSource) Close() error {
	f.record("close")
	return f.closeEr
}
func (f *fakeSource) Describe() string { return "fake" }

// total is what the first n drains held: 1 + 2 + ... + n packets.
func total(n int) flow.Counters {
	p := uint64(n * (n + 1) / 2)
	return flow.Counters{Packets: p, Bytes: 100 * p}
}

// runFake runs the tool on f with cfg (process mode, which resolves no
// interface) and returns its output and log.
func runFake(t *testing.T, ctx context.Context, cfg cli.Config, f *fakeSource) (string, string) {
	t.Helper()
	cfg.Mode = cli.ModeProcess
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 64
	}
	var out, logged testnet.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	start := func(cli.Config, netif.Interface, *slog.Logger) (Source, error) { return f, nil }
	if err := run(ctx, cfg, &out, log, start); err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, logged.String())
	}
	return out.String(), logged.String()
}

type jsonRow struct {
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
	SrcPort   uint16 `json:"srcPort"`
	Overflow  bool   `json:"overflow"`
	Untracked uint64 `json:"untrackedFlows"`
}

func sumRows(rows []jsonRow) (c, overflow flow.Counters) {
	for _, r := range rows {
		if r.Overflow {
			overflow.Add(flow.Counters{Packets: r.Packets, Bytes: r.Bytes})
			continue
		}
		c.Add(flow.Counters{Packets: r.Packets, Bytes: r.Bytes})
	}
	return c, overflow
}

// TestRunReportAtEnd: one report at the timeout, of the one drain made
// after the programs were detached, and the capture closed last.
func TestRunReportAtEnd(t *testing.T) {
	f := &fakeSource{lost: true}
	begin := time.Now()
	out, logged := runFake(t, context.Background(), cli.Config{Timeout: 200 * time.Millisecond, JSON: true}, f)
	took := time.Since(begin)
	var rows []jsonRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	got, overflow := sumRows(rows)
	if got != total(1) || overflow != (flow.Counters{Packets: 7, Bytes: 700}) {
		t.Errorf("report holds %+v and overflow %+v, want %+v and 7/700", got, overflow, total(1))
	}
	if strings.Join(f.events, ",") != "stop,drain,close" {
		t.Errorf("the run did %v, want stop, drain, close", f.events)
	}
	if !strings.Contains(logged, "level=WARN") || !strings.Contains(logged, "flow table was full") {
		t.Errorf("no warning of the full table in the log:\n%s", logged)
	}
	if took < 200*time.Millisecond {
		t.Errorf("the run ended after %v, before its 200ms timeout", took)
	}
}

// TestRunIntervals: a report of every interval, then one of the last,
// shorter interval; every drain in exactly one report, and the intervals
// adding up to the run.
func TestRunIntervals(t *testing.T) {
	f := &fakeSource{}
	const interval, timeout = 100 * time.Millisecond, 350 * time.Millisecond
	out, _ := runFake(t, context.Background(), cli.Config{Timeout: timeout, Interval: interval, JSON: true}, f)
	type line struct {
		Interval float64   `json:"interval"`
		Rows     []jsonRow `json:"rows"`
	}
	var (
		lines   []line
		sum     flow.Counters
		elapsed float64
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
		c, _ := sumRows(l.Rows)
		sum.Add(c)
		elapsed += l.Interval
	}
	// The ticker fires at 100, 200 and 300 ms unless a tick is skipped on
	// a busy machine; the last report covers the rest, up to 350 ms.
	if len(lines) < 2 || len(lines) != f.drains {
		t.Fatalf("%d reports of %d drains, want one per drain and at least 2:\n%s", len(lines), f.drains, out)
	}
	if sum != total(f.drains) {
		t.Errorf("the reports hold %+v, the drains %+v", sum, total(f.drains))
	}
	last := lines[len(lines)-1].Interval
	if last <= 0 || last >= interval.Seconds() {
		t.Errorf("the last interval is %vs, want a part of %v", last, interval)
	}
	for _, l := range lines[:len(lines)-1] {
		if whole := l.Interval / interval.Seconds(); whole < 0.8 {
			t.Errorf("an interval of %vs, shorter than %v", l.Interval, interval)
		}
	}
	if elapsed < timeout.Seconds() || elapsed > timeout.Seconds()+0.5 {
		t.Errorf("the intervals add up to %vs, want the %v run", elapsed, timeout)
	}
}

var addrRE = regexp.MustCompile(`msg="serving metrics" address=(\S+)`)

// TestRunDaemon: scrapes and the end-of-run report drain through one
// pipeline: the counters hold every drain so far at each scrape, and the
// report holds every drain of the run, the scrapes' included, once.
func TestRunDaemon(t *testing.T) {
	f := &fakeSource{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logged testnet.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	var out testnet.LockedBuffer
	cfg := cli.Config{Mode: cli.ModeProcess, MaxEntries: 64, JSON: true, Listen: "127.0.0.1:0", MetricsTop: 1}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, &out, log, func(cli.Config, netif.Interface, *slog.Logger) (Source, error) { return f, nil })
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(logged.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("the daemon did not serve metrics:\n%s", logged.String())
		}
	}
	packetsRE := regexp.MustCompile(`(?m)^pktstat_packets_total\{direction="out",iface="",protocol="UDP"\} (\d+)$`)
	scrape := func(n int) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		m := packetsRE.FindSubmatch(body)
		if want := total(n).Packets; m == nil || string(m[1]) != strconv.FormatUint(want, 10) {
			t.Fatalf("scrape %d: packets %q, want %d (every drain so far)", n, m, want)
		}
	}
	for n := 1; n <= 3; n++ {
		if n > 1 {
			time.Sleep(metrics.ReuseWithin + 50*time.Millisecond) // a drain of its own
		}
		scrape(n)
	}
	// At once after the third: its answer again, without a drain.
	scrape(3)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var rows []jsonRow
	if err := json.Unmarshal([]byte(out.String()), &rows); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	got, _ := sumRows(rows)
	if f.drains != 4 || got != total(4) || len(rows) != 4 {
		t.Errorf("%d drains; the report holds %+v in %d rows, want %+v in 4 (3 scrapes and the end)", f.drains, got, len(rows), total(4))
	}
}

// brokenWriter fails every write as a pipe whose reader has gone does.
type brokenWriter struct{ writes int }

func (w *brokenWriter) Write([]byte) (int, error) {
	w.writes++
	return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
}

// TestRunEnds: a failed detach still gives the report, and the error
// after it; output nobody reads any more (EPIPE) ends the run without an
// error, once the capture is closed, but not when the detach failed too.
func TestRunEnds(t *testing.T) {
	gone := errors.New("remove cls_bpf filter (prio 1): operation not permitted")
	for _, c := range []struct {
		name     string
		interval time.Duration
	}{{"report", 0}, {"intervals", 100 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := cli.Config{Mode: cli.ModeProcess, MaxEntries: 64, Timeout: 250 * time.Millisecond, Interval: c.interval, JSON: true}
			start := func(f *fakeSource) starter {
				return func(cli.Config, netif.Interface, *slog.Logger) (Source, error) { return f, nil }
			}
			log := slog.New(slog.DiscardHandler)

			f := &fakeSource{stopErr: gone}
			var out testnet.LockedBuffer
			err := run(context.Background(), cfg, &out, log, start(f))
			if !errors.Is(err, gone) || !strings.Contains(out.String(), `"packets"`) {
				t.Errorf("failed detach: error %v and report %q; want both", err, out.String())
			}

			f = &fakeSource{}
			w := &brokenWriter{}
			if err := run(context.Background(), cfg, w, log, start(f)); err != nil || w.writes == 0 {
				t.Errorf("closed output: error %v after %d writes; want none after a write", err, w.writes)
			}
			if e := f.events; len(e) == 0 || e[len(e)-1] != "close" {
				t.Errorf("closed output: the run did %v, want the capture closed last", e)
			}

			// Close detaches what Stop did not (an interval write fails
			// before the run stops), and fails the same way.
			f = &fakeSource{stopErr: gone, closeEr: gone}
			if err := run(context.Background(), cfg, &brokenWriter{}, log, start(f)); !errors.Is(err, gone) {
				t.Errorf("closed output and a failed detach: error %v, want the detach's", err)
			}
		})
	}
}
