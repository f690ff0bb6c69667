// Package app runs one capture from start to report: it resolves the
// interface, starts the capture, waits for the timeout or a signal, and
// renders the report.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/cilium/ebpf/rlimit"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/capture"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cgroups"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/report"
)

// Source is a running capture as the run drives it: drained (through the
// pipeline only), stopped, closed. Every capture.Source is one; tests use
// fakes.
type Source interface {
	pipeline.Source
	// Stop detaches the programs: counting ends, the table stays readable.
	Stop() error
	// Close detaches the programs and frees the kernel objects.
	Close() error
	// Describe names the mode and how it is attached, for the log.
	Describe() string
}

// starter loads and attaches the programs of the mode cfg asks for.
type starter func(cfg cli.Config, ifc netif.Interface, log *slog.Logger) (Source, error)

// Run captures until cfg.Timeout passes or ctx is cancelled, then writes the
// report to out. A cancelled ctx (SIGINT, SIGTERM) is a normal end.
func Run(ctx context.Context, cfg cli.Config, out io.Writer, log *slog.Logger) error {
	return run(ctx, cfg, out, log, start)
}

// run is Run with the capture started by start.
func run(ctx context.Context, cfg cli.Config, out io.Writer, log *slog.Logger, start starter) (err error) {
	if cfg.Read != nil {
		return runRead(ctx, cfg, os.Stdin, out, log)
	}
	if err := checkTerminal(cfg, out); err != nil {
		return err
	}
	ifc, where, err := resolveTarget(cfg)
	if err != nil {
		return err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones
	// charge the cgroup, and there a failure here is harmless.
	if err := rlimit.RemoveMemlock(); err != nil {
		log.Debug("could not raise RLIMIT_MEMLOCK", "error", err)
	}

	// The daemon's listener and statistics come first: a port in use or a
	// capability missing fails before anything is attached.
	var (
		metricsLn net.Listener
		stats     statsState
	)
	if cfg.Listen != "" {
		if metricsLn, err = listenMetrics(cfg, log); err != nil {
			return err
		}
		defer metricsLn.Close()
		if stats, err = bpfStats(cfg.BPFStats, log); err != nil {
			return err
		}
		defer stats.stop()
	}
	exp, err := newIPFIX(cfg, log)
	if err != nil {
		return err
	}
	src, err := start(cfg, ifc, log)
	if err != nil {
		return fmt.Errorf("start capture on %s: %w", where.Value, withCapsHint(err, cfg.Mode))
	}
	defer func() {
		if cerr := src.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("detach from %s: %w", where.Value, cerr))
			return
		}
		if brokenPipe(err) {
			// Whoever read the output has gone (pktstat-bpf | head -1):
			// a normal end, now that nothing is attached.
			err = nil
		}
	}()
	begin := time.Now()
	log.Info("capturing", where, "mode", src.Describe(), "max_entries", cfg.MaxEntries, "timeout", cfg.Timeout.String())
	// Every drain goes through pipe, which hands it to each consumer.
	pipe := pipeline.New(src, nil)
	if exp != nil {
		// Deferred after the detach: it runs first, once the run has
		// stopped counting and written its report.
		defer startIPFIX(exp, pipe, cfg.MaxEntries, cfg.IPFIX.Interval, begin, log).close(time.Time{})
	}
	if cfg.TUI {
		return runTUI(ctx, cfg, ifc, src.Describe(), pipe, begin, out)
	}
	if metricsLn != nil {
		return runDaemon(ctx, cfg, ifc, src, pipe, begin, metricsLn, stats.on, out, log)
	}
	p := newPeriods(pipe, cfg.MaxEntries, ifc, cfg.Top, begin, log)
	p.filter = cfg.Filter != nil
	p.group = cfg.GroupBy

	if cfg.Interval > 0 {
		return streamIntervals(ctx, cfg, src, p, out)
	}
	wait(ctx, cfg.Timeout)
	// The report comes first: a failed detach must not lose it.
	stopErr := src.Stop()
	if stopErr != nil {
		stopErr = fmt.Errorf("detach from %s: %w", where.Value, stopErr)
	}
	return errors.Join(writeReport(cfg, p, out), stopErr)
}

// writeReport writes the report of the period that ends now, as JSON or
// plain text as cfg asks.
func writeReport(cfg cli.Config, p *periods, out io.Writer) error {
	r, err := p.next(time.Now())
	if err != nil {
		return err
	}
	if cfg.JSON {
		return report.WriteJSON(out, r)
	}
	return report.WritePlain(out, r)
}

