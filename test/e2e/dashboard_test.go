package e2e

// The Grafana dashboard (deploy/grafana) and the Prometheus rules
// (deploy/prometheus) against promtool and a real Prometheus that scrapes
// the tool: every PromQL expression parses and returns data, and each
// alert fires when the tool is made to meet its condition.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

const (
	rulesFile     = "../../deploy/prometheus/pktstat-bpf.rules.yml"
	rulesTestFile = "../../deploy/prometheus/pktstat-bpf.rules.test.yml"
	dashboardFile = "../../deploy/grafana/pktstat-bpf.json"
)

// TestPrometheusRulesPromtool: promtool check rules, and promtool test
// rules, whose unit tests hold each alert's for: and ranges to synthetic
// series.
func TestPrometheusRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian package prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// rule is one rule of the rules file.
type rule struct {
	Record string            `yaml:"record"`
	Alert  string            `yaml:"alert"`
	Expr   string            `yaml:"expr"`
	For    string            `yaml:"for"`
	Labels map[string]string `yaml:"labels"`
	Annot  map[string]string `yaml:"annotations"`
}

func readRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var rs []rule
	for _, g := range f.Groups {
		rs = append(rs, g.Rules...)
	}
	return rs
}

// dashboardExprs returns every target expression of the dashboard, with
// Grafana's variables replaced as Grafana would: every instance, and a
// rate interval of a minute.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	r := strings.NewReplacer("$instance", ".*", "$__rate_interval", "1m")
	var out []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, r.Replace(tg.Expr))
		}
	}
	if len(out) < 8 {
		t.Fatalf("only %d expressions in the dashboard", len(out))
	}
	return out
}

// rulesConfig is the prometheus.yml lines that load the rules file, with
// every for: set to forZero's value when it is not empty (the alert tests
// cannot wait minutes; promtool test rules holds the real for:).
func rulesConfig(t *testing.T, forZero bool) string {
	t.Helper()
	path, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if forZero {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(t.TempDir(), "rules.yml")
		b = regexp.MustCompile(`(?m)^(\s+)for: \S+$`).ReplaceAll(b, []byte("${1}for: 0s"))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf("rule_files: [%q]\n", path)
}

// waitData polls q until it answers with at least one sample.
func (ps *promServer) waitData(t *testing.T, what, q string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ss, err := ps.query(q)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if len(ss) > 0 {
			t.Logf("%s: %s -> %d series", what, q, len(ss))
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %s returned no data within %s", what, q, timeout)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkDashboardAndRules checks, against a Prometheus that has scraped
// the tool (with --bpf-stats and traffic) and loaded the rules, that
// every dashboard expression, every rule's expression and every recorded
// series parses and returns data.
func checkDashboardAndRules(t *testing.T, ps *promServer) {
	t.Helper()
	for _, q := range dashboardExprs(t) {
		ps.waitData(t, "dashboard", q, 15*time.Second)
	}
	for _, r := range readRules(t) {
		if r.Record == "" {
			// Alert expressions must parse; they return data only when
			// they fire (the alert tests).
			if _, err := ps.query(r.Expr); err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			continue
		}
		ps.waitData(t, "rule expression", r.Expr, 15*time.Second)
		ps.waitData(t, "recorded", r.Record, 15*time.Second)
	}
}

// alertRig is the tool as a daemon with a small flow table, scraped every
// second by a Prometheus that evaluates the rules (for: 0s) every second.
type alertRig struct {
	p    *testnet.Pair
	prom *promServer
}

func startAlertRig(t *testing.T, maxEntries int) alertRig {
	t.Helper()
	bin := harness.Binary(t)
	promBin := prometheusBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	const listen = "127.0.0.1:9864"
	harness.StartTool(t, p.A, bin, "-i", p.A.Link, "--listen", listen, "--max-entries", fmt.Sprint(maxEntries))
	prom := startPrometheus(t, p.A, promBin, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
%sscrape_configs:
  - job_name: pktstat
    static_configs:
      - targets: [%q]
`, rulesConfig(t, true), listen))
	prom.waitQuery(t, `up{job="pktstat"}`, "job", map[string]float64{"pktstat": 1}, 20*time.Second)
	return alertRig{p: p, prom: prom}
}

// firing is how many series of alert are firing now.
func (r alertRig) firing(t *testing.T, alert string) int {
	t.Helper()
	ss, err := r.prom.query(fmt.Sprintf(`ALERTS{alertname=%q,alertstate="firing"}`, alert))
	if err != nil {
		t.Fatal(err)
	}
	return len(ss)
}

// quiet checks that alert does not fire over a few evaluations without
// traffic, so that its firing later is the traffic's doing.
func (r alertRig) quiet(t *testing.T, alert string) {
	t.Helper()
	for range 4 {
		if n := r.firing(t, alert); n != 0 {
			t.Fatalf("%s fires before any traffic", alert)
		}
		time.Sleep(time.Second)
	}
}

// sendFlows sends one datagram on each of n new flows from B to A: source
// ports from first on, to one port that A listens on.
func (r alertRig) sendFlows(t *testing.T, first, n int) {
	t.Helper()
	dst := netip.AddrPortFrom(r.p.A.IPv4, 5999)
	for i := range n {
		c, err := r.p.B.DialUDP(netip.AddrPortFrom(r.p.B.IPv4, uint16(first+i)), dst)
		if err != nil {
			t.Fatal(err)
		}
		err = testnet.SendUDP(c, []byte("flow"), 1)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestE2EAlertFlowTableFull: 300 flows at once into a table of 16 make
// packets untracked, and PktstatFlowTableFull fires.
func TestE2EAlertFlowTableFull(t *testing.T) {
	r := startAlertRig(t, 16)
	rx, err := r.p.A.ListenUDP(netip.AddrPortFrom(r.p.A.IPv4, 5999))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	r.quiet(t, "PktstatFlowTableFull")
	r.sendFlows(t, 20000, 300)
	r.prom.waitQuery(t, `count(ALERTS{alertname="PktstatFlowTableFull",alertstate="firing"})`, "", map[string]float64{"": 1}, 20*time.Second)
	ss, err := r.prom.query(`sum(pktstat_untracked_packets_total)`)
	if err != nil || len(ss) != 1 || ss[0].Value <= 0 || ss[0].Value > 300 {
		t.Errorf("untracked packets %v (%v): want between 1 and the 300 sent", ss, err)
	}
}

// TestE2EAlertUntrackedFlowsRising: rounds of 40, 80, 120, ... new flows a
// second into a table of 8: the untracked flows per scrape rise, and
// PktstatUntrackedFlowsRising fires while they do.
func TestE2EAlertUntrackedFlowsRising(t *testing.T) {
	r := startAlertRig(t, 8)
	rx, err := r.p.A.ListenUDP(netip.AddrPortFrom(r.p.A.IPv4, 5999))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	const alert = "PktstatUntrackedFlowsRising"
	r.quiet(t, alert)
	port := 20000
	for round := 1; round <= 8; round++ {
		r.sendFlows(t, port, 40*round)
		port += 40 * round
		time.Sleep(1200 * time.Millisecond)
		if r.firing(t, alert) > 0 {
			t.Logf("%s fires after round %d (%d flows so far)", alert, round, port-20000)
			return
		}
	}
	t.Fatalf("%s did not fire over 8 rounds of rising flows", alert)
}
