// Package metrics exports what the kernel counted as Prometheus metrics.
//
// It follows the collector idiom of ebpf_exporter and node_exporter: nothing
// runs between scrapes, and each scrape reads the kernel at that moment. A
// read here is a drain (capture.Source.Drain: every count since the previous
// drain, exactly once), so the collector folds each drain into cumulative
// Go-side counters whose label sets are bounded (direction and protocol),
// which keeps them monotonic and exact however often Prometheus scrapes.
// Per-flow state is kept only for the top N flows of one scrape.
package metrics

import (
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/untrusted"
)

// Options configure a Collector.
type Options struct {
	// Pipeline is where a scrape drains; New registers the collector as
	// one of its sinks, so the counters see every drain, a scrape's or a
	// report's.
	Pipeline *pipeline.Pipeline
	// Iface is the watched interface's name, the iface label of every
	// traffic series; "" in cgroup mode, which sees every interface.
	Iface string
	// Mode and Cgroup label pktstat_info: the mode as the capture
	// describes itself, and the watched cgroup in cgroup mode.
	Mode, Cgroup string
	MaxEntries   uint32 // the flow table's size
	// ReuseWithin, when positive, serves a scrape that comes this soon
	// after the previous one that scrape's answer, without a drain (the
	// daemon uses ReuseWithin); by Now's clock.
	ReuseWithin time.Duration
	// Top is how many flows get series of their own (0: none).
	Top int
	// Owners adds pid, comm and cgroup labels to the top flows, in the
	// modes that know who owns a flow.
	Owners bool
	// Filter says a filter expression is in use: what it dropped is
	// exported (pktstat_filtered_*), and only then.
	Filter bool
	// Programs are the capture's eBPF programs by name, for their run
	// counts and run times; StatsEnabled says whether the kernel is
	// collecting those now (nil: never).
	Programs     map[string]*ebpf.Program
	StatsEnabled func() bool
	Log          *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// counterKey is one series of the traffic counters.
type counterKey struct {
	dir   flow.Direction
	proto string
	iface string // the row's interface when the run watches several; "" for Options.Iface
}

// Collector is a prometheus.Collector that drains the capture at each
// scrape, and a pipeline sink that folds every drain into its counters.
// Scrapes are serialized, so that each scrape's window of top flows is
// its own.
type Collector struct {
	o Options

	scrape sync.Mutex // one scrape at a time
	// The metrics the last scrape sent, and when it began: a scrape within
	// reuseWithin of it sends them again.
	last       []prometheus.Metric
	lastAt     time.Time
	mu         sync.Mutex // the state below, which Fold and Collect share
	traffic    map[counterKey]flow.Counters
	untracked  [flow.NumDirections]flow.Counters
	filtered   flow.Counters // what the filter expression dropped
	readErrors uint64
	skipped    uint64 // top-flow series the client library refused
	// window holds the flows of every drain since the previous scrape,
	// the reports' and the scrape's own, for the scrape to rank; it starts
	// at windowStart. It holds at most MaxEntries rows: a flow beyond that
	// still counts in the counters, but cannot be one of the top flows.
	window      map[flow.Key]flow.Counters
	windowStart time.Time
	// Since the previous scrape: the most rows and the largest untracked
	// estimate that one drain saw.
	windowRows, windowUntrackedFlows uint64

	descs descs
}

type descs struct {
	packets, bytes                   *prometheus.Desc
	untrackedPackets, untrackedBytes *prometheus.Desc
	untrackedFlows                   *prometheus.Desc
	filteredPackets, filteredBytes   *prometheus.Desc
	tableEntries, tableMax           *prometheus.Desc
	readDuration, readErrors         *prometheus.Desc
	skipped                          *prometheus.Desc
	progRuns, progRunSeconds         *prometheus.Desc
	statsEnabled                     *prometheus.Desc
	flowBytes, flowPackets           *prometheus.Desc
	info                             *prometheus.Desc
}

// The labels of the top-flow series, in order; ownerLabels follow them in
// the modes that know owners.
var (
	flowLabels  = []string{"iface", "direction", "protocol", "src", "dst", "src_port", "dst_port", "icmp_type", "icmp_code", "vlan", "flags"}
	ownerLabels = []string{"pid", "comm", "cgroup"}
)

// New returns a collector that drains o.Pipeline, registered as its sink.
// Counting began at the moment New is called, as far as rates are
// concerned.
func New(o Options) *Collector {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Top = max(o.Top, 0)
	// Names from outside the tool, made safe for a label (a label must
	// be UTF-8) and for whoever reads it on a terminal.
	o.Iface, o.Cgroup = untrusted.Visible(o.Iface), untrusted.Visible(o.Cgroup)
	fl := slices.Clone(flowLabels)
	if o.Owners {
		fl = append(fl, ownerLabels...)
	}
	traffic := []string{"iface", "direction", "protocol"}
	perDir := []string{"iface", "direction"}
	iface := []string{"iface"}
	c := &Collector{
		o:           o,
		traffic:     map[counterKey]flow.Counters{},
		window:      map[flow.Key]flow.Counters{},
		windowStart: o.Now(),
		descs: descs{
			packets: prometheus.NewDesc("pktstat_packets_total",
				"Packets counted by the eBPF programs in flows with a row of their own, by direction and protocol.", traffic, nil),
			bytes: prometheus.NewDesc("pktstat_bytes_total",
				"Bytes counted by the eBPF programs in flows with a row of their own, by direction and protocol.", traffic, nil),
			untrackedPackets: prometheus.NewDesc("pktstat_untracked_packets_total",
				"Packets counted while the flow table was full, so without a flow of their own.", perDir, nil),
			untrackedBytes: prometheus.NewDesc("pktstat_untracked_bytes_total",
				"Bytes counted while the flow table was full, so without a flow of their own.", perDir, nil),
			untrackedFlows: prometheus.NewDesc("pktstat_untracked_flows",
				"Estimated distinct flows (HyperLogLog, about 3% error) that found the flow table full, over the time since the previous scrape.", iface, nil),
			filteredPackets: prometheus.NewDesc("pktstat_filtered_packets_total",
				"Packets the filter expression dropped: seen by the eBPF programs, in no flow.", iface, nil),
			filteredBytes: prometheus.NewDesc("pktstat_filtered_bytes_total",
				"Bytes the filter expression dropped: seen by the eBPF programs, in no flow.", iface, nil),
			tableEntries: prometheus.NewDesc("pktstat_flow_table_entries",
				"Flows in the kernel's flow table when it was drained for this scrape.", iface, nil),
			tableMax: prometheus.NewDesc("pktstat_flow_table_max_entries",
				"Size of the kernel's flow table (--max-entries).", iface, nil),
			readDuration: prometheus.NewDesc("pktstat_read_duration_seconds",
				"Time this scrape took to drain the kernel's flow table.", nil, nil),
			readErrors: prometheus.NewDesc("pktstat_read_errors_total",
				"Drains of the kernel's flow table that failed.", nil, nil),
			skipped: prometheus.NewDesc("pktstat_series_skipped_total",
				"Top-flow series left out of a scrape because their labels were refused.", nil, nil),
			progRuns: prometheus.NewDesc("pktstat_bpf_program_runs_total",
				"Runs of each eBPF program while the kernel collected run-time statistics.", []string{"program"}, nil),
			progRunSeconds: prometheus.NewDesc("pktstat_bpf_program_run_seconds_total",
				"Time spent in each eBPF program while the kernel collected run-time statistics.", []string{"program"}, nil),
			statsEnabled: prometheus.NewDesc("pktstat_bpf_stats_enabled",
				"1 if the kernel collects eBPF run-time statistics (the pktstat_bpf_program_* series), else 0.", nil, nil),
			flowBytes: prometheus.NewDesc("pktstat_flow_bytes_per_second",
				"Rate of one of the top --metrics-top flows, in bytes per second over the time since the previous scrape.", fl, nil),
			flowPackets: prometheus.NewDesc("pktstat_flow_packets_per_second",
				"Rate of one of the top --metrics-top flows, in packets per second over the time since the previous scrape.", fl, nil),
			info: prometheus.NewDesc("pktstat_info",
				"Always 1: what this pktstat-bpf watches, and how.", []string{"iface", "mode", "cgroup"}, nil),
		},
	}
	o.Pipeline.Register(c)
	return c
}

// Describe sends every descriptor the collector may emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	d := &c.descs
	for _, x := range []*prometheus.Desc{d.packets, d.bytes, d.untrackedPackets, d.untrackedBytes,
		d.untrackedFlows, d.filteredPackets, d.filteredBytes, d.tableEntries, d.tableMax, d.readDuration, d.readErrors, d.skipped, d.progRuns,
		d.progRunSeconds, d.statsEnabled, d.flowBytes, d.flowPackets, d.info} {
		ch <- x
	}
}

