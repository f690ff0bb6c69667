package cli

import (
	"net"
	"strconv"

	"github.com/spf13/pflag"
)

// DefaultMetricsTop is how many flows --listen exports as series of their
// own unless --metrics-top says otherwise: enough to see who is busy, few
// enough that the series stay cheap.
const DefaultMetricsTop = 10

// MaxMetricsTop bounds --metrics-top: each top flow is two labelled series
// whose labels change as flows come and go, and Prometheus pays for each.
const MaxMetricsTop = 1000

// DefaultListenHost is where --listen binds when the address names no
// host: loopback, so that nothing is exposed unless asked for by name.
const DefaultListenHost = "127.0.0.1"

// checkListen validates --listen and the flags that go with it. With
// --listen the tool is a daemon: it runs until SIGINT or SIGTERM unless
// --timeout is given, and the scrapes drain the table. --interval still
// works then, with reports built from the same drains.
func checkListen(fs *pflag.FlagSet, cfg *Config) error {
	if !fs.Changed("listen") {
		for _, f := range []string{"metrics-top", "web.config.file", "bpf-stats", "insecure-listen"} {
			if fs.Changed(f) {
				return usageErrorf("--%s applies only to the metrics endpoint: add --listen ADDR", f)
			}
		}
		cfg.MetricsTop = 0
		return nil
	}
	if cfg.TUI {
		return usageErrorf("--listen and -g (--tui) cannot be combined: both read the flow table, and the live table needs a terminal while a daemon has none")
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return usageErrorf("invalid --listen %q: want HOST:PORT or :PORT, such as 127.0.0.1:9864", cfg.Listen)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
		return usageErrorf("invalid --listen %q: the port must be a number from 0 to 65535", cfg.Listen)
	}
	if host == "" {
		cfg.Listen = net.JoinHostPort(DefaultListenHost, port)
	}
	if cfg.MetricsTop < 0 || cfg.MetricsTop > MaxMetricsTop {
		return usageErrorf("invalid --metrics-top %d: must be between 0 (no flow series) and %d", cfg.MetricsTop, MaxMetricsTop)
	}
	if fs.Changed("web.config.file") && cfg.WebConfigFile == "" {
		return usageErrorf("--web.config.file needs the path of a web config file")
	}
	cfg.NoReport = !cfg.JSON && !fs.Changed("output") && cfg.Interval == 0
	if fs.Changed("top") && cfg.NoReport {
		return usageErrorf("--top limits reports, and with --listen there is none unless -j (--json), --output or --interval asks for it; the metrics take --metrics-top")
	}
	if !fs.Changed("timeout") {
		cfg.Timeout = 0
	}
	return nil
}
