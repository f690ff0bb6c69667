package e2e

// The metrics endpoint against a real Prometheus server (Debian's
// prometheus package, which .ci/run installs): the tool and Prometheus run
// in the same test namespace, Prometheus scrapes the tool every second over
// TLS with basic auth, the test sends known traffic, and Prometheus's query
// API must answer with exactly that traffic.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pktstat-bpf/pktstat-bpf/internal/metrics"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// prometheusBinary finds Debian's prometheus.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("the Prometheus end-to-end tests need a real Prometheus server: apt-get install prometheus (.ci/run does): %v", err)
	}
	return bin
}

// promServer is a Prometheus server running in a test namespace.
type promServer struct {
	url    string
	client *http.Client
	log    *testnet.LockedBuffer
}

// startPrometheus runs bin in e's namespace with config, its data in a
// fresh directory, its API on loopback of that namespace, and waits until
// it is ready. It is stopped in t.Cleanup.
func startPrometheus(t *testing.T, e testnet.End, bin, config string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	const addr = "127.0.0.1:9090"
	ps := &promServer{url: "http://" + addr, client: harness.NSClient(e, nil), log: &testnet.LockedBuffer{}}
	cmd := e.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = ps.log, ps.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := ps.client.Get(ps.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return ps
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited before it was ready:\n%s", ps.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30s (last: %v):\n%s", err, ps.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string
	Value  float64
}

// query asks Prometheus's HTTP API for the instant vector of q now.
func (ps *promServer) query(q string) ([]sample, error) {
	resp, err := ps.client.Get(ps.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("query %s: decode the answer: %w", q, err)
	}
	if r.Status != "success" || r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: status %q, result type %q: %s", q, r.Status, r.Data.ResultType, r.Error)
	}
	var out []sample
	for _, s := range r.Data.Result {
		str, ok := s.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("query %s: value %v is not a string", q, s.Value)
		}
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q, err)
		}
		out = append(out, sample{Metric: s.Metric, Value: v})
	}
	return out, nil
}

// byLabel maps the value of label to each sample's value.
func byLabel(ss []sample, label string) map[string]float64 {
	m := map[string]float64{}
	for _, s := range ss {
		m[s.Metric[label]] = s.Value
	}
	return m
}