// Fold adds one drain to the counters and to the window of the next
// scrape's top flows.
func (c *Collector) Fold(s *flow.Snapshot, _ time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range s.Flows {
		k := counterKey{dir: f.Dir, proto: protocolLabel(f.Key), iface: untrusted.Visible(f.Iface)}
		v := c.traffic[k]
		v.Add(f.Counters)
		c.traffic[k] = v
		if old, ok := c.window[f.Key]; ok {
			old.Add(f.Counters)
			c.window[f.Key] = old
		} else if len(c.window) < int(c.o.MaxEntries) {
			c.window[f.Key] = f.Counters
		}
	}
	for dir, u := range s.Untracked {
		c.untracked[dir].Add(u)
	}
	c.filtered.Add(s.Filtered)
	c.windowRows = max(c.windowRows, uint64(len(s.Flows)))
	c.windowUntrackedFlows = max(c.windowUntrackedFlows, s.UntrackedFlows)
}

// ReuseWithin is how soon after a scrape the daemon serves another one
// the same answer, without a drain of its own: a second Prometheus server
// (a pair for high availability) or a client scraping in a loop must not
// make the tool drain, and cut the top-flow window short, as often as it
// asks.
const ReuseWithin = time.Second

// Collect drains the capture and sends every metric; within
// Options.ReuseWithin of the previous scrape, it sends that scrape's
// metrics again.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.scrape.Lock()
	defer c.scrape.Unlock()
	if c.o.ReuseWithin <= 0 {
		c.collect(ch)
		return
	}
	now := c.o.Now()
	if c.last != nil && now.Sub(c.lastAt) < c.o.ReuseWithin {
		for _, m := range c.last {
			ch <- m
		}
		return
	}
	sent := c.last[:0]
	tee := make(chan prometheus.Metric)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range tee {
			sent = append(sent, m)
			ch <- m
		}
	}()
	c.collect(tee)
	close(tee)
	<-done
	c.last, c.lastAt = sent, now
}

