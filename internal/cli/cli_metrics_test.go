package cli

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseListen(t *testing.T) {
	daemon := func(listen string, f func(*Config)) Config {
		c := Config{MaxEntries: DefaultMaxEntries, TCAttach: TCAttachAuto, Listen: listen, MetricsTop: DefaultMetricsTop, NoReport: true}
		if f != nil {
			f(&c)
		}
		return c
	}
	tests := []parseCase{
		// A daemon runs until a signal: the timeout is 0 unless given.
		{"host and port", []string{"--listen", "127.0.0.1:9864"}, daemon("127.0.0.1:9864", nil)},
		{"bare port binds to loopback", []string{"--listen", ":9864"}, daemon("127.0.0.1:9864", nil)},
		{"all addresses only when named", []string{"--listen=0.0.0.0:9864"}, daemon("0.0.0.0:9864", nil)},
		{"IPv6", []string{"--listen", "[::1]:9864"}, daemon("[::1]:9864", nil)},
		{"port 0 picks a free one", []string{"--listen", "127.0.0.1:0"}, daemon("127.0.0.1:0", nil)},
		{"explicit timeout", []string{"--listen", ":9864", "-t", "1h"}, daemon("127.0.0.1:9864", func(c *Config) { c.Timeout = time.Hour })},
		{"metrics-top", []string{"--listen", ":9864", "--metrics-top", "50"}, daemon("127.0.0.1:9864", func(c *Config) { c.MetricsTop = 50 })},
		{"metrics-top 0", []string{"--listen", ":9864", "--metrics-top=0"}, daemon("127.0.0.1:9864", func(c *Config) { c.MetricsTop = 0 })},
		{"metrics-top at the bound", []string{"--listen", ":9864", "--metrics-top", "1000"}, daemon("127.0.0.1:9864", func(c *Config) { c.MetricsTop = MaxMetricsTop })},
		{"web config", []string{"--listen", ":9864", "--web.config.file", "/etc/pktstat-bpf/web.yml"}, daemon("127.0.0.1:9864", func(c *Config) { c.WebConfigFile = "/etc/pktstat-bpf/web.yml" })},
		{"-j asks for a report", []string{"--listen", ":9864", "-j"}, daemon("127.0.0.1:9864", func(c *Config) { c.JSON, c.NoReport = true, false })},
		{"--output plain asks for a plain report", []string{"--listen", ":9864", "--output", "plain"}, daemon("127.0.0.1:9864", func(c *Config) { c.NoReport = false })},
		{"--output json asks for a JSON report", []string{"--listen", ":9864", "--output=json"}, daemon("127.0.0.1:9864", func(c *Config) { c.JSON, c.NoReport = true, false })},
		{"--top with a plain report", []string{"--listen", ":9864", "--output", "plain", "--top", "3"}, daemon("127.0.0.1:9864", func(c *Config) { c.NoReport, c.Top = false, 3 })},
		{"--interval reports too", []string{"--listen", ":9864", "--interval", "1m"}, daemon("127.0.0.1:9864", func(c *Config) { c.Interval, c.NoReport = time.Minute, false })},
		{"--top with a report", []string{"--listen", ":9864", "-j", "--top", "3"}, daemon("127.0.0.1:9864", func(c *Config) { c.JSON, c.Top, c.NoReport = true, 3, false })},
		{"cgroup mode", []string{"--listen", ":9864", "-c", "/sys/fs/cgroup"}, daemon("127.0.0.1:9864", func(c *Config) { c.Mode, c.Cgroup = ModeCgroup, "/sys/fs/cgroup" })},
		{"xdp mode", []string{"--listen", ":9864", "-x"}, daemon("127.0.0.1:9864", func(c *Config) { c.Mode, c.XDPMode = ModeXDP, XDPModeAuto })},
	}
	checkParse(t, tests)
}

// TestParseNoListen checks that without --listen nothing changes: the
// timeout keeps its default and no metrics setting is set.
func TestParseNoListen(t *testing.T) {
	got, err := Parse(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got.Listen != "" || got.MetricsTop != 0 || got.WebConfigFile != "" || got.Timeout != 10*time.Minute {
		t.Errorf("Parse() = %+v", got)
	}
}

func TestParseListenUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-top", "5"}, "--metrics-top applies only to the metrics endpoint: add --listen ADDR"},
		{[]string{"--web.config.file", "w.yml"}, "--web.config.file applies only to the metrics endpoint"},
		{[]string{"--listen", ":9864", "-g"}, "--listen and -g (--tui) cannot be combined"},
		{[]string{"--listen", ":9864", "--top", "5"}, "--top limits reports, and with --listen there is none"},
		{[]string{"--listen", "9864"}, `invalid --listen "9864": want HOST:PORT or :PORT`},
		{[]string{"--listen", "localhost"}, `invalid --listen "localhost"`},
		{[]string{"--listen", ":http"}, "the port must be a number from 0 to 65535"},
		{[]string{"--listen", ":65536"}, "the port must be a number from 0 to 65535"},
		{[]string{"--listen", ":9864", "--metrics-top", "-1"}, "invalid --metrics-top -1: must be between 0 (no flow series) and 1000"},
		{[]string{"--listen", ":9864", "--metrics-top", "1001"}, "invalid --metrics-top 1001"},
		{[]string{"--listen", ":9864", "--web.config.file", ""}, "--web.config.file needs the path"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) { wantUsageError(t, tt.args, tt.want) })
	}
}

func TestParseBPFStats(t *testing.T) {
	cfg, err := Parse([]string{"--listen", ":9864", "--bpf-stats"}, io.Discard)
	if err != nil || !cfg.BPFStats {
		t.Errorf("--listen --bpf-stats: BPFStats %v, %v; want true", cfg.BPFStats, err)
	}
	cfg, err = Parse([]string{"--listen", ":9864"}, io.Discard)
	if err != nil || cfg.BPFStats {
		t.Errorf("--listen alone: BPFStats %v, %v; want false (statistics cost every eBPF program on the host)", cfg.BPFStats, err)
	}
	_, err = Parse([]string{"--bpf-stats"}, io.Discard)
	if !IsUsage(err) || !strings.Contains(err.Error(), "--bpf-stats applies only to the metrics endpoint") {
		t.Errorf("--bpf-stats without --listen: %v, want a usage error", err)
	}
}