// waitQuery polls q until its answer, keyed by label, equals want, and
// fails with the last answer if it does not within timeout.
func (ps *promServer) waitQuery(t *testing.T, q, label string, want map[string]float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]float64
	for {
		ss, err := ps.query(q)
		if err != nil {
			t.Fatal(err)
		}
		last = byLabel(ss, label)
		if equalMaps(last, want) {
			t.Logf("PromQL %s -> %s", q, formatByLabel(label, last))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PromQL %s answered %s, want %s (after %s)\nprometheus log:\n%s", q, formatByLabel(label, last), formatByLabel(label, want), timeout, ps.log)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func equalMaps(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func formatByLabel(label string, m map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("{%s=%q} %v", label, k, m[k]))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// selfSigned writes a certificate and key for 127.0.0.1 into dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pktstat-bpf test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// scrapeStatus fetches u with the client (and credentials, if user is
// not empty) and returns the status code, or the error of the request.
func scrapeStatus(c *http.Client, u, user, password string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestE2EPrometheus runs the tool as a daemon behind TLS and basic auth,
// checks that a scrape without (or with wrong) credentials is refused, and
// has a real Prometheus scrape it every second while the test sends known
// UDP traffic both ways. Prometheus's answer to the PromQL queries must be
// exactly the traffic sent: packets and wire bytes by direction. The top
// flows must have appeared as labelled series, and the tool must exit 0
// on SIGTERM without printing a report.
func TestE2EPrometheus(t *testing.T) {
	bin := harness.Binary(t)
	promBin := prometheusBinary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	dir := t.TempDir()

	// TLS and basic auth through the exporter-toolkit web config.
	certPath, keyPath, pool := selfSigned(t, dir)
	const user, password = "prometheus", "s3cret-for-this-test"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %s\n",
		certPath, keyPath, user, hash), 0o600); err != nil {
		t.Fatal(err)
	}
	const listen = "127.0.0.1:9864"
	tl := harness.StartTool(t, p.A, bin, "-i", p.A.Link, "--listen", listen, "--metrics-top", "3", "--web.config.file", webConfig, "--bpf-stats")

	client := harness.NSClient(p.A, &tls.Config{RootCAs: pool})
	metricsURL := "https://" + listen + "/metrics"
	t.Run("scrape without credentials is refused", func(t *testing.T) {
		for _, c := range []struct {
			name, user, password string
		}{{"no credentials", "", ""}, {"wrong password", user, "wrong"}, {"unknown user", "admin", password}} {
			code, _, err := scrapeStatus(client, metricsURL, c.user, c.password)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if code != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want %d", c.name, code, http.StatusUnauthorized)
			}
		}
		// Plain HTTP to the TLS port gets no metrics either.
		code, body, err := scrapeStatus(harness.NSClient(p.A, nil), "http://"+listen+"/metrics", user, password)
		if err == nil && (code == http.StatusOK || strings.Contains(body, "pktstat_")) {
			t.Errorf("plain HTTP scrape: status %d, body %.200q", code, body)
		}
		code, body, err = scrapeStatus(client, metricsURL, user, password)
		if err != nil || code != http.StatusOK || !strings.Contains(body, "pktstat_info{") {
			t.Fatalf("scrape with credentials: status %d, %v, body %.300q", code, err, body)
		}
		// Nothing but /metrics is served.
		for _, path := range []string{"/", "/debug/pprof/", "/metrics/extra"} {
			if code, _, err := scrapeStatus(client, "https://"+listen+path, user, password); err != nil || code != http.StatusNotFound {
				t.Errorf("GET %s: status %d, %v; want 404", path, code, err)
			}
		}
	})

	prom := startPrometheus(t, p.A, promBin, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
%sscrape_configs:
  - job_name: pktstat
    scheme: https
    tls_config:
      ca_file: %s
    basic_auth:
      username: %s
      password: %s
    static_configs:
      - targets: [%q]
`, rulesConfig(t, false), certPath, user, password, listen))
	prom.waitQuery(t, `up{job="pktstat"}`, "job", map[string]float64{"pktstat": 1}, 20*time.Second)

	// Known traffic: every datagram reaches its receiver, so each crossed
	// A's TC hooks once.
	const size = 100
	payload := bytes.Repeat([]byte{0xa5}, size)
	ap := netip.AddrPortFrom
	flows := []struct {
		f harness.UDPFlow
		n int
	}{
		{harness.NewUDPFlow("IPv4 B->A (in)", p.B, p.A, ap(p.B.IPv4, 41001), ap(p.A.IPv4, 5001)), 300},
		{harness.NewUDPFlow("IPv6 B->A (in)", p.B, p.A, ap(p.B.IPv6, 41002), ap(p.A.IPv6, 5002)), 100},
		{harness.NewUDPFlow("IPv4 A->B (out)", p.A, p.B, ap(p.A.IPv4, 41003), ap(p.B.IPv4, 5003)), 200},
	}
	wantPackets := map[string]float64{}
	wantBytes := map[string]float64{}
	for _, fl := range flows {
		harness.SendUDPFlow(t, fl.f, payload, fl.n)
		dir := "in"
		if fl.f.From.NS == p.A.NS {
			dir = "out"
		}
		frame := harness.EthLen + fl.f.L3Len + harness.UDPLen + size
		wantPackets[dir] += float64(fl.n)
		wantBytes[dir] += float64(fl.n * frame)
		t.Logf("sent %s: %d datagrams of %d payload bytes = %d wire bytes", fl.f.Name, fl.n, size, fl.n*frame)
	}

	prom.waitQuery(t, `sum by (direction) (pktstat_packets_total{protocol="UDP"})`, "direction", wantPackets, 20*time.Second)
	prom.waitQuery(t, `sum by (direction) (pktstat_bytes_total{protocol="UDP"})`, "direction", wantBytes, 20*time.Second)
	prom.waitQuery(t, `sum by (direction) (pktstat_untracked_packets_total)`, "direction", map[string]float64{"in": 0, "out": 0}, 5*time.Second)

	// Each flow was, for the scrape that drained it, one of the top 3, with
	// labels that name it.
	for _, fl := range flows {
		q := fmt.Sprintf(`max_over_time(pktstat_flow_packets_per_second{protocol="UDP",src=%q,dst=%q,src_port="%d",dst_port="%d"}[5m])`,
			fl.f.Src.Addr(), fl.f.Dst.Addr(), fl.f.Src.Port(), fl.f.Dst.Port())
		ss, err := prom.query(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) != 1 || ss[0].Value <= 0 {
			t.Errorf("%s: %s = %v, want one series with a positive rate", fl.f.Name, q, ss)
		}
	}
	// Run-time statistics are on (the tool runs as root): every received
	// datagram is one run of the ingress program at least.
	ss, err := prom.query(`pktstat_bpf_program_runs_total`)
	if err != nil {
		t.Fatal(err)
	}
	runs := byLabel(ss, "program")
	if runs["pktstat_ingress"] < wantPackets["in"] || runs["pktstat_egress"] < wantPackets["out"] {
		t.Errorf("program runs %v, want at least %v in and %v out", runs, wantPackets["in"], wantPackets["out"])
	}
	if ss, err := prom.query(`pktstat_bpf_program_run_seconds_total / pktstat_bpf_program_runs_total * 1e9`); err == nil {
		t.Logf("ns per run, from the kernel's statistics: %v", byLabel(ss, "program"))
	}

	// The dashboard's queries and the rules (deploy/), on this data.
	checkDashboardAndRules(t, prom)

	harness.StopTool(t, tl, syscall.SIGTERM)
	if out := tl.Stdout(); out != "" {
		t.Errorf("a daemon without -j printed a report: %.300q", out)
	}
}

// TestE2EDaemonReports checks the reports a daemon prints when asked for,
// while scrapes drain the same table: with -j or --output plain one report
// of the whole run at the end, with --interval one per interval. Scrapes in between must
// take nothing away from the reports, and the reports nothing from the
// counters: both must equal the traffic sent.
func TestE2EDaemonReports(t *testing.T) {
	bin := harness.Binary(t)
	const (
		addr      = "127.0.0.1:9864"
		n, size   = 120, 80
		batches   = 4
		perBatch  = n / batches
		wireBytes = n * (harness.EthLen + harness.IPv4Len + harness.UDPLen + size)
	)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"-j at the end", []string{"-j"}},
		{"--output plain at the end", []string{"--output", "plain"}},
		{"--interval", []string{"--interval", "150ms", "-j"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testnet.NewPair(t)
			p.PinNeighbors(t)
			tl := harness.StartTool(t, p.A, bin, append([]string{"-i", p.A.Link, "--listen", addr}, c.args...)...)
			f := harness.NewUDPFlow("IPv4 B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 43001), netip.AddrPortFrom(p.A.IPv4, 7001))
			// Batches of datagrams with a scrape (a drain) after each one,
			// and pauses long enough for interval reports in between, and
			// for each scrape to drain anew rather than get the previous
			// one's answer (metrics.ReuseWithin).
			for range batches {
				harness.SendUDPFlow(t, f, make([]byte, size), perBatch)
				harness.ScrapeText(t, p.A, addr)
				time.Sleep(metrics.ReuseWithin + 100*time.Millisecond)
			}
			fams := harness.ScrapeText(t, p.A, addr)
			l := map[string]string{"direction": "in", "protocol": "UDP"}
			pk, _ := harness.FamilyValue(fams, "pktstat_packets_total", l)
			by, _ := harness.FamilyValue(fams, "pktstat_bytes_total", l)
			if pk != n || by != wireBytes {
				t.Errorf("counters: %v packets / %v bytes, sent %d / %d", pk, by, n, wireBytes)
			}
			if c.name == "--output plain at the end" {
				harness.StopTool(t, tl, syscall.SIGTERM)
				want := fmt.Sprintf(", packets: %d, bytes: %d, proto: UDP, src: %s, dst: %s\n", n, wireBytes, f.Src, f.Dst)
				if !strings.Contains(tl.Stdout(), want) || !strings.HasPrefix(tl.Stdout(), "bitrate: ") {
					t.Errorf("plain report lacks a row ending in %q:\n%s", want, tl.Stdout())
				} else {
					t.Logf("the plain report and the counters each hold %d packets / %d bytes, as sent, after %d scrapes in between", n, wireBytes, batches+1)
				}
				return
			}
			var rows []harness.Row
			reports := 1
			if c.name == "--interval" {
				ivs := harness.StopIntervals(t, tl, syscall.SIGTERM)
				reports = len(ivs)
				for _, iv := range ivs {
					rows = append(rows, iv.Rows...)
				}
			} else {
				rows = harness.StopCapture(t, tl, syscall.SIGTERM)
			}
			var got harness.Row
			for _, r := range harness.Find(rows, "UDP", f.Src.Addr().String(), f.Dst.Addr().String(), f.Src.Port(), f.Dst.Port()) {
				got.Packets += r.Packets
				got.Bytes += r.Bytes
			}
			if got.Packets != n || got.Bytes != wireBytes {
				t.Errorf("%d reports hold %d packets / %d bytes of the flow, sent %d / %d", reports, got.Packets, got.Bytes, n, wireBytes)
			} else {
				t.Logf("%d report(s) and the counters each hold %d packets / %d bytes, as sent, after %d scrapes in between", reports, got.Packets, got.Bytes, batches+1)
			}
			if c.name == "--interval" && reports < batches {
				t.Errorf("%d interval reports, want at least %d", reports, batches)
			}
		})
	}
}

// TestE2EDaemonBadInput checks that a daemon that cannot serve fails
// before it attaches anything, with one line and exit code 1 (2 for a
// usage error).
func TestE2EDaemonBadInput(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	const addr = "127.0.0.1:9864"
	t.Run("port in use", func(t *testing.T) {
		var ln net.Listener
		if err := p.A.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		r := harness.RunBinary(t, p.A.Command(bin, "-i", p.A.Link, "--listen", addr), nil)
		r.Want(t, 1, "listen for metrics on "+addr, "address already in use")
		if left := harness.OurTCX(t, p.A); len(left) != 0 {
			t.Errorf("attached although it could not listen: %v", left)
		}
	})
	t.Run("broken web config", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "web.yml")
		if err := os.WriteFile(cfg, []byte("basic_auth_users:\n  prometheus: not-a-bcrypt-hash\ntls_server_config:\n  cert_file: /nonexistent.pem\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := harness.RunBinary(t, p.A.Command(bin, "-i", p.A.Link, "--listen", addr, "--web.config.file", cfg), nil)
		r.Want(t, 1, "invalid --web.config.file "+cfg)
		if left := harness.OurTCX(t, p.A); len(left) != 0 {
			t.Errorf("attached although the web config is broken: %v", left)
		}
	})
	t.Run("missing web config", func(t *testing.T) {
		r := harness.RunBinary(t, p.A.Command(bin, "-i", p.A.Link, "--listen", addr, "--web.config.file", "/nonexistent/web.yml"), nil)
		r.Want(t, 1, "invalid --web.config.file /nonexistent/web.yml")
	})
	t.Run("with -g", func(t *testing.T) {
		r := harness.RunBinary(t, p.A.Command(bin, "-i", p.A.Link, "--listen", addr, "-g"), nil)
		r.Want(t, 2, "--listen and -g (--tui) cannot be combined")
	})
	t.Run("exposed without TLS and auth", func(t *testing.T) {
		exposed := netip.AddrPortFrom(p.A.IPv4, 9864).String()
		r := harness.RunBinary(t, p.A.Command(bin, "-i", p.A.Link, "--listen", exposed), nil)
		r.Want(t, 2, "--listen "+exposed+" can be reached from other hosts", "--insecure-listen")
		if left := harness.OurTCX(t, p.A); len(left) != 0 {
			t.Errorf("attached although the endpoint was refused: %v", left)
		}
		// --insecure-listen serves it, with a warning.
		tl := harness.StartTool(t, p.A, bin, "-i", p.A.Link, "--listen", exposed, "--insecure-listen")
		if !strings.Contains(tl.Stderr(), "without both TLS and basic auth") {
			t.Errorf("no warning with --insecure-listen:\n%s", tl.Stderr())
		}
		harness.ScrapeText(t, p.B, exposed)
		harness.StopTool(t, tl, syscall.SIGTERM)
	})
}

// TestE2EIdleConnections: 1000 clients that each make a request on a
// kept-alive connection and then say nothing hold no connection past the
// server's idle timeout (30 s): a daemon cannot be made to hold sockets
// by clients that never hang up.
func TestE2EIdleConnections(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	const addr, conns = "127.0.0.1:9864", 1000
	tl := harness.StartTool(t, p.A, bin, "-i", p.A.Link, "--listen", addr)
	// established counts the connections to the metrics port, both ends,
	// that are open in the namespace.
	established := func() int {
		t.Helper()
		var n int
		if err := p.A.Do(func() error {
			raw, err := os.ReadFile("/proc/thread-self/net/tcp")
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(raw), "\n")[1:] {
				f := strings.Fields(line)
				// local and remote address, then the state; 01 is ESTABLISHED.
				if len(f) > 3 && f[3] == "01" && (strings.HasSuffix(f[1], ":2688") || strings.HasSuffix(f[2], ":2688")) {
					n++
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range conns {
		var c net.Conn
		if err := p.A.Do(func() (err error) { c, err = net.Dial("tcp", addr); return err }); err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		// One request (not /metrics: no drain), then silence.
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if n := established(); n < conns {
		t.Fatalf("%d connection ends established after %d requests", n, conns)
	}
	begin := time.Now()
	deadline := begin.Add(45 * time.Second)
	for established() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	if n := established(); n > 0 {
		t.Fatalf("%d connection ends still established %v after the requests", n, time.Since(begin).Round(time.Second))
	}
	t.Logf("the server closed all %d idle connections within %v", conns, time.Since(begin).Round(time.Second))
	harness.StopTool(t, tl, syscall.SIGTERM)
}
