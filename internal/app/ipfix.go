package app

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/ipfix"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
)

// ipfixFlushWait bounds how long the exit waits for queued IPFIX messages.
const ipfixFlushWait = 5 * time.Second

// newIPFIX opens the exporter that --ipfix asks for, or returns nil. It
// runs before anything is attached: a bad address fails at once, and the
// collector's name is resolved while the run may still read every file.
func newIPFIX(cfg cli.Config, log *slog.Logger) (*ipfix.Exporter, error) {
	if cfg.IPFIX.Target == "" {
		return nil, nil
	}
	x, err := ipfix.New(ipfix.Options{
		Target:          cfg.IPFIX.Target,
		PEN:             cfg.IPFIX.PEN,
		Domain:          1,
		TemplateRefresh: cfg.IPFIX.TemplateRefresh,
		// One export holds at most a table's worth of records (the
		// ledger's bound): room for a whole export of records of 128
		// bytes, so that a healthy collector loses none to the queue,
		// however much faster encoding is than sending.
		QueueBytes: max(ipfix.DefaultQueueBytes, 128*int(cfg.MaxEntries)),
		Layout: ipfix.Layout{
			Ifaces: cfg.Mode == cli.ModeTC || cfg.Mode == cli.ModeXDP,
			Owners: cfg.Mode == cli.ModeCgroup || cfg.Mode == cli.ModeProcess,
		},
		Log: log,
	})
	if err != nil {
		return nil, err // the syntax was checked in cli: resolving or opening failed
	}
	return x, nil
}

// ipfixExport drives an exporter from the pipeline: a ledger of its own
// adds up every drain (a report's, a scrape's, its own), and every
// --ipfix-interval it drains and exports what the ledger holds, one
// record per flow. So each count lands in exactly one record, whoever
// drained it, and records stay per flow whatever --group-by does to the
// reports.
type ipfixExport struct {
	pipe   *pipeline.Pipeline
	ledger *pipeline.Ledger
	exp    *ipfix.Exporter
	log    *slog.Logger
	last   time.Time // the end of the previous export
	// interval and boundary: with --read, the end of the current
	// interval on the file's clock (advance).
	interval time.Duration
	boundary time.Time

	stop chan struct{}
	done sync.WaitGroup
}

// newIPFIXExport registers a ledger for exp on pipe and starts its
// sender; the first record starts at begin.
func newIPFIXExport(exp *ipfix.Exporter, pipe *pipeline.Pipeline, maxRows uint32, interval time.Duration, begin time.Time, log *slog.Logger) *ipfixExport {
	x := &ipfixExport{pipe: pipe, ledger: pipeline.NewLedger(maxRows), exp: exp, log: log, last: begin, interval: interval, stop: make(chan struct{})}
	pipe.Register(x.ledger)
	exp.Start()
	log.Info("exporting IPFIX", "collector", exp.Addr(), "interval", interval.String())
	return x
}

// startIPFIX exports every interval of the wall clock from begin on, until
// close.
func startIPFIX(exp *ipfix.Exporter, pipe *pipeline.Pipeline, maxRows uint32, interval time.Duration, begin time.Time, log *slog.Logger) *ipfixExport {
	x := newIPFIXExport(exp, pipe, maxRows, interval, begin, log)
	x.done.Add(1)
	go func() {
		defer x.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				x.export(time.Time{})
			case <-x.stop:
				return
			}
		}
	}()
	return x
}

// advance is the clock of a file (--read): once a packet's time t reaches
// the end of the current interval, it exports what came before. The
// intervals are aligned to the interval (10:00:00, 10:01:00, ...); empty
// ones export nothing.
func (x *ipfixExport) advance(t time.Time) {
	if x.boundary.IsZero() {
		x.last = t
		x.boundary = t.Truncate(x.interval).Add(x.interval)
		return
	}
	if t.Before(x.boundary) {
		return
	}
	x.export(x.boundary)
	x.boundary = t.Truncate(x.interval).Add(x.interval)
}

// export drains, and exports what the ledger added up since the previous
// export, up to end (zero: the time of the drain).
func (x *ipfixExport) export(end time.Time) {
	_, at, err := x.pipe.Drain()
	if err != nil && !errors.Is(err, flow.ErrPartialDrain) {
		// Nothing was read: the counts wait in the kernel for the next one.
		x.log.Warn("IPFIX export: the flow table could not be read", "error", err)
		return
	}
	if end.IsZero() {
		end = at
	}
	snap := x.ledger.Take()
	x.exp.Export(&snap, x.last, end)
	x.last = end
}

// close exports what is left, once counting has stopped, up to end (zero:
// now), and lets the sender finish.
func (x *ipfixExport) close(end time.Time) {
	close(x.stop)
	x.done.Wait()
	x.export(end)
	t := x.exp.Close(ipfixFlushWait)
	attrs := []any{"collector", x.exp.Addr(), "messages", t.Messages, "records", t.Records, "not_sent", t.NotSent}
	if t.NotSent > 0 {
		x.log.Warn("IPFIX export ended; some records could not be sent", attrs...)
		return
	}
	x.log.Info("IPFIX export ended", attrs...)
}
