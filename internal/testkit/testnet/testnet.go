// Package testnet builds throwaway test networks: pairs of network
// namespaces joined by a veth, addressed from the benchmarking ranges
// 198.18.0.0/15 and 2001:2::/48. Everything it creates is removed in
// t.Cleanup, pass or fail. Tests that use it need root.
package testnet

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/rlimit"

	"github.com/vishvananda/netns"
)

// RequireRoot skips the test unless it runs as root, saying why.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) to load eBPF programs and create network namespaces; run the tests as root")
	}
	// Before 5.11 the kernel charges eBPF maps to RLIMIT_MEMLOCK; the tool
	// lifts it at start-up, and so must tests that load programs.
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatalf("lift RLIMIT_MEMLOCK for the eBPF maps: %v", err)
	}
}

// End is one side of a Pair.
type End struct {
	NS    string // namespace name; its handle is /run/netns/NS
	Link  string // the veth inside NS
	Index int    // the veth's ifindex inside NS
	MAC   net.HardwareAddr
	IPv4  netip.Addr
	IPv6  netip.Addr
}

// Pair is two namespaces, A and B, joined by a veth pair.
type Pair struct {
	A, B End
}

// NewPair creates two namespaces joined by a veth pair with IPv4 and IPv6
// addresses (no duplicate address detection, so IPv6 works at once).
func NewPair(t testing.TB) *Pair {
	t.Helper()
	RequireRoot(t)
	id := randomID()
	p := &Pair{
		// Every pair has the same addresses; namespaces keep pairs apart.
		A: End{NS: "pktA-" + id, Link: "pa" + id,
			IPv4: netip.MustParseAddr("198.18.0.1"), IPv6: netip.MustParseAddr("2001:2::1")},
		B: End{NS: "pktB-" + id, Link: "pb" + id,
			IPv4: netip.MustParseAddr("198.18.0.2"), IPv6: netip.MustParseAddr("2001:2::2")},
	}
	for _, e := range []End{p.A, p.B} {
		run(t, "ip", "netns", "add", e.NS)
		ns := e.NS
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "link", "add", p.A.Link, "netns", p.A.NS, "type", "veth", "peer", "name", p.B.Link, "netns", p.B.NS)
	for _, e := range []*End{&p.A, &p.B} {
		e.run(t, "ip", "link", "set", "lo", "up")
		e.bringUp(t)
	}
	return p
}

func randomID() string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func (e End) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := e.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("in %s: %s %s: %v: %s", e.NS, name, strings.Join(args, " "), err, out)
	}
}

// Sysctl sets a kernel parameter (name=value) inside the namespace, as
// sysctl -w does; per-namespace parameters affect only it.
func (e End) Sysctl(t testing.TB, setting string) {
	t.Helper()
	e.run(t, "sysctl", "-qw", setting)
}

// NetnsPath is the namespace's handle in the file system.
func (e End) NetnsPath() string { return "/run/netns/" + e.NS }

// Command runs a program inside the namespace through nsenter, which
// (unlike ip netns exec) keeps /sys, bpffs and cgroup2 as they are.
func (e End) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + e.NetnsPath(), "--", name}, args...)...)
}

// Do runs fn on an OS thread that has entered the namespace. Sockets that
// fn opens stay in the namespace after Do returns.
func (e End) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(e.NetnsPath())
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", e.NS, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", e.NS, err)
			return
		}
		ferr := fn()
		// A thread that cannot go back stays locked, so the runtime ends it.
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// SNMP reads the namespace's /proc/net/snmp counters, keyed as
// "Tcp.OutSegs", "Udp.OutDatagrams", "Icmp.OutEchos" and so on.
func (e End) SNMP() (map[string]uint64, error) {
	var raw []byte
	err := e.Do(func() error {
		var err error
		raw, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read snmp counters of %s: %w", e.NS, err)
	}
	return parseSNMP(raw)
}

// parseSNMP reads the header-line/value-line pairs of /proc/net/snmp.
func parseSNMP(raw []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		names := strings.Fields(sc.Text())
		if !sc.Scan() {
			return nil, fmt.Errorf("snmp: header %q has no value line", names[0])
		}
		values := strings.Fields(sc.Text())
		if len(names) != len(values) || len(names) == 0 || names[0] != values[0] {
			return nil, fmt.Errorf("snmp: malformed section %q", names)
		}
		section := strings.TrimSuffix(names[0], ":")
		for i := 1; i < len(names); i++ {
			v, err := strconv.ParseInt(values[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("snmp: %s.%s: %w", section, names[i], err)
			}
			out[section+"."+names[i]] = uint64(v)
		}
	}
	return out, sc.Err()
}

// SlowdownEnv names a factor by which this machine is slower than the one
// the tests' time bounds were set on: the kernel matrix runs the tests in
// an emulated guest, 7 to 20 times slower, and sets it there.
const SlowdownEnv = "PKTSTAT_TEST_SLOWDOWN"

// Patience stretches a bound on how long a test waits for something that
// will happen (a tool's start, its exit) by SlowdownEnv's factor. Bounds
// that a test checks as a result are never stretched.
func Patience(d time.Duration) time.Duration {
	f, err := strconv.ParseFloat(os.Getenv(SlowdownEnv), 64)
	if err != nil || f < 1 {
		return d
	}
	return time.Duration(float64(d) * f)
}
