// Package report renders a finished capture as plain text or JSON. The
// renderers write to an io.Writer and hold no state, so tests compare their
// output with golden files.
package report

import (
	"fmt"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Report is everything one report shows.
type Report struct {
	Flows    []flow.Flow   // ranked rows (see flow.Rank)
	Duration time.Duration // the measured capture time that rates are over
	// Untracked is traffic that was counted but has no row of its own,
	// because the flow table was full when its flow first appeared.
	Untracked flow.Counters
}

// FormatBitrate renders bits per second with two decimals in base-1000
// units, as pktstat-bpf does: bps, Kbps, Mbps, Gbps, Tbps.
func FormatBitrate(bps float64) string {
	units := [...]string{"bps", "Kbps", "Mbps", "Gbps", "Tbps"}
	i := 0
	for bps >= 1000 && i < len(units)-1 {
		bps /= 1000
		i++
	}
	return fmt.Sprintf("%.2f %s", bps, units[i])
}
