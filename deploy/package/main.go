// Command package builds the .deb and .rpm packages of pktstat-bpf with
// nfpm, for amd64 and arm64, into dist/:
//
//	go run ./deploy/package
//
// (-man FILE writes only the man page, for man -l FILE.)
//
// Each package holds the static binary (CGO_ENABLED=0) at
// /usr/bin/pktstat-bpf, the systemd unit of deploy/ (disabled: no script
// enables it), the man page and the bash, zsh and fish completions. No
// script sets capabilities on the binary. nfpm runs as a Go module at a
// pinned version (go run ...@version), so nothing else is installed.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/completion"
	"github.com/pktstat-bpf/pktstat-bpf/internal/manpage"
)

// nfpm is the pinned nfpm module that builds the packages.
const nfpm = "github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "package: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "dist", "directory for the packages")
	version := flag.String("version", "", "package version (default: from git: the tag, else 0.0.0~gitDATE.REV)")
	arches := flag.String("arch", "amd64,arm64", "comma-separated GOARCH values")
	formats := flag.String("format", "deb,rpm", "comma-separated nfpm packagers")
	man := flag.String("man", "", "only write the man page (roff) to this file, and exit")
	flag.Parse()
	if *man != "" {
		var page bytes.Buffer
		if err := manpage.Write(&page, manpage.Page{Version: "(devel)", Date: time.Now().UTC().Format("2006-01-02")}, cli.FlagSet()); err != nil {
			return err
		}
		return os.WriteFile(*man, page.Bytes(), 0o644)
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "cmd/pktstat-bpf")); err != nil {
		return fmt.Errorf("run from the repository's root: %w", err)
	}
	if *version == "" {
		if *version, err = gitVersion(); err != nil {
			return err
		}
	}
	work, err := os.MkdirTemp("", "pktstat-bpf-package-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := writeShared(root, work, *version); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, arch := range strings.Split(*arches, ",") {
		bin := filepath.Join(work, arch, "pktstat-bpf")
		build := exec.Command("go", "build", "-trimpath", "-buildvcs=true",
			"-ldflags", "-s -w -X github.com/pktstat-bpf/pktstat-bpf/internal/buildinfo.version="+*version,
			"-o", bin, "./cmd/pktstat-bpf")
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if b, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", arch, err, b)
		}
		cfg := filepath.Join(work, arch, "nfpm.yaml")
		if err := os.WriteFile(cfg, []byte(config(work, bin, arch, *version)), 0o644); err != nil {
			return err
		}
		for _, f := range strings.Split(*formats, ",") {
			cmd := exec.Command("go", "run", nfpm, "package", "--config", cfg, "--packager", f, "--target", *out)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("nfpm %s %s: %w", f, arch, err)
			}
		}
	}
	return nil
}

// gitVersion is the tag at HEAD without its v, else 0.0.0~gitDATE.REV:
// a version that dpkg and rpm both order, and that starts with a digit.
func gitVersion() (string, error) {
	if tag, err := exec.Command("git", "describe", "--tags", "--exact-match").Output(); err == nil {
		return strings.TrimPrefix(strings.TrimSpace(string(tag)), "v"), nil
	}
	out, err := exec.Command("git", "log", "-1", "--format=%cd.%h", "--date=format:%Y%m%d").Output()
	if err != nil {
		return "", fmt.Errorf("version from git (or give -version): %w", err)
	}
	return "0.0.0~git" + strings.TrimSpace(string(out)), nil
}