// resolveTarget finds what the capture watches: an interface, or in cgroup
// mode a cgroup v2 directory (which sees every interface). where names it
// for the log and for errors.
func resolveTarget(cfg cli.Config) (ifc netif.Interface, where slog.Attr, err error) {
	if cfg.Mode == cli.ModeCgroup {
		dir, err := cgroups.Open(cfg.Cgroup)
		if err != nil {
			return ifc, where, err
		}
		return ifc, slog.String("cgroup", dir.Path), nil
	}
	if cfg.Mode == cli.ModeProcess {
		// Process mode sees every interface of every network namespace.
		return ifc, slog.String("processes", "every process"), nil
	}
	if cfg.MultiIface() {
		return resolveSeveral(cfg)
	}
	ifc, err = netif.Resolve(cfg.Iface)
	return ifc, slog.String("iface", ifc.Name), err
}

// streamIntervals writes a report of every interval until the timeout or
// a signal, and then one of the last, shorter interval.
func streamIntervals(ctx context.Context, cfg cli.Config, src Source, p *periods, out io.Writer) error {
	write := report.WritePlainInterval
	if cfg.JSON {
		write = report.WriteNDJSON
	}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var timeout <-chan time.Time
	if cfg.Timeout > 0 {
		t := time.NewTimer(cfg.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case now := <-tick.C:
			r, err := p.next(now)
			if err != nil {
				return err
			}
			if err := write(out, r); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
		case <-timeout:
		}
		// The last report comes first: a failed detach must not lose it.
		stopErr := src.Stop()
		if stopErr != nil {
			stopErr = fmt.Errorf("detach: %w", stopErr)
		}
		r, err := p.next(time.Now())
		if err == nil {
			err = write(out, r)
		}
		return errors.Join(err, stopErr)
	}
}

// start loads and attaches the programs of the capture mode cfg asks for,
// then gives up the privileges the rest of the run does not need.
func start(cfg cli.Config, ifc netif.Interface, log *slog.Logger) (Source, error) {
	as, err := runAs(cfg, os.Geteuid(), log)
	if err != nil {
		return nil, err
	}
	src, err := startCapture(cfg, ifc, log)
	if err != nil {
		return nil, err
	}
	dropPrivileges(src.Describe(), cfg.AnyIfaces(), as, log)
	return src, nil
}

// startCapture loads and attaches the programs of the capture mode cfg asks for.
func startCapture(cfg cli.Config, ifc netif.Interface, log *slog.Logger) (Source, error) {
	switch cfg.Mode {
	case cli.ModeCgroup:
		dir, err := cgroups.Open(cfg.Cgroup)
		if err != nil {
			return nil, err
		}
		c, err := capture.StartCgroup(capture.CgroupOptions{Dir: dir, MaxEntries: cfg.MaxEntries, Log: log, Filter: cfg.Filter})
		if err != nil {
			return nil, err
		}
		return c, nil
	case cli.ModeProcess:
		return startProcess(cfg, log)
	case cli.ModeXDP:
		x, err := capture.StartXDP(capture.XDPOptions{
			Ifindex:    ifc.Index,
			Several:    ifc.Several,
			MaxEntries: cfg.MaxEntries,
			NoARP:      cfg.NoARP,
			Filter:     cfg.Filter,
			Attach:     attach.XDPMode(cfg.XDPMode),
			Log:        log,
		})
		if err != nil {
			return nil, err
		}
		log.Info("XDP program attached", "iface", ifc.Name, "xdp_mode", string(x.Mode()), "requested", string(cfg.XDPMode), "multi_buffer", x.Frags())
		log.Warn("XDP sees only ingress: traffic that this interface sends is not counted; run without -x to count both directions with TC", "iface", ifc.Name)
		if x.Mode() == attach.XDPGeneric {
			log.Warn("generic XDP runs after the stack has built the packet: a GRO/GSO packet counts as one frame of its whole length, not as its wire segments; native XDP or TC count segments", "iface", ifc.Name)
		}
		return x, nil
	default:
		t, err := capture.StartTC(capture.TCOptions{
			Ifindex:    ifc.Index,
			Several:    ifc.Several,
			MaxEntries: cfg.MaxEntries,
			NoARP:      cfg.NoARP,
			Filter:     cfg.Filter,
			Attach:     attach.TCMode(cfg.TCAttach),
			Log:        log,
		})
		if err != nil {
			return nil, err
		}
		return t, nil
	}
}

// wait returns when ctx is done or, if timeout is not 0, when it passes.
func wait(ctx context.Context, timeout time.Duration) {
	if timeout == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// brokenPipe reports whether err is nothing but writes to a reader that
// has gone (EPIPE): every error joined in it is one.
func brokenPipe(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case syscall.Errno:
		return e == syscall.EPIPE
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, x := range errs {
			if !brokenPipe(x) {
				return false
			}
		}
		return len(errs) > 0
	}
	return brokenPipe(errors.Unwrap(err))
}
