package buildinfo

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/pktstat-bpf/pktstat-bpf", Version: "v0.3.0"},
		Deps: []*debug.Module{
			{Path: "github.com/spf13/pflag", Version: "v1.0.6"},
			{Path: "github.com/cilium/ebpf", Version: "v0.22.0"},
		},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "41a58cf0"},
			{Key: "vcs.time", Value: "2026-12-06T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	want := Info{Version: "v0.3.0", Revision: "41a58cf0", Time: "2026-12-06T10:00:00Z", Modified: true, GoVersion: "go1.26.8", Ebpf: "v0.22.0"}
	if got := FromBuildInfo(bi, ""); got != want {
		t.Errorf("FromBuildInfo = %+v, want %+v", got, want)
	}
	want.Version = "v9.9.9"
	if got := FromBuildInfo(bi, "v9.9.9"); got != want {
		t.Errorf("with a linked version: %+v, want %+v", got, want)
	}
	if got := FromBuildInfo(nil, ""); got != (Info{Version: "unknown"}) || got.String() != "pktstat-bpf unknown" {
		t.Errorf("without build info: %+v, %q", got, got.String())
	}
	wantText := "pktstat-bpf v9.9.9 (revision 41a58cf0, modified, 2026-12-06T10:00:00Z; go1.26.8; cilium/ebpf v0.22.0)"
	if got := want.String(); got != wantText {
		t.Errorf("String() =\n%s\nwant\n%s", got, wantText)
	}
}

// TestLinkedVersion builds a tiny program with -ldflags -X and checks that
// the version it reports is the linked one, with the real Go and
// cilium/ebpf versions of this module.
func TestLinkedVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "v")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X github.com/pktstat-bpf/pktstat-bpf/internal/buildinfo.version=v1.2.3-test", "./testdata/printinfo")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	ebpfVersion, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/cilium/ebpf").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, w := range []string{"pktstat-bpf v1.2.3-test (", runtime.Version() + "; cilium/ebpf", "; cilium/ebpf " + strings.TrimSpace(string(ebpfVersion)) + ")"} {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q:\n%s", w, got)
		}
	}
}
