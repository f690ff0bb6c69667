package e2e

// End-to-end checks of what the tool leaves on the interface: nothing of
// its own after any ending it can clean up after, and everything of
// others, which keep seeing every packet while it runs.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// tcState is the legacy tc set-up of an interface.
type tcState struct {
	clsact  bool
	ingress []*netlink.BpfFilter
	egress  []*netlink.BpfFilter
	other   int // filters that are not cls_bpf
}

func (s tcState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clsact=%v", s.clsact)
	for _, d := range []struct {
		name string
		fs   []*netlink.BpfFilter
	}{{"ingress", s.ingress}, {"egress", s.egress}} {
		for _, f := range d.fs {
			fmt.Fprintf(&b, " %s:%q(prio %d, prog %d)", d.name, f.Name, f.Priority, f.Id)
		}
	}
	if s.other > 0 {
		fmt.Fprintf(&b, " +%d other filters", s.other)
	}
	return b.String()
}

func legacyState(t *testing.T, e testnet.End) tcState {
	t.Helper()
	var s tcState
	err := e.Do(func() error {
		l, err := netlink.LinkByName(e.Link)
		if err != nil {
			return err
		}
		qs, err := netlink.QdiscList(l)
		if err != nil {
			return err
		}
		for _, q := range qs {
			s.clsact = s.clsact || q.Type() == "clsact"
		}
		if !s.clsact {
			return nil
		}
		for _, d := range []struct {
			parent uint32
			dst    *[]*netlink.BpfFilter
		}{{netlink.HANDLE_MIN_INGRESS, &s.ingress}, {netlink.HANDLE_MIN_EGRESS, &s.egress}} {
			fs, err := netlink.FilterList(l, d.parent)
			if err != nil {
				return err
			}
			for _, f := range fs {
				if bf, ok := f.(*netlink.BpfFilter); ok {
					*d.dst = append(*d.dst, bf)
				} else {
					s.other++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read tc set-up of %s: %v", e.Link, err)
	}
	return s
}

// runFilterRE is the name of a run's filters: its run ID, and the mark of
// the run that owns the clsact qdisc.
var runFilterRE = regexp.MustCompile(`^pktstat-bpf:[0-9a-f]{16}(:clsact)?$`)

// runFilter returns the name of the one filter of ours on e's ingress,
// and checks that it is a run's name (runFilterRE).
func runFilter(t *testing.T, e testnet.End) string {
	t.Helper()
	var names []string
	for _, f := range legacyState(t, e).ingress {
		if strings.HasPrefix(f.Name, "pktstat-bpf:") {
			names = append(names, f.Name)
		}
	}
	if len(names) != 1 || !runFilterRE.MatchString(names[0]) {
		t.Fatalf("filters of ours on %s ingress: %q, want one named pktstat-bpf:<run ID>[:clsact]", e.Link, names)
	}
	return names[0]
}

// filterNamed reports whether fs holds exactly one filter named name.
func filterNamed(fs []*netlink.BpfFilter, name string) bool {
	n := 0
	for _, f := range fs {
		if f.Name == name {
			n++
		}
	}
	return n == 1
}

// captureArgs are the extra arguments for a run in mode ended by how.
func captureArgs(mode, how string) []string {
	args := []string{"--tc-attach", mode}
	if how == "timeout" {
		args = append(args, "-t", "2s")
	}
	return args
}

// requireTCX skips the test, with the loader's reason, on a kernel without
// TCX (before 6.6): it attaches an empty program to e's veth and takes it
// off again.
func requireTCX(t *testing.T, e testnet.End) {
	t.Helper()
	prog := bpftest.EmptyProgram(t, ebpf.SchedCLS, -1)
	err := e.Do(func() error {
		l, err := link.AttachTCX(link.TCXOptions{Interface: e.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return err
		}
		return l.Close()
	})
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("skipped: this kernel has no TCX: %v", err)
	}
	if err != nil {
		t.Fatalf("probe TCX on %s: %v", e.Link, err)
	}
}

// endings are the ways a run ends that the tests try: by itself, by the
// signals that end it normally (a closed terminal sends SIGHUP), and
// killed.
var endings = []string{"timeout", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGKILL"}

// TestE2ENothingLeftTCX: TCX links go with the process, however it ends.
func TestE2ENothingLeftTCX(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	requireTCX(t, p.A)
	for _, how := range endings {
		t.Run(how, func(t *testing.T) {
			tl := harness.StartCapture(t, p.A, bin, captureArgs("tcx", how)...)
			if !strings.Contains(tl.Stderr(), "mode=tc/tcx") {
				t.Fatalf("not attached through TCX:\n%s", tl.Stderr())
			}
			if got := harness.OurTCX(t, p.A); len(got) != 2 {
				t.Fatalf("while running, our TCX programs are %v, want ingress and egress", got)
			}
			if code := harness.EndCapture(t, tl, how); code != harness.WantExit(how) {
				t.Fatalf("exit code %d, want %d\nstderr:\n%s", code, harness.WantExit(how), tl.Stderr())
			}
			// The links are released with the process's last file
			// descriptors; poll briefly in case that lags the exit.
			var left []string
			begin := time.Now()
			for deadline := begin.Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if left = harness.OurTCX(t, p.A); len(left) == 0 || time.Now().After(deadline) {
					break
				}
			}
			if len(left) != 0 {
				t.Fatalf("after %s, still attached: %v", how, left)
			}
			t.Logf("after %s: no TCX program of ours on %s (checked %v after exit)", how, p.A.Link, time.Since(begin).Round(time.Millisecond))
		})
	}
}

// TestE2ENothingLeftLegacy: a normal end, SIGTERM, SIGHUP or SIGQUIT
// removes our filters and the clsact qdisc the run created. SIGKILL leaves
// the filters (they belong to the interface, not the process), and the
// next run removes them.
func TestE2ENothingLeftLegacy(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	for _, how := range endings {
		t.Run(how, func(t *testing.T) {
			if s := legacyState(t, p.A); s.clsact {
				t.Fatalf("before the run: %v, want no clsact qdisc", s)
			}
			tl := harness.StartCapture(t, p.A, bin, captureArgs("legacy", how)...)
			if !strings.Contains(tl.Stderr(), "mode=tc/legacy") {
				t.Fatalf("not attached through legacy tc:\n%s", tl.Stderr())
			}
			// The run created the clsact qdisc: its filters' names say so.
			name := runFilter(t, p.A)
			if !strings.HasSuffix(name, ":clsact") {
				t.Fatalf("filter %q, want the qdisc owner's mark", name)
			}
			s := legacyState(t, p.A)
			if !s.clsact || len(s.ingress) != 1 || len(s.egress) != 1 || !filterNamed(s.ingress, name) || !filterNamed(s.egress, name) {
				t.Fatalf("while running: %v; want clsact and one filter %q each way", s, name)
			}
			if code := harness.EndCapture(t, tl, how); code != harness.WantExit(how) {
				t.Fatalf("exit code %d, want %d\nstderr:\n%s", code, harness.WantExit(how), tl.Stderr())
			}
			s = legacyState(t, p.A)
			if how != "SIGKILL" {
				if s.clsact {
					t.Fatalf("after %s: %v; want nothing, not even the qdisc", how, s)
				}
				t.Logf("after %s: no filter and no clsact qdisc left", how)
				return
			}
			// Filters outlive the killed process...
			if !s.clsact || len(s.ingress) != 1 || len(s.egress) != 1 || !filterNamed(s.ingress, name) || !filterNamed(s.egress, name) {
				t.Fatalf("after SIGKILL: %v; want the killed run's filter %q still there each way", s, name)
			}
			t.Logf("after SIGKILL, left as expected: %v", s)
			// ...until the next run sweeps them up at its start.
			next := harness.StartCapture(t, p.A, bin, "--tc-attach", "legacy")
			swept := strings.Count(next.Stderr(), "removed a tc filter left by an earlier run")
			if swept != 2 || !strings.Contains(next.Stderr(), name) {
				t.Fatalf("the next run logged %d removals of %q, want 2:\n%s", swept, name, next.Stderr())
			}
			// The next run owns the qdisc now, and its names say so too.
			nextName := runFilter(t, p.A)
			if nextName == name || !strings.HasSuffix(nextName, ":clsact") {
				t.Fatalf("the next run's filter %q, want a run ID of its own and the qdisc owner's mark", nextName)
			}
			if s := legacyState(t, p.A); len(s.ingress) != 1 || len(s.egress) != 1 || !filterNamed(s.ingress, nextName) || !filterNamed(s.egress, nextName) {
				t.Fatalf("during the next run: %v; want only its own filters %q", s, nextName)
			}
			harness.StopCapture(t, next, syscall.SIGINT)
			// The killed run's clsact qdisc goes too: the next run took it
			// over when it swept the filters out of it.
			if s := legacyState(t, p.A); s.clsact {
				t.Fatalf("after the next run: %v; want nothing, not even the qdisc", s)
			}
			t.Logf("the next run removed both leftovers at its start, and left no filter and no qdisc at its exit")
		})
	}
}

// addClsact adds a clsact qdisc to e's veth, as another tool would.
func addClsact(t *testing.T, e testnet.End) {
	t.Helper()
	if err := e.Do(func() error {
		return netlink.QdiscAdd(&netlink.GenericQdisc{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: e.Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
			QdiscType:  "clsact",
		})
	}); err != nil {
		t.Fatalf("add a clsact qdisc to %s: %v", e.Link, err)
	}
}

// TestE2ELegacyKeepsForeignQdisc: a clsact qdisc that was there before
// the tool is never removed, not even by the run that sweeps up after a
// killed one. The killed run's filters say that it did not own the qdisc.
func TestE2ELegacyKeepsForeignQdisc(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	addClsact(t, p.A)
	tl := harness.StartCapture(t, p.A, bin, "--tc-attach", "legacy")
	name := runFilter(t, p.A)
	if s := legacyState(t, p.A); strings.HasSuffix(name, ":clsact") || !filterNamed(s.ingress, name) || !filterNamed(s.egress, name) {
		t.Fatalf("while running: %v; want one filter %q each way, without the qdisc owner's mark", s, name)
	}
	if code := harness.EndCapture(t, tl, "SIGKILL"); code != harness.WantExit("SIGKILL") {
		t.Fatalf("exit code %d after SIGKILL\nstderr:\n%s", code, tl.Stderr())
	}
	next := harness.StartCapture(t, p.A, bin, "--tc-attach", "legacy")
	if n := strings.Count(next.Stderr(), "removed a tc filter left by an earlier run"); n != 2 {
		t.Fatalf("the next run logged %d removals, want 2:\n%s", n, next.Stderr())
	}
	harness.StopCapture(t, next, syscall.SIGINT)
	s := legacyState(t, p.A)
	if !s.clsact || len(s.ingress) != 0 || len(s.egress) != 0 {
		t.Fatalf("after the next run: %v; want the qdisc that was there before, and no filter", s)
	}
	t.Logf("after a killed run and the run that swept up: %v, the qdisc that was there before stays", s)
}

// TestE2ECoexist runs the tool next to another tool's program on A's
// ingress, in both attach modes. Ours runs first; the other one must
// still see every packet during the run, and must still be attached,
// untouched, after it.
func TestE2ECoexist(t *testing.T) {
	bin := harness.Binary(t)
	const n = 200
	payload := bytes.Repeat([]byte{7}, 333)
	frameLen := harness.EthLen + harness.IPv4Len + harness.UDPLen + len(payload)

	// sendAndCount sends n datagrams B->A and returns the counter's rise.
	sendAndCount := func(t *testing.T, p *testnet.Pair, c *harness.CounterProg, sport uint16) uint64 {
		t.Helper()
		before := c.Count(t, 0)
		harness.SendUDPFlow(t, harness.NewUDPFlow("B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, sport), netip.AddrPortFrom(p.A.IPv4, 5400)), payload, n)
		return c.Count(t, 0) - before
	}
	checkRun := func(t *testing.T, p *testnet.Pair, rows []harness.Row, seen uint64) {
		t.Helper()
		row := harness.OneRow(t, rows, "UDP", p.B.IPv4, p.A.IPv4, 41400, 5400)
		harness.WantCounts(t, "our row", row, n, uint64(n*frameLen))
		if seen != n {
			t.Fatalf("the other program saw %d of the %d datagrams while we ran in front of it", seen, n)
		}
		t.Logf("the other program saw %d of %d datagrams during the run", seen, n)
	}

	t.Run("legacy", func(t *testing.T) {
		p := testnet.NewPair(t)
		p.PinNeighbors(t)
		foreign := harness.NewCounterProg(t, "foreign", frameLen, 0)
		addClsact(t, p.A)
		err := p.A.Do(func() error {
			return netlink.FilterAdd(&netlink.BpfFilter{
				FilterAttrs: netlink.FilterAttrs{LinkIndex: p.A.Index, Parent: netlink.HANDLE_MIN_INGRESS,
					Priority: 100, Protocol: unix.ETH_P_ALL},
				Fd: foreign.Prog.FD(), Name: "foreign", DirectAction: true,
			})
		})
		if err != nil {
			t.Fatalf("set up the other tool's filter: %v", err)
		}
		before := legacyState(t, p.A)
		if len(before.ingress) != 1 || before.ingress[0].Name != "foreign" {
			t.Fatalf("set-up: %v", before)
		}
		theirs := *before.ingress[0]

		tl := harness.StartCapture(t, p.A, bin, "--tc-attach", "legacy")
		during := legacyState(t, p.A)
		if len(during.ingress) != 2 || during.ingress[0].Name == "foreign" || during.ingress[0].Priority >= theirs.Priority {
			t.Fatalf("during the run: %v; want our filter ahead of %q (prio %d)", during, "foreign", theirs.Priority)
		}
		t.Logf("during the run: %v", during)
		seen := sendAndCount(t, p, foreign, 41400)
		checkRun(t, p, harness.StopCapture(t, tl, syscall.SIGINT), seen)

		after := legacyState(t, p.A)
		if !after.clsact || len(after.ingress) != 1 || len(after.egress) != 0 || after.other != 0 {
			t.Fatalf("after the run: %v; want the clsact qdisc and only the other tool's filter", after)
		}
		if f := after.ingress[0]; f.Name != theirs.Name || f.Priority != theirs.Priority || f.Handle != theirs.Handle || f.Id != theirs.Id {
			t.Fatalf("after the run the other filter is %q prio %d handle %x prog %d, was %q prio %d handle %x prog %d",
				f.Name, f.Priority, f.Handle, f.Id, theirs.Name, theirs.Priority, theirs.Handle, theirs.Id)
		}
		if seen := sendAndCount(t, p, foreign, 41401); seen != n {
			t.Fatalf("after the run the other program saw %d of %d datagrams", seen, n)
		}
		t.Logf("after the run: %v, still counting", after)
	})

	t.Run("tcx", func(t *testing.T) {
		p := testnet.NewPair(t)
		p.PinNeighbors(t)
		foreign := harness.NewCounterProg(t, "foreign", frameLen, 0)
		var l link.Link
		if err := p.A.Do(func() (err error) {
			l, err = link.AttachTCX(link.TCXOptions{Interface: p.A.Index, Program: foreign.Prog, Attach: ebpf.AttachTCXIngress})
			return err
		}); err != nil {
			t.Fatalf("attach the other tool's TCX program: %v", err)
		}
		t.Cleanup(func() { l.Close() })
		theirs := bpftest.ProgramID(t, foreign.Prog)

		tl := harness.StartCapture(t, p.A, bin, "--tc-attach", "tcx")
		chain, err := harness.TCXChain(p.A, ebpf.AttachTCXIngress)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != 2 || chain[0].Name != harness.IngressProgName || chain[1].ID != theirs {
			t.Fatalf("TCX ingress chain during the run: %v; want %s, then the other program (id %d)", chain, harness.IngressProgName, theirs)
		}
		t.Logf("TCX ingress chain during the run: %v", chain)
		seen := sendAndCount(t, p, foreign, 41400)
		checkRun(t, p, harness.StopCapture(t, tl, syscall.SIGINT), seen)

		chain, err = harness.TCXChain(p.A, ebpf.AttachTCXIngress)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != 1 || chain[0].ID != theirs {
			t.Fatalf("TCX ingress chain after the run: %v; want only the other program (id %d)", chain, theirs)
		}
		if seen := sendAndCount(t, p, foreign, 41401); seen != n {
			t.Fatalf("after the run the other program saw %d of %d datagrams", seen, n)
		}
		t.Logf("after the run: TCX ingress chain %v, still counting", chain)
	})
}

// attached says what of ours is attached to e's veth in mode ("tcx" or
// "legacy"), empty when nothing is.
func attached(t *testing.T, e testnet.End, mode string) string {
	t.Helper()
	if mode == "tcx" {
		if got := harness.OurTCX(t, e); len(got) > 0 {
			return fmt.Sprint(got)
		}
		return ""
	}
	if s := legacyState(t, e); s.clsact {
		return fmt.Sprint(s)
	}
	return ""
}

// TestE2EClosedStdout: pktstat-bpf --interval 200ms | head -1. When the
// reader of its reports goes, the next report's write fails (EPIPE, not a
// SIGPIPE death with the programs attached): the run detaches and exits 0
// without an error, in TCX and legacy mode.
func TestE2EClosedStdout(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)
	for _, mode := range []string{"tcx", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "tcx" {
				requireTCX(t, p.A)
			}
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tl := harness.StartCaptureTo(t, p.A, bin, w, "--tc-attach", mode, "--interval", "200ms")
			w.Close() // the tool holds the only write end now
			if what := attached(t, p.A, mode); what == "" {
				t.Fatalf("nothing of ours attached while running")
			}
			first, err := bufio.NewReader(r).ReadString('\n')
			if err != nil || !strings.HasPrefix(first, "{") {
				t.Fatalf("first report %q: %v", first, err)
			}
			r.Close() // head -1 exits
			code, err := tl.Wait(harness.ToolWait)
			if err != nil {
				t.Fatal(err)
			}
			if code != 0 || strings.Contains(tl.Stderr(), "pktstat-bpf:") {
				t.Fatalf("exit code %d, want 0 and no error\nstderr:\n%s", code, tl.Stderr())
			}
			if what := attached(t, p.A, mode); what != "" {
				t.Fatalf("after the reader went: %s still attached", what)
			}
			t.Logf("%s: after the first report's reader closed, exit 0 and nothing attached", mode)
		})
	}
}

// TestE2EQdiscDeleted: someone runs tc qdisc del dev X clsact while a
// legacy run counts. Its filters went with the qdisc, which counts as
// detached: at SIGTERM the run writes its report, with the traffic sent
// before, and exits 0 with no error.
func TestE2EQdiscDeleted(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	const n = 5
	payload := bytes.Repeat([]byte{2}, 64)
	f := harness.NewUDPFlow("UDP before the qdisc went", p.B, p.A,
		netip.AddrPortFrom(p.B.IPv4, 41400), netip.AddrPortFrom(p.A.IPv4, 5300))
	tl := harness.StartCapture(t, p.A, bin, "--tc-attach", "legacy")
	harness.SendUDPFlow(t, f, payload, n)
	if err := p.A.Do(func() error {
		return netlink.QdiscDel(&netlink.GenericQdisc{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: p.A.Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
			QdiscType:  "clsact",
		})
	}); err != nil {
		t.Fatalf("delete the clsact qdisc: %v", err)
	}
	rows := harness.StopCapture(t, tl, syscall.SIGTERM)
	row := harness.OneRow(t, rows, "UDP", f.Src.Addr(), f.Dst.Addr(), f.Src.Port(), f.Dst.Port())
	harness.WantCounts(t, f.Name, row, n, n*uint64(harness.EthLen+harness.IPv4Len+harness.UDPLen+len(payload)))
	if strings.Contains(tl.Stderr(), "pktstat-bpf:") {
		t.Errorf("an error after the qdisc was deleted:\n%s", tl.Stderr())
	}
	if s := legacyState(t, p.A); s.clsact {
		t.Errorf("after the run: %v", s)
	}
}

// TestE2ELegacyAcrossPIDNamespaces: a legacy run in a PID namespace of
// its own (a container, where it is PID 1) and a run on the host share an
// interface. The host run leaves the container run's filters alone while
// it lives, and both count the same traffic exactly; once the container
// run is SIGKILLed, the next run sweeps its filters up.
func TestE2ELegacyAcrossPIDNamespaces(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	const n = 4
	payload := bytes.Repeat([]byte{3}, 80)
	f := harness.NewUDPFlow("UDP B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 41500), netip.AddrPortFrom(p.A.IPv4, 5300))
	// --kill-child: SIGKILL to unshare kills the tool too, as a container
	// runtime kills a container's PID 1.
	ctr := harness.StartTool(t, p.A, "unshare", "--pid", "--fork", "--kill-child", bin, "-i", p.A.Link, "-t", "0", "-j", "--tc-attach", "legacy")
	ctrName := runFilter(t, p.A)
	host := harness.StartCapture(t, p.A, bin, "--tc-attach", "legacy")
	if strings.Contains(host.Stderr(), "removed a tc filter") {
		t.Fatalf("the host run removed the live container run's filters:\n%s", host.Stderr())
	}
	if s := legacyState(t, p.A); !filterNamed(s.ingress, ctrName) || !filterNamed(s.egress, ctrName) || len(s.ingress) != 2 || len(s.egress) != 2 {
		t.Fatalf("with both runs: %v; want the container run's %q and the host run's filter each way", s, ctrName)
	}
	harness.SendUDPFlow(t, f, payload, n)
	wire := uint64(harness.EthLen + harness.IPv4Len + harness.UDPLen + len(payload))
	rows := harness.StopCapture(t, host, syscall.SIGTERM)
	harness.WantCounts(t, "the host run's "+f.Name, harness.OneRow(t, rows, "UDP", f.Src.Addr(), f.Dst.Addr(), f.Src.Port(), f.Dst.Port()), n, n*wire)
	if s := legacyState(t, p.A); !filterNamed(s.ingress, ctrName) || !filterNamed(s.egress, ctrName) || len(s.ingress) != 1 {
		t.Fatalf("after the host run: %v; want the container run's filters untouched", s)
	}
	if code := harness.EndCapture(t, ctr, "SIGKILL"); code != harness.WantExit("SIGKILL") {
		t.Fatalf("container run: exit code %d after SIGKILL\nstderr:\n%s", code, ctr.Stderr())
	}
	if s := legacyState(t, p.A); !filterNamed(s.ingress, ctrName) {
		t.Fatalf("after SIGKILL: %v; want the killed container run's filters left", s)
	}
	next := harness.StartCapture(t, p.A, bin, "--tc-attach", "legacy")
	if n := strings.Count(next.Stderr(), "removed a tc filter left by an earlier run"); n != 2 || !strings.Contains(next.Stderr(), ctrName) {
		t.Fatalf("the next run logged %d removals of %q, want 2:\n%s", n, ctrName, next.Stderr())
	}
	harness.StopCapture(t, next, syscall.SIGINT)
	if s := legacyState(t, p.A); s.clsact {
		t.Fatalf("after the next run: %v; want nothing left", s)
	}
	t.Logf("the host run left the container run (PID 1 in its namespace) alone, counted %d packets exactly, and the next run swept the killed container run's filters", n)
}
