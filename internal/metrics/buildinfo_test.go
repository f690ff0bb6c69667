package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pktstat-bpf/pktstat-bpf/internal/buildinfo"
)

func TestBuildInfo(t *testing.T) {
	c := BuildInfo(buildinfo.Info{Version: "v1.2.3", Revision: "41a58cf0", GoVersion: "go1.26.8", Ebpf: "v0.22.0", Time: "2026-12-06T10:00:00Z"})
	want := `# HELP pktstat_build_info Always 1: the version, VCS revision, Go version and cilium/ebpf version of this pktstat-bpf build.
# TYPE pktstat_build_info gauge
pktstat_build_info{ebpf="v0.22.0",goversion="go1.26.8",revision="41a58cf0",version="v1.2.3"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