// collect drains the capture and sends every metric.
func (c *Collector) collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	// The window ends where the drain starts (at): its first step swaps
	// the tables, so its length must not stretch the rates.
	_, at, err := c.o.Pipeline.Drain()
	took := time.Since(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.readErrors++
		c.o.Log.Warn("could not read the flow table for a scrape; the counters keep their last values", "error", err)
	}
	d := &c.descs
	iface := c.o.Iface
	ch <- prometheus.MustNewConstMetric(d.info, prometheus.GaugeValue, 1, iface, c.o.Mode, c.o.Cgroup)
	for _, k := range slices.SortedFunc(maps.Keys(c.traffic), compareCounterKeys) {
		v := c.traffic[k]
		rowIface := iface
		if k.iface != "" {
			rowIface = k.iface
		}
		ch <- prometheus.MustNewConstMetric(d.packets, prometheus.CounterValue, float64(v.Packets), rowIface, k.dir.String(), k.proto)
		ch <- prometheus.MustNewConstMetric(d.bytes, prometheus.CounterValue, float64(v.Bytes), rowIface, k.dir.String(), k.proto)
	}
	for dir, u := range c.untracked {
		dl := flow.Direction(dir).String()
		ch <- prometheus.MustNewConstMetric(d.untrackedPackets, prometheus.CounterValue, float64(u.Packets), iface, dl)
		ch <- prometheus.MustNewConstMetric(d.untrackedBytes, prometheus.CounterValue, float64(u.Bytes), iface, dl)
	}
	ch <- prometheus.MustNewConstMetric(d.untrackedFlows, prometheus.GaugeValue, float64(c.windowUntrackedFlows), iface)
	if c.o.Filter {
		ch <- prometheus.MustNewConstMetric(d.filteredPackets, prometheus.CounterValue, float64(c.filtered.Packets), iface)
		ch <- prometheus.MustNewConstMetric(d.filteredBytes, prometheus.CounterValue, float64(c.filtered.Bytes), iface)
	}
	ch <- prometheus.MustNewConstMetric(d.tableEntries, prometheus.GaugeValue, float64(c.windowRows), iface)
	ch <- prometheus.MustNewConstMetric(d.tableMax, prometheus.GaugeValue, float64(c.o.MaxEntries), iface)
	ch <- prometheus.MustNewConstMetric(d.readDuration, prometheus.GaugeValue, took.Seconds())
	ch <- prometheus.MustNewConstMetric(d.readErrors, prometheus.CounterValue, float64(c.readErrors))
	c.collectPrograms(ch)

	if c.o.Top > 0 && len(c.window) > 0 {
		rows := make([]flow.Flow, 0, len(c.window))
		for k, v := range c.window {
			rows = append(rows, flow.Flow{Key: k, Counters: v})
		}
		top, _, _ := flow.Top(rows, c.o.Top, at.Sub(c.windowStart))
		c.collectTop(ch, top, at.Sub(c.windowStart))
	}
	ch <- prometheus.MustNewConstMetric(d.skipped, prometheus.CounterValue, float64(c.skipped))
	c.windowStart = at
	c.windowRows, c.windowUntrackedFlows = 0, 0
	clear(c.window)
}