// writeShared writes the files every package holds but the binary: the
// man page (gzipped, as Debian wants), the completions, the unit with the
// packaged path, and the Debian changelog and copyright.
func writeShared(root, work, version string) error {
	var page bytes.Buffer
	if err := manpage.Write(&page, manpage.Page{Version: version, Date: time.Now().UTC().Format("2006-01-02")}, cli.FlagSet()); err != nil {
		return err
	}
	if err := writeGzip(filepath.Join(work, "pktstat-bpf.8.gz"), page.Bytes()); err != nil {
		return err
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var b bytes.Buffer
		if err := completion.Write(&b, sh, cli.FlagSet()); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, "completion."+sh), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	unit, err := os.ReadFile(filepath.Join(root, "deploy/pktstat-bpf.service"))
	if err != nil {
		return err
	}
	u := strings.ReplaceAll(string(unit), "/usr/local/bin/pktstat-bpf", "/usr/bin/pktstat-bpf")
	u = strings.Replace(u, "# Install: copy the binary to /usr/bin/pktstat-bpf and this file to\n# /etc/systemd/system/, then", "# Installed by the package (disabled); to start it:", 1)
	if err := os.WriteFile(filepath.Join(work, "pktstat-bpf.service"), []byte(u), 0o644); err != nil {
		return err
	}
	changelog := fmt.Sprintf("pktstat-bpf (%s) unstable; urgency=medium\n\n  * Package built from the repository; see its git log.\n\n -- pktstat-bpf maintainers <pktstat-bpf@users.noreply.github.com>  %s\n",
		version, time.Now().UTC().Format(time.RFC1123Z))
	if err := writeGzip(filepath.Join(work, "changelog.gz"), []byte(changelog)); err != nil {
		return err
	}
	copyright := "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: pktstat-bpf\nSource: https://github.com/pktstat-bpf/pktstat-bpf\n\nFiles: *\nCopyright: 2026 the pktstat-bpf authors\nLicense: UNDECLARED\n The repository declares no license yet.\n"
	if err := os.WriteFile(filepath.Join(work, "copyright"), []byte(copyright), 0o644); err != nil {
		return err
	}
	// The binary is static on purpose (CGO_ENABLED=0): only then can it
	// drop every thread's capabilities once attached.
	override := "pktstat-bpf: statically-linked-binary [usr/bin/pktstat-bpf]\n"
	return os.WriteFile(filepath.Join(work, "lintian-overrides"), []byte(override), 0o644)
}

func writeGzip(path string, data []byte) error {
	var b bytes.Buffer
	z, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return err
	}
	z.ModTime = time.Unix(0, 0) // reproducible (and what lintian asks for)
	if _, err := z.Write(data); err != nil {
		return err
	}
	if err := z.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// config is nfpm's configuration for one architecture.
func config(work, bin, arch, version string) string {
	return fmt.Sprintf(`name: pktstat-bpf
arch: %[3]s
platform: linux
version: %[4]s
version_schema: none
section: net
priority: optional
maintainer: pktstat-bpf maintainers <pktstat-bpf@users.noreply.github.com>
description: |
  per-flow traffic statistics counted by eBPF programs
  pktstat-bpf counts packets and bytes per flow with eBPF programs in the
  kernel (TC, XDP, cgroup or per process), and shows them as a report, a
  live table or Prometheus metrics.
vendor: pktstat-bpf
homepage: https://github.com/pktstat-bpf/pktstat-bpf
license: UNDECLARED
contents:
  - src: %[2]s
    dst: /usr/bin/pktstat-bpf
    file_info: {mode: 0755}
  - src: %[1]s/pktstat-bpf.service
    dst: /usr/lib/systemd/system/pktstat-bpf.service
    file_info: {mode: 0644}
  - src: %[1]s/pktstat-bpf.8.gz
    dst: /usr/share/man/man8/pktstat-bpf.8.gz
    file_info: {mode: 0644}
  - src: %[1]s/completion.bash
    dst: /usr/share/bash-completion/completions/pktstat-bpf
    file_info: {mode: 0644}
  - src: %[1]s/completion.zsh
    dst: /usr/share/zsh/vendor-completions/_pktstat-bpf
    file_info: {mode: 0644}
  - src: %[1]s/completion.fish
    dst: /usr/share/fish/vendor_completions.d/pktstat-bpf.fish
    file_info: {mode: 0644}
  - src: %[1]s/copyright
    dst: /usr/share/doc/pktstat-bpf/copyright
    file_info: {mode: 0644}
    packager: deb
  - src: %[1]s/lintian-overrides
    dst: /usr/share/lintian/overrides/pktstat-bpf
    file_info: {mode: 0644}
    packager: deb
  - src: %[1]s/changelog.gz
    dst: /usr/share/doc/pktstat-bpf/changelog.gz
    file_info: {mode: 0644}
    packager: deb
`, work, bin, arch, version)
}
