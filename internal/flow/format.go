package flow

import (
	"fmt"
	"strconv"
)

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

// FormatPPS renders packets per second compactly: one decimal below 1000,
// then k and M with two decimals.
func FormatPPS(pps float64) string {
	switch {
	case pps < 1000:
		return strconv.FormatFloat(pps, 'f', 1, 64)
	case pps < 1e6:
		return strconv.FormatFloat(pps/1e3, 'f', 2, 64) + "k"
	default:
		return strconv.FormatFloat(pps/1e6, 'f', 2, 64) + "M"
	}
}

// FormatBytes renders a byte count with base-1000 units (B, kB, MB, ...)
// for the header, where exact numbers would not fit.
func FormatBytes(n uint64) string {
	units := [...]string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	v, i := float64(n), 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.2f %s", v, units[i])
}
