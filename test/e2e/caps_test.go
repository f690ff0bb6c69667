package e2e

// The binary with exactly the capabilities the README names for each mode,
// as an unprivileged user (capsh from Debian's libcap2-bin), not as root:
// with them it counts exactly, serves metrics and detaches; with one of
// them missing it fails with one line that names the missing capability.

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/privs"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// Capabilities as capsh names them, and their bits.
var capBits = map[string]int{
	"cap_bpf":        unix.CAP_BPF,
	"cap_net_admin":  unix.CAP_NET_ADMIN,
	"cap_perfmon":    unix.CAP_PERFMON,
	"cap_sys_ptrace": unix.CAP_SYS_PTRACE,
	// Lists /proc/PID/fd of another user's process (mode 0500).
	"cap_dac_read_search": unix.CAP_DAC_READ_SEARCH,
	"cap_sys_admin":       unix.CAP_SYS_ADMIN,
}

// modeCaps is what the README says each mode needs.
var modeCaps = []string{"cap_bpf", "cap_net_admin", "cap_perfmon"}

// capshArgs makes capsh run bin with args as the user nobody, holding
// exactly caps (permitted, effective and ambient, so that they survive the
// exec) and nothing else.
func capshArgs(t *testing.T, caps []string, bin string, args ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("capsh"); err != nil {
		t.Fatalf("the capabilities tests need capsh: apt-get install libcap2-bin (.ci/run does): %v", err)
	}
	list := strings.Join(caps, ",")
	return append([]string{
		"--caps=" + list + "+eip cap_setpcap,cap_setuid,cap_setgid+ep",
		"--keep=1", "--user=nobody", "--addamb=" + list,
		"--shell=" + bin, "--",
	}, args...)
}

// wantCreds fails unless the run tl, started by capsh as nobody with
// exactly caps, runs as nobody and, once attached, holds only what the
// rest of the run needs of them (docs/usage.md#after-attaching):
// CAP_NET_ADMIN in legacy tc mode, CAP_BPF before Linux 6.5; with no
// inheritable or ambient capability left and no_new_privs set.
func wantCreds(t *testing.T, tl *harness.Tool, caps []string) {
	t.Helper()
	release, err := kernel.Release()
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for _, c := range caps {
		if (c == "cap_bpf" && kernel.Before(release, 6, 5)) || (c == "cap_net_admin" && strings.Contains(tl.Stderr(), "mode=tc/legacy")) {
			want |= 1 << capBits[c]
		}
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(tl.PID()) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
			uid = f[1]
		}
	}
	st := procStatus(t, tl.PID())
	if uid != "65534" || st["CapEff"] != want || st["CapPrm"] != want || st["CapInh"] != 0 || st["CapAmb"] != 0 || st["NoNewPrivs"] != 1 {
		t.Fatalf("pktstat-bpf runs as uid %s with CapEff %#x, CapPrm %#x, CapInh %#x, CapAmb %#x, NoNewPrivs %d; want uid 65534 (nobody), %#x of %v kept after attaching, nothing inheritable or ambient, and NoNewPrivs 1",
			uid, st["CapEff"], st["CapPrm"], st["CapInh"], st["CapAmb"], st["NoNewPrivs"], want, caps)
	}
	t.Logf("started as uid %s with exactly %v; after attaching it holds %#x", uid, caps, want)
}

