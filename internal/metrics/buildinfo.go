package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pktstat-bpf/pktstat-bpf/internal/buildinfo"
)

// BuildInfo returns the pktstat_build_info gauge: always 1, labelled with
// the fields --version prints, so that a dashboard can tell which build
// runs where.
func BuildInfo(i buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "pktstat_build_info",
		Help: "Always 1: the version, VCS revision, Go version and cilium/ebpf version of this pktstat-bpf build.",
		ConstLabels: prometheus.Labels{
			"version":   i.Version,
			"revision":  i.Revision,
			"goversion": i.GoVersion,
			"ebpf":      i.Ebpf,
		},
	})
	g.Set(1)
	return g
}
