package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"

	"github.com/pktstat-bpf/pktstat-bpf/internal/buildinfo"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/metrics"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
)

// shutdownWait bounds how long a scrape under way may delay the exit.
const shutdownWait = 5 * time.Second

// listenMetrics checks the web config and binds the metrics address. It
// runs before anything is attached, so that a broken config or a busy port
// fails at once and leaves nothing behind.
func listenMetrics(cfg cli.Config, log *slog.Logger) (net.Listener, error) {
	var sec webSecurity
	if cfg.WebConfigFile != "" {
		if err := web.Validate(cfg.WebConfigFile); err != nil {
			return nil, fmt.Errorf("invalid --web.config.file %s: %w", cfg.WebConfigFile, err)
		}
		var err error
		if sec, err = readWebSecurity(cfg.WebConfigFile); err != nil {
			return nil, fmt.Errorf("invalid --web.config.file %s: %w", cfg.WebConfigFile, err)
		}
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("invalid --listen %s: %w", cfg.Listen, err)
	}
	ip, ipErr := netip.ParseAddr(host)
	loopback := host == "localhost" || (ipErr == nil && ip.IsLoopback())
	switch {
	case !loopback && !(sec.tls && sec.auth) && !cfg.InsecureListen:
		return nil, &cli.UsageError{Err: fmt.Errorf("--listen %s can be reached from other hosts, and without both TLS and basic auth in --web.config.file anyone there reads the top flows and makes the tool drain: listen on loopback, give a web config with tls_server_config and basic_auth_users, or add --insecure-listen", cfg.Listen)}
	case !loopback && !(sec.tls && sec.auth):
		log.Warn("serving metrics without both TLS and basic auth on an address other hosts can reach (--insecure-listen)", "address", cfg.Listen)
	}
	if sec.auth && !sec.tls {
		log.Warn("basic auth without TLS: passwords cross the network in clear text; add tls_server_config to --web.config.file")
	}
	// An IPv4 address binds IPv4 only: "0.0.0.0" must not serve on [::]
	// as well, as a plain "tcp" listener would.
	network := "tcp"
	if ipErr == nil {
		network = "tcp6"
		if ip.Is4() {
			network = "tcp4"
		}
	}
	ln, err := net.Listen(network, cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", cfg.Listen, err)
	}
	return ln, nil
}

// webSecurity is what a web config turns on.
type webSecurity struct{ tls, auth bool }

// readWebSecurity reads whether the web config at path (which
// web.Validate accepted) serves TLS and asks for basic auth.
func readWebSecurity(path string) (webSecurity, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return webSecurity{}, err
	}
	var c web.Config
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return webSecurity{}, err
	}
	return webSecurity{
		tls:  c.TLSConfig.TLSCertPath != "" || c.TLSConfig.TLSCert != "",
		auth: len(c.Users) > 0,
	}, nil
}

// errorLogLimit is how many lines the metrics server may log a minute
// (TLS handshake failures, broken connections); a flood of them from a
// scanner must not flood the log.
const errorLogLimit = 10

// limitedLog passes at most errorLogLimit lines a minute to log, at
// warning level, and says how many it left out.
type limitedLog struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	window  time.Time // the start of the current minute
	lines   int       // lines logged in it
	dropped int       // lines left out since the last note of them
}

func (l *limitedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.window) >= time.Minute {
		if l.dropped > 0 {
			l.log.Warn("metrics server errors left out of the log", "count", l.dropped)
		}
		l.window, l.lines, l.dropped = now, 0, 0
	}
	if l.lines >= errorLogLimit {
		l.dropped++
		return len(p), nil
	}
	l.lines++
	l.log.Warn("metrics server", "error", strings.TrimSpace(string(p)))
	return len(p), nil
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
func runDaemon(ctx context.Context, cfg cli.Config, ifc netif.Interface, src Source, pipe *pipeline.Pipeline, begin time.Time, ln net.Listener, statsOn func() bool, out io.Writer, log *slog.Logger) (err error) {
	defer ln.Close()
	var p *periods
	if !cfg.NoReport {
		// Reports are cut from the same drains as the metrics, scrapes
		// included: each count lands in exactly one report and in the
		// counters. The ledger is registered before the first scrape.
		p = newPeriods(pipe, cfg.MaxEntries, ifc, cfg.Top, begin, log)
		p.group = cfg.GroupBy
	}
	opts := metrics.Options{
		Pipeline:     pipe,
		Iface:        ifc.Name,
		Mode:         src.Describe(),
		Cgroup:       cfg.Cgroup,
		MaxEntries:   cfg.MaxEntries,
		Top:          cfg.MetricsTop,
		Owners:       cfg.Mode != cli.ModeTC && cfg.Mode != cli.ModeXDP,
		Filter:       cfg.Filter != nil,
		StatsEnabled: statsOn,
		ReuseWithin:  metrics.ReuseWithin,
		Log:          log,
	}
	if p, ok := src.(programSource); ok {
		opts.Programs = p.Programs()
	}
	coll := metrics.New(opts)
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		coll,
		metrics.BuildInfo(buildinfo.Read()),
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
	// Timeouts bound what a slow or idle client holds: a request's
	// headers, the whole request, the answer (a scrape's own timeout is
	// 30 s), and a kept-alive connection between scrapes.
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      45 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          stdlog.New(&limitedLog{log: log, now: time.Now}, "", 0),
	}
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

	if p == nil {
		wait(ctx, cfg.Timeout)
		return serveError(ctx)
	}
	if cfg.Interval > 0 {
		if err := streamIntervals(ctx, cfg, src, p, out); err != nil {
			return err
		}
		return serveError(ctx)
	}
	wait(ctx, cfg.Timeout)
	if err := serveError(ctx); err != nil {
		return err
	}
	// The report comes first: a failed detach must not lose it.
	stopErr := src.Stop()
	if stopErr != nil {
		stopErr = fmt.Errorf("detach: %w", stopErr)
	}
	return errors.Join(writeReport(cfg, p, out), stopErr)
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
