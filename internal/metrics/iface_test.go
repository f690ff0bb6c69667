package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
)

// TestSeveralIfaces: when rows name their interface (the run watches
// several), the traffic counters and the top-flow series carry each row's
// interface in the iface label, and a packet forwarded from one watched
// interface to another counts on both.
func TestSeveralIfaces(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0), step: 2 * time.Second}
	on := func(f flow.Flow, iface string) flow.Flow { f.Iface = iface; return f }
	src := &script{snaps: []flow.Snapshot{{Flows: []flow.Flow{
		on(udp(a1, a2, 1000, 53, flow.In, 3, 300), "veth-a"),
		on(udp(a1, a2, 1000, 53, flow.Out, 3, 300), "veth-b"),
		on(udp(a1, a2, 1001, 53, flow.In, 1, 100), "veth-a"),
	}}}}
	c := New(Options{Pipeline: pipeline.New(src, clk.now), Iface: "any", Top: 1, MaxEntries: 4096, Now: clk.now})
	want := `
# HELP pktstat_flow_bytes_per_second Rate of one of the top --metrics-top flows, in bytes per second over the time since the previous scrape.
# TYPE pktstat_flow_bytes_per_second gauge
pktstat_flow_bytes_per_second{direction="in",dst="198.18.0.2",dst_port="53",flags="",icmp_code="",icmp_type="",iface="veth-a",protocol="UDP",src="198.18.0.1",src_port="1000",vlan=""} 150
# HELP pktstat_packets_total Packets counted by the eBPF programs in flows with a row of their own, by direction and protocol.
# TYPE pktstat_packets_total counter
pktstat_packets_total{direction="in",iface="veth-a",protocol="UDP"} 4
pktstat_packets_total{direction="out",iface="veth-b",protocol="UDP"} 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pktstat_packets_total", "pktstat_flow_bytes_per_second"); err != nil {
		t.Fatal(err)
	}
}
