package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/cilium/ebpf/rlimit"

	"github.com/pktstat-bpf/pktstat-bpf/internal/capture"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
	"github.com/pktstat-bpf/pktstat-bpf/internal/offline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/report"
)

// runRead replays the capture file of --read through the programs and
// reports on the capture's clock: a period ends when the file's
// timestamps cross its boundary, and rates are over capture time. The
// file is opened first, before any privilege is dropped; then the
// programs are loaded and every capability the test runs do not need is
// given up (afterAttach: none is attached).
func runRead(ctx context.Context, cfg cli.Config, in io.Reader, out io.Writer, log *slog.Logger) (err error) {
	rd, err := offline.Open(cfg.Read.File, in)
	if err != nil {
		return err
	}
	defer rd.Close()
	if err := rlimit.RemoveMemlock(); err != nil {
		log.Debug("could not raise RLIMIT_MEMLOCK", "error", err)
	}
	as, err := runAs(cfg, os.Geteuid(), log)
	if err != nil {
		return err
	}
	exp, err := newIPFIX(cfg, log)
	if err != nil {
		return err
	}
	src, err := capture.StartReplay(capture.ReplayOptions{XDP: cfg.Mode == cli.ModeXDP, MaxEntries: cfg.MaxEntries,
		NoARP: cfg.NoARP, Filter: cfg.Filter, Log: log})
	if err != nil {
		return fmt.Errorf("load programs to read %s: %w", cfg.Read.File, withCapsHint(err, cfg.Mode))
	}
	defer func() { err = errors.Join(err, src.Close()) }()
	dropPrivileges(src.Describe(), false, as, log)
	log.Info("reading", "file", cfg.Read.File, "format", rd.Format, "mode", src.Describe())

	began := time.Now()
	var clock time.Time // the capture's: the last packet's timestamp
	pipe := pipeline.New(src, func() time.Time { return clock })
	p := newPeriods(pipe, cfg.MaxEntries, netif.Interface{}, cfg.Top, time.Time{}, log)
	p.filter = cfg.Filter != nil
	p.group = cfg.GroupBy
	var xp *ipfixExport
	if exp != nil {
		// --ipfix-interval follows the file's clock too; the last export,
		// deferred after the detach so that it runs first, ends with the
		// last packet.
		xp = newIPFIXExport(exp, pipe, cfg.MaxEntries, cfg.IPFIX.Interval, time.Time{}, log)
		defer func() { xp.close(clock) }()
	}
	write := report.WritePlainInterval
	if cfg.JSON {
		write = report.WriteNDJSON
	}
	pl := offline.NewPlanner(offline.Options{ByMAC: cfg.Read.ByMAC, ByNet: cfg.Read.ByNet, MaxFlows: int(cfg.MaxEntries)})
	bar := newReadProgress(rd.Size)
	var boundary time.Time // the end of the current period, with --interval
	n := 0
	for ; ; n++ {
		if n%4096 == 0 {
			if ctx.Err() != nil {
				log.Warn("interrupted: the report holds the packets read so far", "packets", n)
				break
			}
			bar.update(rd.Offset(), n)
		}
		pkt, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: packet %d: %w", cfg.Read.File, n+1, err)
		}
		if n == 0 {
			// The first period starts with the capture, aligned to the
			// interval with --interval (10:00:00, 10:00:10, ...).
			p.start = pkt.Time
			if cfg.Interval > 0 {
				p.start = pkt.Time.Truncate(cfg.Interval)
				boundary = p.start.Add(cfg.Interval)
			}
		}
		for cfg.Interval > 0 && !pkt.Time.Before(boundary) {
			clock = boundary
			r, err := p.next(boundary)
			if err != nil {
				return err
			}
			if err := write(out, r); err != nil {
				return err
			}
			boundary = boundary.Add(cfg.Interval)
		}
		if xp != nil {
			xp.advance(pkt.Time)
		}
		if pkt.Time.After(clock) {
			clock = pkt.Time
		}
		src.Feed(pl.Plan(pkt))
	}
	bar.done()
	if rd.Cooked {
		log.Info("the file is a Linux cooked capture (SLL): its frames were given an Ethernet header, 14 bytes instead of the cooked one's 16 (SLL) or 20 (SLL2), and the packet type's direction")
	}
	if n == 0 {
		clock = time.Now()
		p.start = clock
	}
	r, err := p.next(clock)
	if err != nil {
		return err
	}
	noteMarks(src, log)
	took := time.Since(began)
	log.Info("read", "packets", n, "took", took.Round(time.Millisecond).String(), "packets_per_second", int(float64(n)/took.Seconds()))
	switch {
	case cfg.Interval > 0:
		return write(out, r)
	case cfg.JSON:
		return report.WriteJSON(out, r)
	}
	return report.WritePlain(out, r)
}

// noteMarks logs the frames whose counts are less certain than the rest,
// and what XDP did not see.
func noteMarks(src *capture.Replay, log *slog.Logger) {
	marked, skipped := src.Marked()
	if n := marked[offline.MarkTruncated]; n > 0 {
		log.Warn("packets cut by the capture's snap length inside the headers the parser reads: their rows are the parser's malformed ones, counted with their full length", "packets", n)
	}
	if n := marked[offline.MarkSegmentsGuessed]; n > 0 {
		log.Warn("GRO super-packets of TCP connections whose MSS the file does not show (no SYN, no ordinary segment): each counted as one packet, their rows marked estimated", "packets", n)
	}
	if skipped.Packets > 0 {
		log.Warn("XDP sees only ingress: egress packets of the file were not counted; run without -x to count both directions with TC",
			"packets", skipped.Packets, "bytes", skipped.Bytes)
	}
}
