package app

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/pktstat-bpf/pktstat-bpf/internal/capture"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/metrics"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
)

// shutdownWait bounds how long a scrape under way may delay the exit.
const shutdownWait = 5 * time.Second

// listenMetrics checks the web config and binds the metrics address. It
// runs before anything is attached, so that a broken config or a busy port
// fails at once and leaves nothing behind.
func listenMetrics(cfg cli.Config) (net.Listener, error) {
	if cfg.WebConfigFile != "" {
		if err := web.Validate(cfg.WebConfigFile); err != nil {
			return nil, fmt.Errorf("invalid --web.config.file %s: %w", cfg.WebConfigFile, err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", cfg.Listen, err)
	}
	return ln, nil
}

// programSource is a capture that names its eBPF programs, for their
// run-time statistics.
type programSource interface {
	Programs() map[string]*ebpf.Program
}

// runDaemon serves /metrics on ln until ctx ends (SIGINT, SIGTERM) or
// the timeout passes. Each scrape drains the kernel's table. Reports are
// written only when asked for: with -j or --output, one of the whole run
// at the end; with --interval, one of every interval. They are built from
// the same drains as the metrics, so each count lands in exactly one
// report and in the counters.
func runDaemon(ctx context.Context, cfg cli.Config, ifc netif.Interface, src capture.Source, begin time.Time, ln net.Listener, statsOn func() bool, out io.Writer, log *slog.Logger) (err error) {
	defer ln.Close()
	var acc *accumulator
	if !cfg.NoReport {
		acc = newAccumulator(cfg.MaxEntries)
	}

	opts := metrics.Options{
		Source:       src,
		Iface:        ifc.Name,
		Mode:         src.Describe(),
		Cgroup:       cfg.Cgroup,
		MaxEntries:   cfg.MaxEntries,
		Top:          cfg.MetricsTop,
		Owners:       cfg.Mode != cli.ModeTC && cfg.Mode != cli.ModeXDP,
		StatsEnabled: statsOn,
		Log:          log,
	}
	if p, ok := src.(programSource); ok {
		opts.Programs = p.Programs()
	}
	if acc != nil {
		opts.Tap = acc.add
	}
	coll := metrics.New(opts)
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		coll,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}

	// The endpoint serves /metrics and nothing else: no profiling, no
	// landing page that could say more than the flags ask for.
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	served := make(chan struct{})
	go func() {
		defer close(served)
		flags := &web.FlagConfig{
			WebListenAddresses: &[]string{cfg.Listen},
			WebSystemdSocket:   new(bool),
			WebConfigFile:      &cfg.WebConfigFile,
		}
		if err := web.Serve(ln, srv, flags, log); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cancel(fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err))
		}
	}()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), shutdownWait)
		defer scancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop serving metrics: %w", serr))
		}
		<-served
	}()
	scheme := "http"
	if cfg.WebConfigFile != "" {
		scheme = "http or https, as --web.config.file says"
	}
	log.Info("serving metrics", "address", ln.Addr().String(), "path", "/metrics", "scheme", scheme, "metrics_top", cfg.MetricsTop)

	if acc == nil {
		wait(ctx, cfg.Timeout)
		return serveError(ctx)
	}
	rs := &accumulated{Source: src, coll: coll, acc: acc}
	p := newPeriods(rs, ifc, cfg.Top, begin, log)
	if cfg.Interval > 0 {
		if err := streamIntervals(ctx, cfg, rs, p, out); err != nil {
			return err
		}
		return serveError(ctx)
	}
	wait(ctx, cfg.Timeout)
	if err := serveError(ctx); err != nil {
		return err
	}
	if err := src.Stop(); err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	return writeReport(cfg, p, out)
}

