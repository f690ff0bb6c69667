package capture

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// Five primitives that the benchmark frame (UDP from 198.18.0.1:40001 to
// 198.19.0.2:5201, untagged) matches, and the same five with the last one
// turned so that it does not: every primitive is evaluated either way.
const (
	benchFilterMatch   = "udp and src net 198.18.0.0/15 and dst host 198.19.0.2 and not port 22 and not vlan"
	benchFilterNoMatch = "udp and src net 198.18.0.0/15 and dst host 198.19.0.2 and not port 22 and vlan"
)

// BenchmarkTCFilter measures pktstat_ingress per packet without a filter,
// with a 5-primitive filter that the packet matches (the filter's cost on
// top of counting), and with one that it does not (the filter's cost
// instead of counting), in the same runs as an empty program, as
// BenchmarkTCPerPacket does; and with the 1-primitive filter "udp", which
// is mostly the cost of calling the filter function:
//
//	go test -run '^$' -bench TCFilter -benchtime 5x ./internal/capture/
func BenchmarkTCFilter(b *testing.B) {
	bpftest.RequireRoot(b)
	load := func(expr string) hookUnderTest {
		var f *filter.Filter
		if expr != "" {
			var err error
			if f, err = filter.Parse([]string{expr}); err != nil {
				b.Fatal(err)
			}
		}
		return loadHook(b, tcHook, testLoad{filter: f})
	}
	none, one, match, miss := load(""), load("udp"), load(benchFilterMatch), load(benchFilterNoMatch)
	progs := []benchProg{
		pktstatBench("unfiltered", none.tc.PktstatIngress, none.tb),
		pktstatBench("filter-1-match", one.tc.PktstatIngress, one.tb),
		pktstatBench("filter-5-match", match.tc.PktstatIngress, match.tb),
		{
			name:  "filter-5-nomatch",
			prog:  miss.tc.PktstatIngress,
			reset: func(b *testing.B) { drainAll(b, miss.tb) },
			check: func(b *testing.B, _ flow.Key, packets uint64) {
				b.Helper()
				rows, err := miss.tb.TakeActive()
				if err != nil {
					b.Fatal(err)
				}
				dropped, err := miss.tb.TakeActiveFiltered()
				if err != nil {
					b.Fatal(err)
				}
				if len(rows) != 0 || dropped.Packets < packets || dropped.Bytes != dropped.Packets*60 {
					b.Fatalf("rows %+v and filtered %+v, want no row and >= %d packets of 60 bytes filtered", rows, dropped, packets)
				}
			},
		},
	}
	perPacket(b, ebpf.SchedCLS, int32(tcPass()), progs)
}
