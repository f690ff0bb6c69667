package e2e

import (
	"bytes"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// The tests of several interfaces run the tool in the namespace of a
// router, R, with two veths: pa to namespace B (198.18.0.0/24) and pc to
// namespace D (198.18.1.0/24). With -i any the tool sees only R's
// interfaces, never the host's. R forwards between the two, so a datagram
// from D to B crosses pc's ingress and pa's egress.
type router struct {
	p    *testnet.Pair // A: pa in R; B: its peer
	c, d testnet.End   // c: pc in R; d: its peer in D
}

// newRouter builds R, B and D with pinned neighbors (no ARP or neighbor
// discovery while counting) and routes both ways through R. With late,
// pc and D are left for addPC, to come while the tool runs.
func newRouter(t *testing.T, late bool) *router {
	t.Helper()
	r := &router{p: testnet.NewPair(t)}
	r.p.PinNeighbors(t)
	r.p.A.Sysctl(t, "net.ipv4.ip_forward=1")
	r.p.B.Route(t, netip.MustParsePrefix("198.18.1.0/24"), r.p.A.IPv4)
	if !late {
		r.addPC(t)
	}
	return r
}

// addPC adds pc, and D behind it.
func (r *router) addPC(t *testing.T) {
	t.Helper()
	r.c, r.d = r.p.A.AddPeer(t, 1)
	(&testnet.Pair{A: r.c, B: r.d}).PinNeighbors(t)
	r.d.Route(t, netip.MustParsePrefix("198.18.0.0/24"), r.c.IPv4)
}

// The test traffic: to R over each veth, and from D to B through R.
func (r *router) toA() harness.UDPFlow {
	return harness.NewUDPFlow("B->R on pa", r.p.B, r.p.A, netip.AddrPortFrom(r.p.B.IPv4, 41001), netip.AddrPortFrom(r.p.A.IPv4, 5001))
}

func (r *router) toC() harness.UDPFlow {
	return harness.NewUDPFlow("D->R on pc", r.d, r.c, netip.AddrPortFrom(r.d.IPv4, 41002), netip.AddrPortFrom(r.c.IPv4, 5002))
}

func (r *router) forwarded() harness.UDPFlow {
	return harness.NewUDPFlow("D->B through R", r.d, r.p.B, netip.AddrPortFrom(r.d.IPv4, 41003), netip.AddrPortFrom(r.p.B.IPv4, 5003))
}

// sent is one flow the test sent, and how many datagrams of how many
// payload bytes.
type sent struct {
	f       harness.UDPFlow
	n, size int
}

func (s sent) send(t *testing.T) {
	t.Helper()
	harness.SendUDPFlow(t, s.f, bytes.Repeat([]byte{0x5a}, s.size), s.n)
}

// wantOn checks that s has one row on each interface of dirs, in the
// direction dirs gives, with exactly the packets and wire bytes sent, and
// no row on any other interface.
func wantOn(t *testing.T, rows []harness.Row, s sent, dirs map[string]string) {
	t.Helper()
	frame := uint64(harness.EthLen + s.f.L3Len + harness.UDPLen + s.size)
	got := harness.Find(rows, "UDP", s.f.Src.Addr().String(), s.f.Dst.Addr().String(), s.f.Src.Port(), s.f.Dst.Port())
	if len(got) != len(dirs) {
		t.Fatalf("%s: %d rows, want %d (%v):\n%s", s.f.Name, len(got), len(dirs), dirs, harness.DumpRows(got))
	}
	for _, row := range got {
		dir, ok := dirs[row.Iface]
		if !ok || row.Dir != dir {
			t.Fatalf("%s: a row on %q, %s; want rows on %v:\n%s", s.f.Name, row.Iface, row.Dir, dirs, harness.DumpRows(got))
		}
		harness.WantCounts(t, s.f.Name+" on "+row.Iface, row, uint64(s.n), uint64(s.n)*frame)
	}
}

// waitLog waits until the tool has logged a line that holds every part.
func waitLog(t *testing.T, tl *harness.Tool, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(testnet.Patience(10 * time.Second))
	for {
		for _, line := range strings.Split(tl.Stderr(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tool did not log %q within %v:\n%s", parts, testnet.Patience(10*time.Second), tl.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantNothingOn checks, polling briefly (links go with the process's last
// file descriptors), that no program of ours is on any of ends: no TCX
// program, no cls_bpf filter, no clsact qdisc (none was there before),
// no XDP program.
func wantNothingOn(t *testing.T, ends ...testnet.End) {
	t.Helper()
	for _, e := range ends {
		deadline := time.Now().Add(2 * time.Second)
		for {
			tcx, legacy, xdp := harness.OurTCX(t, e), legacyState(t, e), harness.XDPOn(t, e, e.Link)
			if len(tcx) == 0 && !legacy.clsact && xdp.ID == 0 {
				t.Logf("%s: nothing of ours left", e.Link)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after the run: TCX %v, tc %v, %v", e.Link, tcx, legacy, xdp)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// attachModes are the ways the several-interface tests attach: each TC
// method, and XDP, which sees ingress only.
var attachModes = []struct {
	name string
	args []string
	xdp  bool
}{
	{"tcx", []string{"--tc-attach", "tcx"}, false},
	{"legacy", []string{"--tc-attach", "legacy"}, false},
	{"xdp", []string{"-x"}, true},
}

// TestE2ESeveralIfaces: two -i, two veths, traffic of known counts on
// each and through both. Each row names its interface, with the exact
// packets and wire bytes sent; a datagram forwarded from pc to pa counts
// on both, in on pc and out on pa, as ip -s link counts it (XDP sees only
// the ingress). Each interface gets its own attachment, each reported,
// and nothing is left on either after the run.
func TestE2ESeveralIfaces(t *testing.T) {
	bin := harness.Binary(t)
	for _, m := range attachModes {
		t.Run(m.name, func(t *testing.T) {
			r := newRouter(t, false)
			if m.name == "tcx" {
				requireTCX(t, r.p.A)
			}
			args := append([]string{"-i", r.p.A.Link, "-i", r.c.Link, "-t", "0", "-j"}, m.args...)
			tl := harness.StartTool(t, r.p.A, bin, args...)
			for _, e := range []testnet.End{r.p.A, r.c} {
				waitLog(t, tl, "msg=attached", "iface="+e.Link+" ")
			}
			if m.xdp {
				for _, e := range []testnet.End{r.p.A, r.c} {
					if a := harness.XDPOn(t, e, e.Link); a.Name != harness.XDPProgName {
						t.Fatalf("%s has %v, want ours", e.Link, a)
					} else {
						// The mode each interface got is in the log.
						waitLog(t, tl, "msg=attached", "iface="+e.Link+" ", "method="+a.Mode)
					}
				}
			}
			traffic := []sent{{r.toA(), 300, 200}, {r.toC(), 200, 300}, {r.forwarded(), 100, 100}}
			for _, s := range traffic {
				s.send(t)
			}
			rows := harness.StopCapture(t, tl, syscall.SIGINT)

			pa, pc := r.p.A.Link, r.c.Link
			wantOn(t, rows, traffic[0], map[string]string{pa: "in"})
			wantOn(t, rows, traffic[1], map[string]string{pc: "in"})
			through := map[string]string{pc: "in", pa: "out"}
			if m.xdp {
				through = map[string]string{pc: "in"}
			}
			wantOn(t, rows, traffic[2], through)
			for _, row := range rows {
				if row.Iface != pa && row.Iface != pc && !row.Overflow {
					t.Errorf("a row names interface %q, want %s or %s: %+v", row.Iface, pa, pc, row)
				}
			}
			wantNothingOn(t, r.p.A, r.c)
		})
	}
}

// TestE2EAnyIfaceFollows: with -i any, a veth created after the start is
// attached to as it comes up, its traffic counted exactly under its name,
// beside the traffic of the veth that was there; after the run nothing is
// left on either. The tool runs in R's namespace: any is R's interfaces.
func TestE2EAnyIfaceFollows(t *testing.T) {
	bin := harness.Binary(t)
	for _, m := range attachModes {
		t.Run(m.name, func(t *testing.T) {
			r := newRouter(t, true)
			if m.name == "tcx" {
				requireTCX(t, r.p.A)
			}
			tl := harness.StartTool(t, r.p.A, bin, append([]string{"-i", "any", "-t", "0", "-j"}, m.args...)...)
			waitLog(t, tl, "msg=attached", "iface="+r.p.A.Link+" ")
			if strings.Contains(tl.Stderr(), "iface=lo ") {
				t.Fatalf("attached to the loopback:\n%s", tl.Stderr())
			}
			r.addPC(t)
			waitLog(t, tl, "msg=attached", "iface="+r.c.Link+" ")
			traffic := []sent{{r.toA(), 250, 120}, {r.toC(), 150, 400}}
			for _, s := range traffic {
				s.send(t)
			}
			rows := harness.StopCapture(t, tl, syscall.SIGINT)
			wantOn(t, rows, traffic[0], map[string]string{r.p.A.Link: "in"})
			wantOn(t, rows, traffic[1], map[string]string{r.c.Link: "in"})
			wantNothingOn(t, r.p.A, r.c)
		})
	}
}

// TestE2EWatchedIfaceDeleted: a watched veth is deleted while the tool
// runs. The tool runs on, counts the other one, and exits 0 with a report
// that holds both veths' traffic exactly (what pc counted before it went
// too), and leaves nothing on the remaining interface. With -i any it
// notices and lets go at once; with the veth named, at the end.
func TestE2EWatchedIfaceDeleted(t *testing.T) {
	bin := harness.Binary(t)
	for _, c := range []struct {
		name  string
		any   bool
		args  []string
		noted bool // the tool logs the vanishing
	}{
		{"any-tcx", true, []string{"--tc-attach", "tcx"}, true},
		{"any-legacy", true, []string{"--tc-attach", "legacy"}, true},
		{"named-legacy", false, []string{"--tc-attach", "legacy"}, false},
		{"any-xdp", true, []string{"-x"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRouter(t, false)
			if strings.HasSuffix(c.name, "tcx") {
				requireTCX(t, r.p.A)
			}
			ifaces := []string{"-i", "any"}
			if !c.any {
				ifaces = []string{"-i", r.p.A.Link + "," + r.c.Link}
			}
			tl := harness.StartTool(t, r.p.A, bin, append(append(ifaces, "-t", "0", "-j"), c.args...)...)
			waitLog(t, tl, "msg=attached", "iface="+r.c.Link+" ")
			before := sent{r.toC(), 120, 80}
			before.send(t)
			r.c.DelLink(t)
			if c.noted {
				waitLog(t, tl, "interface vanished", "iface="+r.c.Link+" ")
			}
			after := sent{r.toA(), 220, 60}
			after.send(t)
			rows := harness.StopCapture(t, tl, syscall.SIGINT)
			wantOn(t, rows, before, map[string]string{r.c.Link: "in"})
			wantOn(t, rows, after, map[string]string{r.p.A.Link: "in"})
			wantNothingOn(t, r.p.A)
		})
	}
}

// TestE2ESeveralIfacesNDJSON: with two -i and --interval -j, an NDJSON
// line has the rows of both interfaces, exact, and "ifaces", each
// interface's own counters over the run, instead of "iface". Those count
// skbs, as the kernel's link counters that the test reads before the start
// and after the end do: the tool's period lies inside the test's, so each
// of its counts lies between what the test sent through the interface
// and the kernel's count over the longer time.
func TestE2ESeveralIfacesNDJSON(t *testing.T) {
	bin := harness.Binary(t)
	r := newRouter(t, false)
	ends := []testnet.End{r.p.A, r.c}
	before := make([]*netlink.LinkStatistics, len(ends))
	for i, e := range ends {
		before[i] = linkStats(t, e)
	}
	tl := harness.StartTool(t, r.p.A, bin, "-i", r.p.A.Link+","+r.c.Link, "-t", "0", "-j", "--interval", "1h")
	traffic := []sent{{r.toA(), 300, 200}, {r.toC(), 200, 300}, {r.forwarded(), 100, 100}}
	for _, s := range traffic {
		s.send(t)
	}
	harness.StopTool(t, tl, syscall.SIGINT)
	after := make([]*netlink.LinkStatistics, len(ends))
	for i, e := range ends {
		after[i] = linkStats(t, e)
	}
	ivs, err := harness.ParseIntervals(tl.Stdout())
	if err != nil || len(ivs) != 1 {
		t.Fatalf("%d NDJSON lines (%v), want 1:\n%s", len(ivs), err, tl.Stdout())
	}
	iv := ivs[0]
	pa, pc := r.p.A.Link, r.c.Link
	wantOn(t, iv.Rows, traffic[0], map[string]string{pa: "in"})
	wantOn(t, iv.Rows, traffic[1], map[string]string{pc: "in"})
	wantOn(t, iv.Rows, traffic[2], map[string]string{pc: "in", pa: "out"})
	if iv.Iface != nil || len(iv.Ifaces) != 2 || iv.Ifaces[0].Name != pa || iv.Ifaces[1].Name != pc {
		t.Fatalf("iface %v, ifaces %+v; want no iface, and ifaces %s and %s", iv.Iface, iv.Ifaces, pa, pc)
	}
	// What the test sent through each interface, in packets: pa received
	// the 300 of B and sent the 100 forwarded; pc received 200 + 100.
	sentRx, sentTx := []uint64{300, 300}, []uint64{100, 0}
	for i, got := range iv.Ifaces {
		rx, tx := after[i].RxPackets-before[i].RxPackets, after[i].TxPackets-before[i].TxPackets
		if got.RxPackets < sentRx[i] || got.RxPackets > rx || got.TxPackets < sentTx[i] || got.TxPackets > tx {
			t.Errorf("%s: the tool's rx/tx packets %d/%d, want between what was sent (%d/%d) and the kernel's count over the test (%d/%d)",
				got.Name, got.RxPackets, got.TxPackets, sentRx[i], sentTx[i], rx, tx)
		}
	}
}

func linkStats(t *testing.T, e testnet.End) *netlink.LinkStatistics {
	t.Helper()
	st, err := e.LinkStats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}
