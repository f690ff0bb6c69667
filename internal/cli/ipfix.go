package cli

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/pktstat-bpf/pktstat-bpf/internal/ipfix"
)

// IPFIX defaults and bounds (docs/flow-export.md).
const (
	DefaultIPFIXInterval        = time.Minute
	MinIPFIXInterval            = time.Second
	DefaultIPFIXTemplateRefresh = 10 * time.Minute
	// DefaultIPFIXPEN is the private enterprise number of the
	// enterprise-specific elements (see ipfix.DefaultPEN).
	DefaultIPFIXPEN = ipfix.DefaultPEN
)

// IPFIX is flow export to a collector (--ipfix); the zero value exports
// nothing.
type IPFIX struct {
	Target          string        // HOST:PORT (UDP) or tcp://HOST:PORT
	Interval        time.Duration // active timeout: one record per flow and interval
	TemplateRefresh time.Duration // UDP: templates go out again this often
	PEN             uint32        // enterprise number of the enterprise-specific elements
}

// addIPFIXFlags defines the --ipfix flags on fs, into x.
func addIPFIXFlags(fs *pflag.FlagSet, x *IPFIX) {
	fs.StringVar(&x.Target, "ipfix", "", "export one IPFIX record per flow and --ipfix-interval to a collector (nfcapd, goflow2, pmacct): HOST:PORT over UDP (IPFIX's port is 4739), or tcp://HOST:PORT over TCP with reconnects; records stay per flow whatever --group-by says")
	fs.DurationVar(&x.Interval, "ipfix-interval", DefaultIPFIXInterval, "with --ipfix, the active timeout: every interval each flow seen in it gets one record with its delta counts (at least 1s)")
	fs.DurationVar(&x.TemplateRefresh, "ipfix-template-refresh", DefaultIPFIXTemplateRefresh, "with --ipfix over UDP, send the templates again this often (over TCP they go at every connection)")
	fs.Uint32Var(&x.PEN, "ipfix-pen", DefaultIPFIXPEN, "with --ipfix, the private enterprise number of the elements without an IANA number (PID, process name, cgroup, application, flags, overflow); the default 32473 is IANA's documentation number, registered to no one")
}

// checkIPFIX validates --ipfix and the flags that go with it.
func checkIPFIX(fs *pflag.FlagSet, cfg *Config) error {
	x := &cfg.IPFIX
	if x.Target == "" {
		for _, f := range []string{"ipfix-interval", "ipfix-template-refresh", "ipfix-pen"} {
			if fs.Changed(f) {
				return usageErrorf("--%s applies only to flow export: add --ipfix HOST:PORT", f)
			}
		}
		*x = IPFIX{} // no export: the zero value, defaults left out
		return nil
	}
	if _, _, err := ipfix.ParseTarget(x.Target); err != nil {
		return usageErrorf("invalid --ipfix: %w", err)
	}
	switch {
	case cfg.TUI:
		return usageErrorf("--ipfix and -g (--tui) cannot be combined: the live table drains at every refresh; run the export without -g")
	case x.Interval < MinIPFIXInterval:
		return usageErrorf("invalid --ipfix-interval %s: must be at least %s", x.Interval, MinIPFIXInterval)
	case x.TemplateRefresh < MinIPFIXInterval:
		return usageErrorf("invalid --ipfix-template-refresh %s: must be at least %s", x.TemplateRefresh, MinIPFIXInterval)
	}
	return nil
}