// collectPrograms sends the run counts and run times of the eBPF programs,
// which the kernel keeps only while statistics are enabled: a count read
// while they are off would be a lie (zero), so none is sent then.
func (c *Collector) collectPrograms(ch chan<- prometheus.Metric) {
	on := c.o.StatsEnabled != nil && c.o.StatsEnabled()
	enabled := 0.0
	if on {
		enabled = 1
	}
	ch <- prometheus.MustNewConstMetric(c.descs.statsEnabled, prometheus.GaugeValue, enabled)
	if !on {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(c.o.Programs)) {
		st, err := c.o.Programs[name].Stats()
		if err != nil {
			c.o.Log.Warn("could not read the run-time statistics of an eBPF program", "program", name, "error", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.descs.progRuns, prometheus.CounterValue, float64(st.RunCount), name)
		ch <- prometheus.MustNewConstMetric(c.descs.progRunSeconds, prometheus.CounterValue, st.Runtime.Seconds(), name)
	}
}

// collectTop sends one rate series per top flow. Two keys that differ only
// in what no label shows would make duplicate series, which fail the whole
// scrape; they are added up into one instead.
func (c *Collector) collectTop(ch chan<- prometheus.Metric, top []flow.Flow, d time.Duration) {
	if d <= 0 {
		return
	}
	type series struct {
		labels []string
		c      flow.Counters
	}
	var order []string
	byID := map[string]*series{}
	for _, f := range top {
		l := c.flowLabelValues(f.Key)
		id := strings.Join(l, "\x00")
		s, ok := byID[id]
		if !ok {
			s = &series{labels: l}
			byID[id] = s
			order = append(order, id)
		}
		s.c.Add(f.Counters)
	}
	secs := d.Seconds()
	for _, id := range order {
		s := byID[id]
		b, errB := prometheus.NewConstMetric(c.descs.flowBytes, prometheus.GaugeValue, float64(s.c.Bytes)/secs, s.labels...)
		p, errP := prometheus.NewConstMetric(c.descs.flowPackets, prometheus.GaugeValue, float64(s.c.Packets)/secs, s.labels...)
		if err := errors.Join(errB, errP); err != nil {
			// One bad series must not fail the whole scrape.
			c.skipped++
			c.o.Log.Debug("left a top-flow series out of the scrape", "error", err)
			continue
		}
		ch <- b
		ch <- p
	}
}

// flowLabelValues returns the label values of a top flow, in the order of
// flowLabels (and ownerLabels). Labels that do not apply are empty, which
// Prometheus stores as absent.
func (c *Collector) flowLabelValues(k flow.Key) []string {
	var src, dst, sport, dport, itype, icode, vlan string
	if k.IsIP() {
		src, dst = k.Src.String(), k.Dst.String()
	}
	switch {
	case k.HasPorts():
		sport, dport = strconv.Itoa(int(k.SrcPort)), strconv.Itoa(int(k.DstPort))
	case k.IsICMP():
		itype, icode = strconv.Itoa(int(k.SrcPort)), strconv.Itoa(int(k.DstPort))
	}
	if k.VLAN != 0 {
		vlan = strconv.Itoa(int(k.VLAN))
	}
	iface := c.o.Iface
	if k.Iface != "" {
		iface = untrusted.Visible(k.Iface) // the row's, when the run watches several
	}
	l := []string{iface, k.Dir.String(), k.ProtoName(), src, dst, sport, dport, itype, icode, vlan, flagsLabel(k.Flags)}
	if c.o.Owners {
		o := k.Owner.Info()
		pid := ""
		if o.PID != 0 {
			pid = strconv.FormatUint(uint64(o.PID), 10)
		}
		l = append(l, pid, untrusted.Visible(o.Comm), untrusted.Visible(o.Cgroup))
	}
	return l
}

// flagsLabel names a key's flags, comma-separated, in a fixed order.
func flagsLabel(f flow.Flags) string {
	var names []string
	for _, n := range []struct {
		flag flow.Flags
		name string
	}{{flow.Fragment, "fragment"}, {flow.Malformed, "malformed"}, {flow.DeepChain, "deep_chain"}} {
		if f&n.flag != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// protocolLabel is the protocol label of the traffic counters: the name a
// report shows, except that EtherTypes without a name are all "other", so
// that a sender of random EtherTypes cannot make 65536 series. IP protocol
// numbers are at most 256.
func protocolLabel(k flow.Key) string {
	name := k.ProtoName()
	if !k.IsIP() && strings.HasPrefix(name, "0x") {
		return "other"
	}
	return name
}

func compareCounterKeys(a, b counterKey) int {
	if a.iface != b.iface {
		return strings.Compare(a.iface, b.iface)
	}
	if a.dir != b.dir {
		return int(a.dir) - int(b.dir)
	}
	return strings.Compare(a.proto, b.proto)
}
