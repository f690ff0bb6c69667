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
	"time"

	"github.com/cilium/ebpf/rlimit"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/capture"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
	"github.com/pktstat-bpf/pktstat-bpf/internal/report"
)

// Run captures until cfg.Timeout passes or ctx is cancelled, then writes the
// report to out. A cancelled ctx (SIGINT, SIGTERM) is a normal end.
func Run(ctx context.Context, cfg cli.Config, out io.Writer, log *slog.Logger) (err error) {
	ifc, err := netif.Resolve(cfg.Iface)
	if err != nil {
		return err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later ones
	// charge the cgroup, and there a failure here is harmless.
	if err := rlimit.RemoveMemlock(); err != nil {
		log.Debug("could not raise RLIMIT_MEMLOCK", "error", err)
	}

	src, err := start(cfg, ifc, log)
	if err != nil {
		return fmt.Errorf("start capture on %s: %w", ifc.Name, err)
	}
	defer func() {
		if cerr := src.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("detach from %s: %w", ifc.Name, cerr))
		}
	}()
	begin := time.Now()
	log.Info("capturing", "iface", ifc.Name, "mode", src.Describe(), "max_entries", cfg.MaxEntries, "timeout", cfg.Timeout.String())

	wait(ctx, cfg.Timeout)
	if err := src.Stop(); err != nil {
		return fmt.Errorf("detach from %s: %w", ifc.Name, err)
	}
	elapsed := time.Since(begin)

	snap, err := src.Read()
	if err != nil {
		return err
	}
	if snap.Untracked.Packets > 0 {
		log.Warn("the flow table was full: some traffic is counted only in the overflow row", "packets", snap.Untracked.Packets, "max_entries", cfg.MaxEntries)
	}
	r := report.Report{
		Flows:     flow.Rank(snap.Flows, elapsed),
		Duration:  elapsed,
		Untracked: snap.Untracked,
	}
	if cfg.JSON {
		return report.WriteJSON(out, r)
	}
	return report.WritePlain(out, r)
}

// start loads and attaches the programs of the capture mode cfg asks for.
func start(cfg cli.Config, ifc netif.Interface, log *slog.Logger) (capture.Source, error) {
	return capture.StartTC(capture.TCOptions{
		Ifindex:    ifc.Index,
		MaxEntries: cfg.MaxEntries,
		Attach:     attach.TCMode(cfg.TCAttach),
		Log:        log,
	})
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
