// Package report renders a finished capture as plain text or JSON. The
// renderers write to an io.Writer and hold no state, so tests compare their
// output with golden files.
package report

import (
	"strconv"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
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
	// End is when the period ended; interval reports show it.
	End time.Time
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

// FormatBitrate renders bits per second with two decimals in base-1000
// units, as pktstat-bpf does: bps, Kbps, Mbps, Gbps, Tbps.
func FormatBitrate(bps float64) string {
	units := [...]string{"bps", "Kbps", "Mbps", "Gbps", "Tbps"}
	i := 0
	// Rounding to two decimals turns 999.995 and up into "1000.00", which
	// is 1.00 of the next unit: decide on the digits that will be printed.
	for i < len(units)-1 && (bps >= 1000 || strconv.FormatFloat(bps, 'f', 2, 64) == "1000.00") {
		bps /= 1000
		i++
	}
	return strconv.FormatFloat(bps, 'f', 2, 64) + " " + units[i]
}
