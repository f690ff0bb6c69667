package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// packageVersion is the version the test's package is built with.
const packageVersion = "0.0.0~e2e1"

// TestE2EPackageDeb builds the .deb and .rpm of deploy/package for this
// machine's architecture, checks that the .rpm holds the same files, checks
// the .deb with lintian (no errors), installs it with
// dpkg -i, runs the installed /usr/bin/pktstat-bpf (--version, and a
// capture on a veth whose counts must equal what the test sent), purges
// it, and checks that none of its files and no unit is left. The package
// is purged even when the test fails. It skips where pktstat-bpf is
// already installed, so as not to replace someone's install on a shared
// machine.
func TestE2EPackageDeb(t *testing.T) {
	testnet.RequireRoot(t)
	for _, tool := range []string{"dpkg", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: not a Debian system", tool)
		}
	}
	if exec.Command("dpkg", "-s", "pktstat-bpf").Run() == nil {
		t.Skip("the pktstat-bpf package is installed on this machine already; the test would replace and then purge it")
	}
	if _, err := os.Stat("/usr/bin/pktstat-bpf"); err == nil {
		t.Skip("/usr/bin/pktstat-bpf exists outside a package; the test would overwrite it")
	}

	out := t.TempDir()
	build := exec.Command("go", "run", "./deploy/package", "-out", out, "-arch", runtime.GOARCH, "-format", "deb,rpm", "-version", packageVersion)
	build.Dir = "../.."
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go run ./deploy/package: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one .deb in %s, got %q", out, debs)
	}
	deb := debs[0]
	files := debFiles(t, deb)
	checkRPM(t, out, files)

	if _, err := exec.LookPath("lintian"); err != nil {
		t.Log("lintian is not installed (Debian package lintian): not checked")
	} else if b, err := exec.Command("lintian", "--fail-on", "error", deb).CombinedOutput(); err != nil {
		t.Errorf("lintian: %v\n%s", err, b)
	}

	// Purge first in the cleanup, whatever happened: nothing of the
	// package stays on the machine.
	t.Cleanup(func() {
		if b, err := exec.Command("dpkg", "--purge", "pktstat-bpf").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge in cleanup: %v\n%s", err, b)
		}
	})
	if b, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, b)
	}

	const bin = "/usr/bin/pktstat-bpf"
	v, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	if !strings.HasPrefix(string(v), "pktstat-bpf "+packageVersion+" (") || !strings.Contains(string(v), "cilium/ebpf v") {
		t.Errorf("%s --version = %q, want the package's version and the cilium/ebpf version", bin, v)
	}
	if caps, err := exec.Command("getcap", bin).Output(); err == nil && len(bytes.TrimSpace(caps)) > 0 {
		t.Errorf("the package set capabilities: %s", caps)
	}
	if wants, _ := filepath.Glob("/etc/systemd/system/*.wants/pktstat-bpf.service"); len(wants) > 0 {
		t.Errorf("the unit is enabled after install: %q", wants)
	}
	unit, err := os.ReadFile("/usr/lib/systemd/system/pktstat-bpf.service")
	if err != nil || !strings.Contains(string(unit), "\nExecStart=/usr/bin/pktstat-bpf ") {
		t.Errorf("installed unit: %v; want ExecStart=/usr/bin/pktstat-bpf", err)
	}

	// A short capture from the installed binary: exact counts.
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	const n = 200
	payload := bytes.Repeat([]byte{0x5a}, 100)
	f := harness.NewUDPFlow("IPv4 B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 41901), netip.AddrPortFrom(p.A.IPv4, 5901))
	tl := harness.StartCapture(t, p.A, bin)
	harness.SendUDPFlow(t, f, payload, n)
	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	row := harness.OneRow(t, rows, "UDP", f.Src.Addr(), f.Dst.Addr(), f.Src.Port(), f.Dst.Port())
	harness.WantCounts(t, f.Name, row, n, n*uint64(harness.EthLen+harness.IPv4Len+harness.UDPLen+len(payload)))

	if b, err := exec.Command("dpkg", "--purge", "pktstat-bpf").CombinedOutput(); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, b)
	}
	if exec.Command("dpkg", "-s", "pktstat-bpf").Run() == nil {
		t.Error("dpkg -s still knows pktstat-bpf after the purge")
	}
	for _, f := range append(files, "/usr/share/doc/pktstat-bpf", "/var/lib/dpkg/info/pktstat-bpf.list") {
		if _, err := os.Lstat(f); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is left after the purge (%v)", f, err)
		}
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if exec.Command("systemctl", "cat", "pktstat-bpf.service").Run() == nil {
			t.Error("systemd still knows pktstat-bpf.service after the purge")
		}
	}
}

// checkRPM checks that the .rpm beside the .deb holds the same files but
// Debian's own (copyright, changelog, lintian override), and no scripts.
func checkRPM(t *testing.T, dir string, debFiles []string) {
	t.Helper()
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Log("rpm is not installed (Debian package rpm): the .rpm is not checked")
		return
	}
	rpms, _ := filepath.Glob(filepath.Join(dir, "*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("want one .rpm in %s, got %q", dir, rpms)
	}
	list, err := exec.Command("rpm", "-qlp", rpms[0]).Output()
	if err != nil {
		t.Fatalf("rpm -qlp: %v", err)
	}
	var want []string
	for _, f := range debFiles {
		if !strings.HasPrefix(f, "/usr/share/doc/") && !strings.HasPrefix(f, "/usr/share/lintian/") {
			want = append(want, f)
		}
	}
	slices.Sort(want)
	got := strings.Fields(string(list))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the .rpm holds %q, want %q", got, want)
	}
	if scripts, err := exec.Command("rpm", "-qp", "--scripts", rpms[0]).Output(); err != nil || len(bytes.TrimSpace(scripts)) > 0 {
		t.Errorf("the .rpm has scripts (%v): %s", err, scripts)
	}
}

// debFiles lists the files (not the directories) the .deb installs.
func debFiles(t *testing.T, deb string) []string {
	t.Helper()
	b, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	tf := exec.Command("tar", "-t")
	tf.Stdin = bytes.NewReader(b)
	list, err := tf.Output()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	s := bufio.NewScanner(bytes.NewReader(list))
	for s.Scan() {
		if name := strings.TrimPrefix(s.Text(), "."); !strings.HasSuffix(name, "/") {
			files = append(files, name)
		}
	}
	if len(files) < 8 {
		t.Fatalf("the .deb holds only %q", files)
	}
	return files
}
