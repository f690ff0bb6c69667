package capture

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// BenchmarkXDPPerPacket measures what pktstat_xdp costs per frame, as the
// kernel times it in BPF_PROG_TEST_RUN, as BenchmarkTCPerPacket does for
// TC: in each flow-table layout, with the flow cache and without, beside
// an empty XDP program and the least a flow counter can do, each measured
// in the same runs. The frame
// is a 60-byte IPv4 UDP packet of a single flow, so every run after the
// first is the common case: parse, one lookup that hits, two adds. Both
// programs StartXDP may load are measured: the single-buffer one (native
// mode at a standard MTU) and, where the kernel has multi-buffer XDP, the
// multi-buffer one (generic mode, jumbo MTUs), which asks a helper for
// every frame's length.
//
//	go test -run '^$' -bench XDPPerPacket -benchtime 5x ./internal/capture/
func BenchmarkXDPPerPacket(b *testing.B) {
	bpftest.RequireRoot(b)
	multiBuffer, err := ProbeXDPFrags()
	if err != nil {
		b.Fatal(err)
	}
	var progs []benchProg
	for _, v := range benchVariants {
		for _, frags := range []bool{false, true} {
			if frags && !multiBuffer {
				continue
			}
			name := "pktstat-" + v.name() + "-single-buffer"
			if frags {
				name = "pktstat-" + v.name() + "-multi-buffer"
			}
			h := loadHook(b, xdpHook, testLoad{maxEntries: 131072, frags: frags, layout: v.layout, noCache: v.noCache})
			progs = append(progs, pktstatBench(name, h.progs[0].prog, h.tb))
		}
	}
	perPacket(b, ebpf.XDP, xdpPass, progs)
}