// serveError returns why the metrics server stopped on its own, or nil if
// the run ended as runs end (a signal, the timeout).
func serveError(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// bpfStats returns whether the kernel's run-time statistics of eBPF
// programs are on, and how to turn off what it turned on. With enable
// (--bpf-stats) it turns them on while the daemon runs, which needs
// CAP_SYS_ADMIN; they are off by default because they time every run of
// every eBPF program on the host. Otherwise an administrator's
// sysctl kernel.bpf_stats_enabled=1 is honoured, checked at every scrape.
func bpfStats(enable bool, log *slog.Logger) (statsState, error) {
	if !enable {
		if !metrics.SysctlStatsEnabled() {
			log.Info("eBPF run-time statistics are off, so pktstat_bpf_program_* are not exported; add --bpf-stats (with CAP_SYS_ADMIN) or set sysctl kernel.bpf_stats_enabled=1 to get them")
		}
		return statsState{on: metrics.SysctlStatsEnabled, stop: func() {}}, nil
	}
	c, err := metrics.EnableBPFStats()
	if err != nil {
		return statsState{}, fmt.Errorf("--bpf-stats: %w (it needs CAP_SYS_ADMIN)", err)
	}
	log.Info("eBPF run-time statistics enabled while pktstat-bpf runs; they time every run of every eBPF program on this host")
	return statsState{on: func() bool { return true }, stop: func() { _ = c.Close() }}, nil
}

// statsState says whether eBPF run-time statistics are on, and turns off
// what bpfStats turned on.
type statsState struct {
	on   func() bool
	stop func()
}

// accumulated is the capture as reports see it in a daemon: a drain for a
// report drains through the collector (so the metrics count it too) and
// returns everything drained since the previous report, scrapes included.
type accumulated struct {
	capture.Source
	coll *metrics.Collector
	acc  *accumulator
}

func (a *accumulated) Drain() (capture.Snapshot, error) {
	if _, err := a.coll.Drain(); err != nil {
		return capture.Snapshot{}, err
	}
	return a.acc.take(), nil
}

// accumulator adds up drains into one report's rows. It holds at most max
// rows, as the kernel's table does: traffic of further flows is counted as
// untracked, with its flows estimated by a HyperLogLog sketch.
type accumulator struct {
	mu   sync.Mutex
	max  int
	seed maphash.Seed
	rows map[flow.Key]flow.Counters
	// untracked is what the kernel's table or this one had no room for.
	untracked [flow.NumDirections]flow.Counters
	// kernelFlows adds up each drain's estimate of the flows the kernel
	// had no room for: an upper bound, since a flow without room in two
	// drains is estimated twice.
	kernelFlows uint64
	dropped     flow.HLL
}

func newAccumulator(maxRows uint32) *accumulator {
	return &accumulator{max: int(maxRows), seed: maphash.MakeSeed(), rows: map[flow.Key]flow.Counters{}}
}

// add folds one drain in.
func (a *accumulator) add(s capture.Snapshot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range s.Flows {
		c, ok := a.rows[f.Key]
		if !ok && len(a.rows) >= a.max {
			a.untracked[f.Dir].Add(f.Counters)
			a.dropped.Add(maphash.Comparable(a.seed, f.Key))
			continue
		}
		c.Add(f.Counters)
		a.rows[f.Key] = c
	}
	for dir, u := range s.Untracked {
		a.untracked[dir].Add(u)
	}
	a.kernelFlows += s.UntrackedFlows
}

// take returns what was added since the previous take, and starts anew.
func (a *accumulator) take() capture.Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := capture.Snapshot{Flows: make([]flow.Flow, 0, len(a.rows)), Untracked: a.untracked, UntrackedFlows: a.kernelFlows}
	for k, c := range a.rows {
		s.Flows = append(s.Flows, flow.Flow{Key: k, Counters: c})
	}
	if a.dropped != (flow.HLL{}) {
		s.UntrackedFlows += a.dropped.Estimate()
	}
	clear(a.rows)
	a.untracked = [flow.NumDirections]flow.Counters{}
	a.kernelFlows = 0
	a.dropped = flow.HLL{}
	return s
}