// TestE2ECapsTCDaemon runs the metrics daemon in TC mode as nobody with
// CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON only: its counters must equal
// the traffic sent, and SIGINT ends it with exit code 0 and nothing left
// attached.
func TestE2ECapsTCDaemon(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	const addr = "127.0.0.1:9864"
	tl := harness.StartTool(t, p.A, "capsh", capshArgs(t, modeCaps, bin, "-i", p.A.Link, "--listen", addr)...)
	wantCreds(t, tl, modeCaps)

	const n, size = 250, 64
	payload := make([]byte, size)
	harness.SendUDPFlow(t, harness.NewUDPFlow("IPv4 B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 42001), netip.AddrPortFrom(p.A.IPv4, 6001)), payload, n)
	harness.SendUDPFlow(t, harness.NewUDPFlow("IPv6 A->B", p.A, p.B, netip.AddrPortFrom(p.A.IPv6, 42002), netip.AddrPortFrom(p.B.IPv6, 6002)), payload, n)

	fams := harness.ScrapeText(t, p.A, addr)
	for _, w := range []struct {
		dir            string
		packets, bytes float64
	}{
		{"in", n, n * (harness.EthLen + harness.IPv4Len + harness.UDPLen + size)},
		{"out", n, n * (harness.EthLen + harness.IPv6Len + harness.UDPLen + size)},
	} {
		l := map[string]string{"direction": w.dir, "protocol": "UDP", "iface": p.A.Link}
		pk, ok1 := harness.FamilyValue(fams, "pktstat_packets_total", l)
		by, ok2 := harness.FamilyValue(fams, "pktstat_bytes_total", l)
		if !ok1 || !ok2 || pk != w.packets || by != w.bytes {
			t.Errorf("UDP %s: scrape has %v packets / %v bytes (found %v %v), sent %v / %v", w.dir, pk, by, ok1, ok2, w.packets, w.bytes)
		} else {
			t.Logf("UDP %s: %v packets / %v bytes, equal to the traffic sent", w.dir, pk, by)
		}
	}
	// Without CAP_SYS_ADMIN the tool cannot turn on the kernel's run-time
	// statistics, so they are on only if the host turned them on; the
	// gauge says which, and run counts are exported only when they are.
	raw, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	if err != nil {
		t.Fatal(err)
	}
	hostOn := strings.TrimSpace(string(raw)) != "0"
	on, found := harness.FamilyValue(fams, "pktstat_bpf_stats_enabled", nil)
	_, runs := fams["pktstat_bpf_program_runs_total"]
	if !found || (on == 1) != hostOn || runs != hostOn {
		t.Errorf("kernel.bpf_stats_enabled is %v: scrape has pktstat_bpf_stats_enabled %v (found %v) and run counts %v, want %v and %v",
			hostOn, on, found, runs, map[bool]int{false: 0, true: 1}[hostOn], hostOn)
	}

	harness.StopTool(t, tl, syscall.SIGINT)
	if left := harness.OurTCX(t, p.A); len(left) != 0 {
		t.Errorf("still attached after exit: %v", left)
	}
}

// TestE2ECapsXDP counts ingress with XDP as nobody with the same three
// capabilities.
func TestE2ECapsXDP(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	tl := harness.StartTool(t, p.A, "capsh", capshArgs(t, modeCaps, bin, "-i", p.A.Link, "-x", "-t", "0", "-j")...)
	wantCreds(t, tl, modeCaps)
	const n, size = 100, 64
	f := harness.NewUDPFlow("IPv4 B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 42101), netip.AddrPortFrom(p.A.IPv4, 6101))
	harness.SendUDPFlow(t, f, make([]byte, size), n)
	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	row := harness.OneRow(t, rows, "UDP", f.Src.Addr(), f.Dst.Addr(), f.Src.Port(), f.Dst.Port())
	harness.WantCounts(t, "XDP as nobody", row, n, n*(harness.EthLen+harness.IPv4Len+harness.UDPLen+size))
}

// TestE2ECapsCgroup runs cgroup mode as nobody. With the three
// capabilities it counts a process's traffic and names the process for
// sockets created while it runs; a socket that existed before it started
// belongs to a process of another user (root), whose file descriptors
// only CAP_DAC_READ_SEARCH (to list /proc/PID/fd) and CAP_SYS_PTRACE (to
// borrow them with pidfd_getfd) give access to: without them the row has
// no PID and the tool warns, with them the row has the owner.
func TestE2ECapsCgroup(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	parent, child := harness.MakeCgroupTree(t)
	h := harness.StartCgroupHelper(t, p.A, child)

	for i, c := range []struct {
		caps      []string
		wantOwner bool
	}{
		{modeCaps, false},
		{append(append([]string(nil), modeCaps...), "cap_sys_ptrace", "cap_dac_read_search"), true},
	} {
		t.Run(strings.Join(c.caps, ","), func(t *testing.T) {
			const n, size = 20, 100
			dst := netip.AddrPortFrom(p.B.IPv4, uint16(6200+i))
			rx, err := p.B.ListenUDP(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			// The socket exists before the tool starts.
			id := h.Call(t, "udp udp4 %s %s", netip.AddrPortFrom(p.A.IPv4, uint16(42200+i)), dst)[0]
			defer h.Call(t, "close %s", id)
			tl := harness.StartTool(t, p.A, "capsh", capshArgs(t, c.caps, bin, "-c", parent, "-t", "0", "-j")...)
			wantCreds(t, tl, c.caps)
			h.Call(t, "write %s %d %d", id, n, size)
			if got, err := testnet.ReadUDP(rx, n, size, 5*time.Second); err != nil {
				t.Fatalf("%d of %d datagrams arrived: %v", got, n, err)
			}
			rows := harness.StopCapture(t, tl, syscall.SIGINT)
			var found []harness.Row
			for _, r := range rows {
				if r.Proto == "UDP" && r.DstPort == dst.Port() {
					found = append(found, r)
				}
			}
			if len(found) != 1 || found[0].Packets != n || found[0].Bytes != n*(harness.IPv4Len+harness.UDPLen+size) {
				t.Fatalf("rows for the datagrams: %+v; want one of %d packets, %d bytes", found, n, n*(harness.IPv4Len+harness.UDPLen+size))
			}
			warned := strings.Contains(tl.Stderr(), "CAP_SYS_PTRACE")
			if c.wantOwner {
				if found[0].PID != uint32(h.PID) || found[0].Comm != harness.CgroupHelperComm || warned {
					t.Errorf("row %+v (warned: %v), want pid %d comm %s and no warning\nstderr:\n%s", found[0], warned, h.PID, harness.CgroupHelperComm, tl.Stderr())
				}
			} else if found[0].PID != 0 || !warned {
				t.Errorf("row %+v (warned: %v), want no pid and a warning that names CAP_SYS_PTRACE\nstderr:\n%s", found[0], warned, tl.Stderr())
			}
			t.Logf("%d packets, %d bytes, pid %d, comm %q", found[0].Packets, found[0].Bytes, found[0].PID, found[0].Comm)
		})
	}
}

// TestE2ECapsProcess runs process mode as nobody, with the three
// capabilities and then with CAP_DAC_READ_SEARCH too. Either way a
// helper's datagrams are counted exactly, under its PID, name and cgroup.
// Without CAP_DAC_READ_SEARCH, open_by_handle_at is refused, so the tool
// names cgroups by walking the tree, and says so; with it, it does not.
func TestE2ECapsProcess(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	dirs := harness.MakeProcessCgroups(t, "caps")
	h := harness.StartProcessHelper(t, p.A, dirs["caps"], "pktproc-caps")
	for i, caps := range [][]string{modeCaps, append(slices.Clone(modeCaps), "cap_dac_read_search")} {
		t.Run(strings.Join(caps, ","), func(t *testing.T) {
			const n, size = 12, 300
			dst := netip.AddrPortFrom(p.B.IPv4, uint16(6300+i))
			rx, err := p.B.ListenUDP(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			tl := harness.StartTool(t, p.A, "capsh", capshArgs(t, caps, bin, "-k", "-t", "0", "-j")...)
			wantCreds(t, tl, caps)
			u := h.Call(t, "udp udp4 %s:0 %s", p.A.IPv4, dst)
			defer h.Call(t, "close %s", u[0])
			h.Call(t, "write %s %d %d", u[0], n, size)
			if got, err := testnet.ReadUDP(rx, n, size, 5*time.Second); err != nil {
				t.Fatalf("%d of %d datagrams arrived: %v", got, n, err)
			}
			var found []harness.Row
			for _, r := range harness.StopCapture(t, tl, syscall.SIGINT) {
				if r.Proto == "UDP" && r.Dir == "out" && r.DstPort == dst.Port() {
					found = append(found, r)
				}
			}
			// Process mode counts UDP payload bytes.
			if len(found) != 1 || found[0].Packets != n || found[0].Bytes != n*size ||
				found[0].PID != uint32(h.PID) || found[0].Comm != h.Name || found[0].Cgroup != h.Cgroup {
				t.Fatalf("rows for the datagrams: %+v; want one of %d packets, %d bytes, pid %d, comm %s, cgroup %s",
					found, n, n*size, h.PID, h.Name, h.Cgroup)
			}
			walked := strings.Contains(tl.Stderr(), "named by walking the cgroup tree")
			if dac := slices.Contains(caps, "cap_dac_read_search"); walked == dac {
				t.Errorf("with cap_dac_read_search %v, the tool warned of walking the tree: %v\nstderr:\n%s", dac, walked, tl.Stderr())
			}
			t.Logf("%d packets, %d bytes, pid %d, comm %q, cgroup %q; walked the cgroup tree: %v",
				found[0].Packets, found[0].Bytes, found[0].PID, found[0].Comm, found[0].Cgroup, walked)
		})
	}
}

// TestE2ECapsOneLess leaves out each capability of TC mode in turn: the
// run must fail with exit code 1, one line that names the missing
// capability, and nothing attached.
func TestE2ECapsOneLess(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	for _, missing := range modeCaps {
		t.Run("without "+missing, func(t *testing.T) {
			var caps []string
			for _, c := range modeCaps {
				if c != missing {
					caps = append(caps, c)
				}
			}
			cmd := p.A.Command("capsh", capshArgs(t, caps, bin, "-i", p.A.Link, "-t", "1s", "-j")...)
			r := harness.RunBinary(t, cmd, nil)
			r.Want(t, 1, "missing "+strings.ToUpper(missing), "tc mode needs CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON")
			// The cause is named: no guess about a MEMLOCK limit, which
			// does not apply, and no second piece of advice.
			if strings.Contains(r.Stderr, "MEMLOCK") || strings.Contains(r.Stderr, "grant CAP_") {
				t.Errorf("the error guesses or repeats itself: %q", r.Stderr)
			}
			if left := harness.OurTCX(t, p.A); len(left) != 0 {
				t.Errorf("attached without %s: %v", missing, left)
			}
		})
	}
}

// TestE2ECapsBPFStats checks the one use of CAP_SYS_ADMIN: with it and
// --bpf-stats, the daemon turns on the kernel's run-time statistics and
// exports them, and the ingress program has run at least once per received
// datagram.
func TestE2ECapsBPFStats(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	caps := append(append([]string(nil), modeCaps...), "cap_sys_admin")
	const addr = "127.0.0.1:9864"
	tl := harness.StartTool(t, p.A, "capsh", capshArgs(t, caps, bin, "-i", p.A.Link, "--listen", addr, "--bpf-stats")...)
	wantCreds(t, tl, caps)
	const n = 50
	harness.SendUDPFlow(t, harness.NewUDPFlow("IPv4 B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 42301), netip.AddrPortFrom(p.A.IPv4, 6301)), make([]byte, 32), n)
	fams := harness.ScrapeText(t, p.A, addr)
	on, _ := harness.FamilyValue(fams, "pktstat_bpf_stats_enabled", nil)
	runs, ok := harness.FamilyValue(fams, "pktstat_bpf_program_runs_total", map[string]string{"program": "pktstat_ingress"})
	secs, _ := harness.FamilyValue(fams, "pktstat_bpf_program_run_seconds_total", map[string]string{"program": "pktstat_ingress"})
	if on != 1 || !ok || runs < n || secs <= 0 {
		t.Errorf("stats enabled %v, ingress runs %v (found %v), run time %vs; want enabled, at least %d runs, some time", on, runs, ok, secs, n)
	} else {
		t.Logf("ingress program: %v runs, %.0f ns per run", runs, secs/runs*1e9)
	}
	harness.StopTool(t, tl, syscall.SIGTERM)
}

// TestE2ECapsBPFStatsRefused: --bpf-stats without CAP_SYS_ADMIN fails
// with one line naming the capability, and leaves nothing attached.
func TestE2ECapsBPFStatsRefused(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	cmd := p.A.Command("capsh", capshArgs(t, modeCaps, bin, "-i", p.A.Link, "--listen", "127.0.0.1:9865", "--bpf-stats")...)
	r := harness.RunBinary(t, cmd, nil)
	r.Want(t, 1, "--bpf-stats", "CAP_SYS_ADMIN")
	if left := harness.OurTCX(t, p.A); len(left) != 0 {
		t.Errorf("attached after the refusal: %v", left)
	}
}

// TestDeployCaps checks that the systemd unit and the DaemonSet grant
// exactly the capabilities that the tests above run TC mode with, that
// the DaemonSet is scraped where the tool listens, behind the web config
// of a mounted Secret (its address is not loopback), and under the
// runtime's default seccomp profile.
func TestDeployCaps(t *testing.T) {
	var want []string
	for _, c := range modeCaps {
		want = append(want, strings.ToUpper(c))
	}
	unit, err := os.ReadFile("../../deploy/pktstat-bpf.service")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(unit), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok || (key != "AmbientCapabilities" && key != "CapabilityBoundingSet") {
			continue
		}
		seen[key] = true
		if got := strings.Fields(value); !slices.Equal(got, want) {
			t.Errorf("unit: %s=%v, want %v", key, got, want)
		}
	}
	if !seen["AmbientCapabilities"] || !seen["CapabilityBoundingSet"] {
		t.Errorf("unit sets %v, want AmbientCapabilities and CapabilityBoundingSet", seen)
	}

	raw, err := os.ReadFile("../../deploy/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Kind string
		Spec struct {
			Template struct {
				Metadata struct{ Annotations map[string]string }
				Spec     struct {
					HostNetwork bool `yaml:"hostNetwork"`
					Containers  []struct {
						Args            []string
						SecurityContext struct {
							Privileged     bool
							Capabilities   struct{ Add, Drop []string }
							SeccompProfile struct{ Type string } `yaml:"seccompProfile"`
						} `yaml:"securityContext"`
						VolumeMounts []struct {
							Name      string
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					}
					Volumes []struct {
						Name   string
						Secret struct {
							SecretName string `yaml:"secretName"`
						}
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal(raw, &ds); err != nil {
		t.Fatal(err)
	}
	pod := ds.Spec.Template
	if ds.Kind != "DaemonSet" || !pod.Spec.HostNetwork || len(pod.Spec.Containers) != 1 {
		t.Fatalf("daemonset.yaml: kind %q, hostNetwork %v, %d containers", ds.Kind, pod.Spec.HostNetwork, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	addCaps := slices.Clone(want)
	for i := range addCaps {
		addCaps[i] = strings.TrimPrefix(addCaps[i], "CAP_")
	}
	if sc := c.SecurityContext; sc.Privileged || !slices.Equal(sc.Capabilities.Add, addCaps) || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("daemonset.yaml: securityContext %+v, want capabilities %v added, ALL dropped, not privileged", sc, addCaps)
	}
	port := pod.Metadata.Annotations["prometheus.io/port"]
	if pod.Metadata.Annotations["prometheus.io/scrape"] != "true" || !slices.ContainsFunc(c.Args, func(a string) bool {
		return strings.HasPrefix(a, "--listen=") && strings.HasSuffix(a, ":"+port)
	}) {
		t.Errorf("daemonset.yaml: annotations %v, args %v: the scrape port must be the --listen port", pod.Metadata.Annotations, c.Args)
	}
	if c.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("daemonset.yaml: seccompProfile %+v, want RuntimeDefault", c.SecurityContext.SeccompProfile)
	}
	const webConfig = "--web.config.file=/etc/pktstat-bpf/web.yml"
	if !slices.Contains(c.Args, webConfig) || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/pktstat-bpf" ||
		len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].Name != c.VolumeMounts[0].Name || pod.Spec.Volumes[0].Secret.SecretName == "" {
		t.Errorf("daemonset.yaml: args %v, mounts %+v, volumes %+v; want %s from a mounted Secret", c.Args, c.VolumeMounts, pod.Spec.Volumes, webConfig)
	}
}

// TestDeployUnitHardening: the systemd unit filters system calls to an
// ordinary service's and bpf(), hides the devices and other processes,
// creates files for its user alone, bounds its memory, and systemd's own
// audit (systemd-analyze security --offline) scores its exposure at 4.0
// or lower (docs/usage.md#capabilities gives the score).
func TestDeployUnitHardening(t *testing.T) {
	const unit = "../../deploy/pktstat-bpf.service"
	raw, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"SystemCallFilter=@system-service bpf", "PrivateDevices=yes", "ProtectProc=invisible", "UMask=0077", "MemoryMax="} {
		if !strings.Contains(string(raw), "\n"+line) {
			t.Errorf("the unit has no %s line", line)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatalf("systemd-analyze is needed (Debian's systemd package): %v", err)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || score > 4.0 {
		t.Errorf("exposure level %s, want 4.0 or lower", m[1])
	}
	t.Logf("systemd-analyze security --offline=yes: exposure level %.1f", score)
}

// procStatus reads the capability sets and no_new_privs of process pid.
func procStatus(t *testing.T, pid int) map[string]uint64 {
	t.Helper()
	st, err := privs.Status(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// procIDs returns process pid's Uid and Gid lines of /proc/PID/status,
// as "real effective saved fs/real effective saved fs".
func procIDs(t *testing.T, pid int) string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "Uid" || k == "Gid") {
			ids[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return ids["Uid"] + "/" + ids["Gid"]
}

// TestE2EPrivilegeDrop: once attached, a run started as root keeps only
// what the rest of it needs, as /proc/PID/status shows: nothing in TCX
// mode, CAP_NET_ADMIN in legacy mode (to take its filters off), and
// CAP_BPF on kernels before 6.5 (where every bpf() command needs it);
// no ambient capabilities, a bounding set as small, and no_new_privs; and
// it runs as nobody. The run still counts exactly, and detaches: nothing is left.
func TestE2EPrivilegeDrop(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	release, err := kernel.Release()
	if err != nil {
		t.Fatal(err)
	}
	const capNetAdmin, capBPF = 12, 39
	// Started as root, the run becomes nobody where this system has that
	// user, in all four of each id (real, effective, saved, file system).
	wantIDs, who := "0 0 0 0/0 0 0 0", "no user nobody here: the run stays root"
	if u, err := user.Lookup("nobody"); err == nil {
		wantIDs, who = strings.Repeat(u.Uid+" ", 3)+u.Uid+"/"+strings.Repeat(u.Gid+" ", 3)+u.Gid, "nobody"
	}
	for _, mode := range []string{"tcx", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "tcx" {
				requireTCX(t, p.A)
			}
			var want uint64
			if mode == "legacy" {
				want |= 1 << capNetAdmin
			}
			if kernel.Before(release, 6, 5) {
				want |= 1 << capBPF
			}
			tl := harness.StartCapture(t, p.A, bin, "--tc-attach", mode)
			st := procStatus(t, tl.PID())
			if got := procIDs(t, tl.PID()); got != wantIDs {
				t.Errorf("while capturing: Uid and Gid %q, want %q (%s)", got, wantIDs, who)
			}
			if st["CapEff"] != want || st["CapPrm"] != want || st["CapInh"] != 0 || st["CapAmb"] != 0 || st["CapBnd"] != want || st["NoNewPrivs"] != 1 {
				t.Errorf("while capturing: CapEff %#x, CapPrm %#x, CapInh %#x, CapAmb %#x, CapBnd %#x, NoNewPrivs %d; want %#x in every set but the ambient and inheritable ones, and NoNewPrivs 1",
					st["CapEff"], st["CapPrm"], st["CapInh"], st["CapAmb"], st["CapBnd"], st["NoNewPrivs"], want)
			}
			f := harness.NewUDPFlow("UDP B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 41600), netip.AddrPortFrom(p.A.IPv4, 5300))
			const n = 5
			payload := bytes.Repeat([]byte{4}, 90)
			harness.SendUDPFlow(t, f, payload, n)
			rows := harness.StopCapture(t, tl, syscall.SIGTERM)
			harness.WantCounts(t, f.Name, harness.OneRow(t, rows, "UDP", f.Src.Addr(), f.Dst.Addr(), f.Src.Port(), f.Dst.Port()),
				n, n*uint64(harness.EthLen+harness.IPv4Len+harness.UDPLen+len(payload)))
			if mode == "tcx" {
				if left := harness.OurTCX(t, p.A); len(left) != 0 {
					t.Errorf("still attached after the run: %v", left)
				}
			} else if s := legacyState(t, p.A); s.clsact {
				t.Errorf("still attached after the run: %v", s)
			}
			t.Logf("%s on %s: capabilities %#x while capturing, the report exact, nothing left", mode, release, st["CapEff"])
		})
	}
}
