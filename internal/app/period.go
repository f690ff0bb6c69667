package app

import (
	"errors"
	"log/slog"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/report"
)

// periods cuts a capture into reports: each call to next drains the
// kernel's table and reports what was counted since the previous report,
// which the ledger adds up over every drain since then (a daemon's scrapes
// drain too).
type periods struct {
	pipe   *pipeline.Pipeline
	ledger *pipeline.Ledger
	ifc    netif.Interface
	top    int
	group  group.By // --group-by: rows are added up into groups before --top
	log    *slog.Logger
	start  time.Time
	stats  netif.Stats
	// statsOK is false when the interface's counters cannot be read.
	statsOK bool
	// filter is set when a filter expression is in use: reports then say
	// what it dropped.
	filter bool
}

// newPeriods starts the first period at begin, when the programs were
// attached and counting, and registers a ledger of at most maxRows rows on
// pipe.
func newPeriods(pipe *pipeline.Pipeline, maxRows uint32, ifc netif.Interface, top int, begin time.Time, log *slog.Logger) *periods {
	p := &periods{pipe: pipe, ledger: pipeline.NewLedger(maxRows), ifc: ifc, top: top, log: log, start: begin}
	pipe.Register(p.ledger)
	if ifc.Several != nil {
		return p // several interfaces: their counters are in ifc.Several (ifaces.go)
	}
	if ifc.Index == 0 {
		return p // cgroup mode watches no one interface
	}
	var err error
	p.stats, err = netif.ReadStats(ifc.Index)
	if p.statsOK = err == nil; !p.statsOK {
		log.Warn("the interface's own counters cannot be read; reports will not show them", "error", err)
	}
	return p
}

// next drains the table and returns the report of the period ending at end.
func (p *periods) next(end time.Time) (report.Report, error) {
	if _, _, err := p.pipe.Drain(); errors.Is(err, flow.ErrPartialDrain) {
		p.log.Warn("the report holds what was read of the flow table; the rest comes in the next one", "error", err)
	} else if err != nil {
		return report.Report{}, err
	}
	snap := p.ledger.Take()
	d := end.Sub(p.start)
	p.start = end
	// Grouping works on the drained rows, their owners named, before
	// --top picks among the groups. Both rewrite the rows, which are the
	// report's own once taken: every sink has folded the drain by then.
	top, hidden, hiddenRows := flow.Top(group.Rows(snap.Flows, p.group), p.top, d)
	r := report.Report{
		Flows:          top,
		Duration:       d,
		Untracked:      snap.UntrackedTotal(),
		UntrackedFlows: snap.UntrackedFlows,
		Hidden:         hidden,
		HiddenFlows:    uint64(hiddenRows),
		End:            end,
		GroupBy:        p.group,
	}
	if p.filter {
		r.Filtered = &snap.Filtered
	}
	if r.Untracked.Packets > 0 {
		p.log.Warn("the flow table was full: some traffic is counted only in the overflow row; raise --max-entries",
			"packets", r.Untracked.Packets, "flows_about", r.UntrackedFlows)
	}
	if p.ifc.Several != nil {
		r.Ifaces = p.severalCounters()
	}
	if p.statsOK {
		now, err := netif.ReadStats(p.ifc.Index)
		if err != nil {
			p.log.Warn("the interface's own counters cannot be read", "error", err)
		} else {
			delta := now.Sub(p.stats)
			p.stats = now
			r.Iface = &report.Iface{Name: p.ifc.Name, RxPackets: delta.RxPackets, TxPackets: delta.TxPackets,
				RxDropped: delta.RxDropped, TxDropped: delta.TxDropped}
			if delta.RxDropped+delta.TxDropped > 0 {
				p.log.Warn("the interface dropped packets the hook may not have seen",
					"iface", p.ifc.Name, "rx_dropped", delta.RxDropped, "tx_dropped", delta.TxDropped)
			}
		}
	}
	return r, nil
}
