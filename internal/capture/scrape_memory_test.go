package capture

import (
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pktstat-bpf/pktstat-bpf/internal/metrics"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// vmRSS is this process's resident set as the kernel counts it
// (/proc/self/status VmRSS), in bytes.
func vmRSS(t *testing.T) uint64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestScrapeMemory is the daemon's scrape path at --max-entries 1048576:
// a TC capture attached to a veth, its pipeline, and the metrics
// collector with scrape reuse off, so that each of 500 scrapes drains.
// Between scrapes a few flows pass, so that the drains have rows. The
// resident set the kernel reports must stay flat: a drain's buffers are
// sized from the last drain and reused, not allocated for the table's
// million rows each time (which took an idle daemon to 447 MB in 46
// scrapes).
func TestScrapeMemory(t *testing.T) {
	testnet.RequireRoot(t)
	const maxEntries, scrapes, warmup = 1 << 20, 500, 20
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	var tc *TC
	if err := p.A.Do(func() (err error) {
		tc, err = StartTC(TCOptions{Ifindex: p.A.Index, MaxEntries: maxEntries})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	pipe := pipeline.New(tc, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(metrics.Options{Pipeline: pipe, Iface: p.A.Link, Mode: tc.Describe(), MaxEntries: maxEntries, Top: 10}))

	recv, err := p.A.ListenUDP(netip.AddrPortFrom(p.A.IPv4, 5400))
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	send, err := p.B.DialUDP(netip.AddrPortFrom(p.B.IPv4, 0), netip.AddrPortFrom(p.A.IPv4, 5400))
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()

	var sent, counted uint64
	scrape := func() {
		if err := testnet.SendUDP(send, make([]byte, 64), 4); err != nil {
			t.Fatal(err)
		}
		sent += 4
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "pktstat_packets_total" {
				continue
			}
			counted = 0
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["direction"] == "in" && strings.EqualFold(labels["protocol"], "udp") {
					counted += uint64(m.GetCounter().GetValue())
				}
			}
		}
	}
	for range warmup {
		scrape()
	}
	runtime.GC()
	before := vmRSS(t)
	for range scrapes - warmup {
		scrape()
	}
	runtime.GC()
	after := vmRSS(t)
	// The sender's datagrams all arrive on A (ingress), the only UDP
	// there; the last scrape's counters hold every one.
	if counted != sent {
		t.Errorf("ingress UDP packets counted over %d scrapes: %d, want the %d sent", scrapes, counted, sent)
	}
	// One drain's worth of rows for the table's million flows would be
	// tens of MiB; the budget is well under that.
	const budget = 8 << 20
	if after > before+budget {
		t.Errorf("resident set grew from %.1f to %.1f MiB over %d scrapes at --max-entries %d, more than %d MiB", float64(before)/(1<<20), float64(after)/(1<<20), scrapes-warmup, maxEntries, budget>>20)
	}
	t.Logf("%d scrapes at --max-entries %d, each a drain: resident set %.1f MiB after %d, %.1f MiB at the end; %d packets counted, %d sent", scrapes, maxEntries, float64(before)/(1<<20), warmup, float64(after)/(1<<20), counted, sent)
}
