package flow

import "testing"

func TestFormatBitrate(t *testing.T) {
	tests := []struct {
		bps  float64
		want string
	}{
		{0, "0.00 bps"},
		{0.004, "0.00 bps"},
		{0.5, "0.50 bps"},
		{8, "8.00 bps"},
		{999.99, "999.99 bps"},
		{999.994, "999.99 bps"},
		// Two decimals would round these to "1000.00 bps": they are 1.00 Kbps.
		{999.995, "1.00 Kbps"},
		{999.999, "1.00 Kbps"},
		{1000, "1.00 Kbps"},
		{1500, "1.50 Kbps"},
		{999_990, "999.99 Kbps"},
		{999_999, "1.00 Mbps"},
		{1_000_000, "1.00 Mbps"},
		{5_000_000, "5.00 Mbps"},
		{999_990_000, "999.99 Mbps"},
		{999_999_000, "1.00 Gbps"},
		{1e9, "1.00 Gbps"},
		{6_801_379_648, "6.80 Gbps"},
		{999_990_000_000, "999.99 Gbps"},
		{1e12, "1.00 Tbps"},
		{999_990_000_000_000, "999.99 Tbps"},
		// There is no unit above Tbps.
		{999_999_000_000_000, "1000.00 Tbps"},
		{1e15, "1000.00 Tbps"},
		{1.5e18, "1500000.00 Tbps"},
	}
	for _, tt := range tests {
		if got := FormatBitrate(tt.bps); got != tt.want {
			t.Errorf("FormatBitrate(%v) = %q, want %q", tt.bps, got, tt.want)
		}
	}
}

func TestFormatPPSAndBytes(t *testing.T) {
	for _, tt := range []struct {
		pps  float64
		want string
	}{{0, "0.0"}, {12.25, "12.2"}, {999.9, "999.9"}, {1000, "1.00k"}, {45_678, "45.68k"}, {2_500_000, "2.50M"}} {
		if got := FormatPPS(tt.pps); got != tt.want {
			t.Errorf("FormatPPS(%v) = %q, want %q", tt.pps, got, tt.want)
		}
	}
	for _, tt := range []struct {
		n    uint64
		want string
	}{{0, "0 B"}, {999, "999 B"}, {1500, "1.50 kB"}, {4_255_963_315, "4.26 GB"}} {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
