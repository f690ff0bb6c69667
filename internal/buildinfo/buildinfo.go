// Package buildinfo says which build of pktstat-bpf is running: the
// version, the VCS revision it was built from, and the Go and cilium/ebpf
// versions it was built with. --version prints it and the
// pktstat_build_info gauge exports it, from the same Info.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version is set at link time by release and package builds:
//
//	go build -ldflags "-X github.com/pktstat-bpf/pktstat-bpf/internal/buildinfo.version=v1.2.3"
//
// It is a variable only because -X can set nothing else; nothing assigns
// it at run time.
var version string

// ebpfModule is the module whose version Info.Ebpf reports.
const ebpfModule = "github.com/cilium/ebpf"

// Info describes one build. Empty fields are unknown.
type Info struct {
	Version   string // -ldflags -X, else the main module's version ("(devel)" in a plain go build)
	Revision  string // vcs.revision
	Time      string // vcs.time, RFC 3339
	Modified  bool   // vcs.modified: the tree had uncommitted changes
	GoVersion string // the toolchain that built the binary
	Ebpf      string // the cilium/ebpf module's version
}

// Read returns the running binary's Info.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return FromBuildInfo(bi, version)
}

// FromBuildInfo builds an Info from bi (nil when the binary carries none)
// and a link-time version, which wins over the module version when set.
func FromBuildInfo(bi *debug.BuildInfo, linked string) Info {
	var i Info
	if bi != nil {
		i.Version = bi.Main.Version
		i.GoVersion = bi.GoVersion
		for _, d := range bi.Deps {
			if d.Path == ebpfModule {
				i.Ebpf = d.Version
				if d.Replace != nil && d.Replace.Version != "" {
					i.Ebpf = d.Replace.Version
				}
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.time":
				i.Time = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if linked != "" {
		i.Version = linked
	}
	if i.Version == "" {
		i.Version = "unknown"
	}
	return i
}

// String is what --version prints, on one line so that scripts can read
// it: "pktstat-bpf v1.2.3 (revision 41a58cf0, modified, 2026-12-06T10:00:00Z;
// go1.26.8; cilium/ebpf v0.22.0)". Unknown fields are left out.
func (i Info) String() string {
	var vcs []string
	if i.Revision != "" {
		vcs = append(vcs, "revision "+i.Revision)
	}
	if i.Modified {
		vcs = append(vcs, "modified")
	}
	if i.Time != "" {
		vcs = append(vcs, i.Time)
	}
	var parts []string
	if len(vcs) > 0 {
		parts = append(parts, strings.Join(vcs, ", "))
	}
	if i.GoVersion != "" {
		parts = append(parts, i.GoVersion)
	}
	if i.Ebpf != "" {
		parts = append(parts, "cilium/ebpf "+i.Ebpf)
	}
	if len(parts) == 0 {
		return "pktstat-bpf " + i.Version
	}
	return fmt.Sprintf("pktstat-bpf %s (%s)", i.Version, strings.Join(parts, "; "))
}
