// Package report renders a finished capture as plain text or JSON. The
// renderers write to an io.Writer and hold no state, so tests compare their
// output with golden files.
package report

import (
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
)

// Report is everything one report shows.
type Report struct {
	Flows    []flow.Flow   // ranked rows (see flow.Rank)
	Duration time.Duration // the measured time that rates are over
	// Untracked is traffic that was counted but has no row of its own,
	// because the flow table was full when its flow first appeared.
	Untracked flow.Counters
	// UntrackedFlows estimates how many distinct flows Untracked holds.
	UntrackedFlows uint64
	// Hidden is the traffic of the rows left out by --top, and HiddenFlows
	// their number.
	Hidden      flow.Counters
	HiddenFlows uint64
	// Iface holds the watched interface's own counters over the same
	// period, nil where there is no interface (cgroup mode).
	Iface *Iface
	// Ifaces holds each watched interface's own counters, by name, when
	// the run watches several (-i any, or more than one -i); nil then
	// Iface is used, and non-nil (maybe empty) otherwise.
	Ifaces []Iface
	// Filtered is the traffic the filter expression dropped; nil when no
	// filter is in use, and then reports do not mention it.
	Filtered *flow.Counters
	// End is when the period ended; interval reports show it.
	End time.Time
	// GroupBy is the grouping of Flows (--group-by): each row is a group,
	// showing only these fields. The zero value: rows are flows.
	GroupBy group.By
}

// Iface is what an interface's own counters said over a report's period.
// They count skbs, so a GSO/GRO skb is one packet there; drops are frames
// the kernel discarded at the interface, before or instead of the hook.
type Iface struct {
	Name                 string
	RxPackets, TxPackets uint64
	RxDropped, TxDropped uint64
}

// Overflow is the traffic without a row of its own in the report: what
// found the flow table full, and what --top left out.
func (r *Report) Overflow() flow.Counters {
	c := r.Untracked
	c.Add(r.Hidden)
	return c
}

// Totals is everything the report counts: every row plus the overflow.
func (r *Report) Totals() flow.Counters {
	c := r.Overflow()
	for i := range r.Flows {
		c.Add(r.Flows[i].Counters)
	}
	return c
}
