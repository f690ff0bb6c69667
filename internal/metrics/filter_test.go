package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
)

// TestFiltered checks that what the filter dropped adds up over drains
// into pktstat_filtered_*, and that the series exist only with a filter.
func TestFiltered(t *testing.T) {
	snaps := func() *script {
		return &script{snaps: []flow.Snapshot{
			{Flows: []flow.Flow{udp(a1, a2, 1000, 53, flow.Out, 3, 300)}, Filtered: flow.Counters{Packets: 5, Bytes: 600}},
			{Filtered: flow.Counters{Packets: 2, Bytes: 84}},
		}}
	}
	c := New(Options{Pipeline: pipeline.New(snaps(), nil), Iface: "pa0", MaxEntries: 4096, Filter: true})
	c.o.Pipeline.Drain() // a report's drain, between scrapes
	want := `
# HELP pktstat_filtered_bytes_total Bytes the filter expression dropped: seen by the eBPF programs, in no flow.
# TYPE pktstat_filtered_bytes_total counter
pktstat_filtered_bytes_total{iface="pa0"} 684
# HELP pktstat_filtered_packets_total Packets the filter expression dropped: seen by the eBPF programs, in no flow.
# TYPE pktstat_filtered_packets_total counter
pktstat_filtered_packets_total{iface="pa0"} 7
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "pktstat_filtered_packets_total", "pktstat_filtered_bytes_total"); err != nil {
		t.Error(err)
	}
	none := New(Options{Pipeline: pipeline.New(snaps(), nil), Iface: "pa0", MaxEntries: 4096})
	if n := testutil.CollectAndCount(none, "pktstat_filtered_packets_total", "pktstat_filtered_bytes_total"); n != 0 {
		t.Errorf("without a filter: %d filtered series, want none", n)
	}
}
