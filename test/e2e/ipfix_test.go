package e2e

// IPFIX export (--ipfix) against real collectors: nfcapd from Debian's
// nfdump package and goflow2, each run by the test inside the tool's
// namespace, on the namespace's own 198.18.0.0/15 address (so that the
// export crosses the loopback device, not the veth the tool watches). The
// records the collectors stored must add up, flow by flow, to the tool's
// own report of the same run, and to what the test sent.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"golang.org/x/net/ipv4"

	"github.com/pktstat-bpf/pktstat-bpf/internal/metrics"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// flowKey is a flow as both the report and the collectors name it: ICMP's
// type and code in the ports, as the report has them.
type flowKey struct {
	proto      uint8
	src, dst   string
	sport, dpt uint16
}

func (k flowKey) String() string {
	return fmt.Sprintf("proto %d %s:%d -> %s:%d", k.proto, k.src, k.sport, k.dst, k.dpt)
}

// protoNumbers maps the report's protocol names to IP protocol numbers;
// non-IP rows (ARP) go out as protocol 0.
var protoNumbers = map[string]uint8{"TCP": 6, "UDP": 17, "ICMPv4": 1, "ICMPv6": 58, "IPv6-ICMP": 58, "ARP": 0, "IGMP": 2}

// reportFlows adds up the report's rows by flowKey, and returns the total
// of every row, the overflow row included.
func reportFlows(t *testing.T, rows []harness.Row) (map[flowKey]counts, counts) {
	t.Helper()
	m := map[flowKey]counts{}
	var total counts
	for _, r := range rows {
		total.add(counts{r.Packets, r.Bytes})
		if r.Overflow {
			continue
		}
		p, ok := protoNumbers[r.Proto]
		if !ok {
			t.Fatalf("a row of protocol %q, which this test does not map: %+v", r.Proto, r)
		}
		k := flowKey{p, r.SrcIP, r.DstIP, r.SrcPort, r.DstPort}
		if p == 0 {
			k.sport, k.dpt = 0, 0
		}
		c := m[k]
		c.add(counts{r.Packets, r.Bytes})
		m[k] = c
	}
	return m, total
}

// freePort is a UDP port nothing in e's namespace uses.
func freePort(t *testing.T, e testnet.End, a netip.Addr) int {
	t.Helper()
	var port int
	if err := e.Do(func() error {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: a.AsSlice()})
		if err != nil {
			return err
		}
		port = c.LocalAddr().(*net.UDPAddr).Port
		return c.Close()
	}); err != nil {
		t.Fatal(err)
	}
	return port
}

// waitUDPBound waits until something in e's namespace listens on UDP port.
func waitUDPBound(t *testing.T, e testnet.End, port int, what string, stderr func() string) {
	t.Helper()
	deadline := time.Now().Add(testnet.Patience(10 * time.Second))
	for time.Now().Before(deadline) {
		out, _ := e.Command("ss", "-Hlun", fmt.Sprintf("sport = :%d", port)).Output()
		if len(bytes.TrimSpace(out)) > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s does not listen on UDP port %d\n%s", what, port, stderr())
}

// collector is a collector process the test started.
type collector struct {
	cmd    *exec.Cmd
	out    *testnet.LockedBuffer
	done   chan struct{}
	waited error
}

func startCollector(t *testing.T, e testnet.End, port int, name string, args ...string) *collector {
	t.Helper()
	c := &collector{cmd: e.Command(name, args...), out: &testnet.LockedBuffer{}, done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { c.waited = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.stop(t) })
	waitUDPBound(t, e, port, name, c.out.String)
	return c
}

// stop ends the collector with SIGTERM, on which it writes what it holds.
func (c *collector) stop(t *testing.T) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(testnet.Patience(10 * time.Second)):
		_ = c.cmd.Process.Kill()
		<-c.done
		t.Errorf("%s did not end on SIGTERM", c.cmd.Path)
	}
}

// nfRecord is the part of nfdump's JSON output (-o json) this test reads.
type nfRecord struct {
	Proto    uint8  `json:"proto"`
	Src4     string `json:"src4_addr"`
	Dst4     string `json:"dst4_addr"`
	Src6     string `json:"src6_addr"`
	Dst6     string `json:"dst6_addr"`
	SrcPort  uint16 `json:"src_port"`
	DstPort  uint16 `json:"dst_port"`
	ICMPType uint8  `json:"icmp_type"`
	ICMPCode uint8  `json:"icmp_code"`
	Packets  uint64 `json:"in_packets"`
	Bytes    uint64 `json:"in_bytes"`
	Dir      uint8  `json:"direction"`
	In       uint32 `json:"input_snmp"`
	Out      uint32 `json:"output_snmp"`
}

// key is the record's flow, as the report names it.
func (r nfRecord) key() flowKey {
	k := flowKey{r.Proto, r.Src4, r.Dst4, r.SrcPort, r.DstPort}
	if r.Src6 != "" {
		k.src, k.dst = r.Src6, r.Dst6
	}
	if r.Proto == 1 || r.Proto == 58 {
		k.sport, k.dpt = uint16(r.ICMPType), uint16(r.ICMPCode)
	}
	if k.src == "0.0.0.0" && k.dst == "0.0.0.0" {
		k.src, k.dst = "", "" // the overflow record, and non-IP frames without addresses
	}
	return k
}

// nfdumpRecords reads every record nfcapd wrote in dir with nfdump.
func nfdumpRecords(t *testing.T, dir string) ([]nfRecord, []byte) {
	t.Helper()
	out, err := exec.Command("nfdump", "-R", dir, "-o", "json").Output()
	if err != nil {
		t.Fatalf("nfdump -R %s -o json: %v\n%s", dir, err, out)
	}
	var recs []nfRecord
	if err := json.Unmarshal(out, &recs); err != nil {
		t.Fatalf("nfdump's JSON: %v\n%s", err, out)
	}
	return recs, out
}

// nfdumpFlows reads every file nfcapd wrote in dir with nfdump and adds
// the records up by flowKey.
func nfdumpFlows(t *testing.T, dir string) (map[flowKey]counts, counts, []byte) {
	t.Helper()
	recs, out := nfdumpRecords(t, dir)
	m := map[flowKey]counts{}
	var total counts
	for _, r := range recs {
		k := r.key()
		c := m[k]
		c.add(counts{r.Packets, r.Bytes})
		m[k] = c
		total.add(counts{r.Packets, r.Bytes})
	}
	return m, total, out
}

// sentUDP is a UDP flow the test sent, and its datagrams.
type sentUDP struct {
	harness.UDPFlow
	n int
}

// sendKnownTraffic sends UDP (IPv4 both ways, IPv6), a TCP transfer and
// pings between p's ends, and returns the UDP flows with the datagrams
// each carried.
func sendKnownTraffic(t *testing.T, p *testnet.Pair) []sentUDP {
	t.Helper()
	payload := bytes.Repeat([]byte{0x5a}, 300)
	ap := netip.AddrPortFrom
	flows := []sentUDP{
		{harness.NewUDPFlow("IPv4 B->A", p.B, p.A, ap(p.B.IPv4, 42001), ap(p.A.IPv4, 6001)), 300},
		{harness.NewUDPFlow("IPv4 A->B", p.A, p.B, ap(p.A.IPv4, 42002), ap(p.B.IPv4, 6002)), 200},
		{harness.NewUDPFlow("IPv6 B->A", p.B, p.A, ap(p.B.IPv6, 42003), ap(p.A.IPv6, 6003)), 100},
	}
	for _, f := range flows {
		harness.SendUDPFlow(t, f.UDPFlow, payload, f.n)
	}
	var ln *net.TCPListener
	dst := ap(p.B.IPv4, 6201)
	if err := p.B.Do(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	harness.SendTCP(t, p, ln, ap(p.A.IPv4, 42201), dst, 256<<10)
	pg := pinger{"ip4:icmp", 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply, p.A.IPv4, p.B.IPv4}
	if err := pg.ping(p.A, 20, bytes.Repeat([]byte{1}, 56)); err != nil {
		t.Fatal(err)
	}
	return flows
}

// wantSameFlows compares the collector's flows with the report's, each
// flow and the totals, and the UDP flows with what was sent.
func wantSameFlows(t *testing.T, collector string, got map[flowKey]counts, gotTotal counts, rows []harness.Row, sent []sentUDP) {
	t.Helper()
	want, wantTotal := reportFlows(t, rows)
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("%s: %s has %+v, the report %+v", collector, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && k.src != "" {
			t.Errorf("%s: %s (%+v) is not in the report", collector, k, g)
		}
	}
	if gotTotal != wantTotal {
		t.Errorf("%s: totals %+v, the report's (overflow row included) %+v", collector, gotTotal, wantTotal)
	}
	for _, f := range sent {
		n := f.n
		k := flowKey{17, f.Src.Addr().String(), f.Dst.Addr().String(), f.Src.Port(), f.Dst.Port()}
		frame := uint64(harness.EthLen + f.L3Len + harness.UDPLen + 300)
		if g := got[k]; g != (counts{uint64(n), uint64(n) * frame}) {
			t.Errorf("%s: %s has %+v; the test sent %d datagrams of %d bytes", collector, f.Name, g, n, frame)
		}
	}
}

func needNfdump(t *testing.T) {
	for _, c := range []string{"nfcapd", "nfdump", "ss"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("skipped: needs %s; install the Debian packages nfdump and iproute2", c)
		}
	}
}

// TestE2EIPFIXNfcapd exports a run's flows to nfcapd over UDP, every
// second, and compares what nfdump reads from nfcapd's file with the
// tool's report of the same run and with what the test sent.
func TestE2EIPFIXNfcapd(t *testing.T) {
	needNfdump(t)
	bin, p := harness.BinaryAndPair(t)
	port := freePort(t, p.A, p.A.IPv4)
	nf, dir := startNfcapd(t, p.A, p.A.IPv4, port)

	tl := harness.StartCapture(t, p.A, bin, "--ipfix", netip.AddrPortFrom(p.A.IPv4, uint16(port)).String(), "--ipfix-interval", "1s")
	sent := sendKnownTraffic(t, p)
	time.Sleep(1500 * time.Millisecond) // at least one export in the middle of the run
	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	if !strings.Contains(tl.Stderr(), `msg="IPFIX export ended"`) {
		t.Fatalf("no clean end of the export in the log:\n%s", tl.Stderr())
	}
	nf.stop(t)
	got, total, raw := nfdumpFlows(t, dir)
	t.Logf("nfdump read %d flows, %+v in all", len(got), total)
	wantSameFlows(t, "nfcapd", got, total, rows, sent)
	// Direction and interface: A's veth, in the field of the direction.
	var ifindex uint32
	if err := p.A.Do(func() error {
		ifc, err := net.InterfaceByName(p.A.Link)
		if err == nil {
			ifindex = uint32(ifc.Index)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The report's directions of each key: one key can go both ways, such
	// as the MLD reports that both ends send from :: when their addresses
	// come up.
	dirs := map[flowKey]map[string]bool{}
	for _, r := range rows {
		k := flowKey{protoNumbers[r.Proto], r.SrcIP, r.DstIP, r.SrcPort, r.DstPort}
		if k.proto == 0 {
			k.sport, k.dpt = 0, 0 // as reportFlows keys non-IP rows
		}
		if !r.Overflow {
			if dirs[k] == nil {
				dirs[k] = map[string]bool{}
			}
			dirs[k][r.Dir] = true
		}
	}
	recs, _ := nfdumpRecords(t, dir)
	for _, r := range recs {
		// A record whose key has no row (the overflow) stands for received
		// traffic, as the overflow row does.
		in, out := dirs[r.key()]["in"] || dirs[r.key()] == nil, dirs[r.key()]["out"]
		switch {
		case r.Dir == 0 && in && r.In == ifindex && r.Out == 0:
		case r.Dir == 1 && out && r.In == 0 && r.Out == ifindex:
		default:
			t.Errorf("a record with direction %d, input %d, output %d matches no row of the report (received: 0, %d, 0; sent: 1, 0, %d): %+v", r.Dir, r.In, r.Out, ifindex, ifindex, r)
		}
	}
	if os.Getenv("IPFIX_DOC_OUT") != "" { // docs/flow-export.md's example output
		_ = os.WriteFile(filepath.Join(os.Getenv("IPFIX_DOC_OUT"), "nfdump.json"), raw, 0o644)
		line, _ := exec.Command("nfdump", "-R", dir, "-o", "extended").CombinedOutput()
		_ = os.WriteFile(filepath.Join(os.Getenv("IPFIX_DOC_OUT"), "nfdump.txt"), line, 0o644)
	}
}

// goflow2Version is goflow2's version in go.mod, the one whose decoder
// internal/ipfix's tests use.
func goflow2Version(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/netsampler/goflow2/v2").Output()
	if err != nil {
		t.Skipf("skipped: cannot find goflow2's version with go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// buildGoflow2 builds goflow2's collector from the module proxy, at the
// version go.mod pins, with its own go.mod (go install module@version).
func buildGoflow2(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipped: needs the go command to build goflow2")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "install", "github.com/netsampler/goflow2/v2/cmd/goflow2@"+goflow2Version(t))
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build goflow2: %v\n%s", err, out)
	}
	return filepath.Join(dir, "goflow2")
}

// gfRecord is the part of goflow2's JSON output this test reads, with the
// enterprise elements that deploy/goflow2-mapping.yaml names.
type gfRecord struct {
	Type    string `json:"type"`
	Proto   any    `json:"proto"`
	Src     string `json:"src_addr"`
	Dst     string `json:"dst_addr"`
	SrcPort uint16 `json:"src_port"`
	DstPort uint16 `json:"dst_port"`
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	Dir     uint8  `json:"flow_direction"`
	PID     uint32 `json:"pktstat_pid"`
	Comm    string `json:"pktstat_comm"`
	Cgroup  string `json:"pktstat_cgroup"`
	Flags   uint8  `json:"pktstat_flags"`
}

// TestE2EIPFIXGoflow2 exports a cgroup-mode run (with the owner's
// enterprise elements) to goflow2, which decodes it with the committed
// mapping file: every flow's counts and owner equal the report's, and so
// do the totals.
func TestE2EIPFIXGoflow2(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("skipped: needs ss (iproute2)")
	}
	bin, p := harness.BinaryAndPair(t)
	gf := buildGoflow2(t)
	mapping, err := filepath.Abs(filepath.Join("..", "..", "deploy", "goflow2-mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	parent, child := harness.MakeCgroupTree(t)
	h := harness.StartCgroupHelper(t, p.A, child)
	port := freePort(t, p.B, p.B.IPv4)
	file := filepath.Join(t.TempDir(), "flows.json")
	col := startCollector(t, p.B, port, gf, "-listen", fmt.Sprintf("netflow://%s:%d", p.B.IPv4, port), "-format", "json",
		"-transport", "file", "-transport.file", file, "-mapping", mapping, "-addr", netip.AddrPortFrom(p.B.IPv4, 0).String())

	tl := harness.StartTool(t, p.B, bin, "-c", parent, "-t", "0", "-j", "--ipfix", netip.AddrPortFrom(p.B.IPv4, uint16(port)).String(), "--ipfix-interval", "1s")
	sent := 0
	for _, c := range []struct {
		network  string
		src, dst netip.Addr
		n        int
	}{{"udp4", p.A.IPv4, p.B.IPv4, 40}, {"udp6", p.A.IPv6, p.B.IPv6, 25}} {
		out, err := p.B.ListenUDP(netip.AddrPortFrom(c.dst, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		res := h.Call(t, "udp %s %s %s", c.network, netip.AddrPortFrom(c.src, 0), out.LocalAddr().(*net.UDPAddr).AddrPort())
		h.Call(t, "write %s %d 100", res[0], c.n)
		if got, err := testnet.ReadUDP(out, c.n, 100, 5*time.Second); err != nil {
			t.Fatalf("%d of %d datagrams arrived: %v", got, c.n, err)
		}
		sent += c.n
	}
	time.Sleep(1500 * time.Millisecond)
	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	// goflow2 writes a line per record it decoded: wait for the last
	// export's (at exit), then stop it.
	var raw []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		raw, _ = os.ReadFile(file)
		if bytes.Count(raw, []byte("\n")) >= len(rows) {
			break
		}
	}
	col.stop(t)
	if raw, err = os.ReadFile(file); err != nil || len(bytes.TrimSpace(raw)) == 0 {
		t.Fatalf("goflow2 wrote no record (%v); its log:\n%s\nthe tool's:\n%s", err, col.out.String(), tl.Stderr())
	}
	t.Logf("goflow2's first record: %s", bytes.SplitN(raw, []byte("\n"), 2)[0])
	got := map[flowKey]counts{}
	owners := map[flowKey]gfRecord{}
	var total counts
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r gfRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("goflow2's line %q: %v", line, err)
		}
		if r.Type != "IPFIX" {
			t.Fatalf("a record of type %q: %s", r.Type, line)
		}
		var proto uint8
		switch v := r.Proto.(type) {
		case string:
			proto = map[string]uint8{"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58}[v]
		case float64:
			proto = uint8(v)
		}
		k := flowKey{proto, r.Src, r.Dst, r.SrcPort, r.DstPort}
		if r.Flags&0x80 != 0 {
			k = flowKey{} // the overflow record
		}
		c := got[k]
		c.add(counts{r.Packets, r.Bytes})
		got[k] = c
		total.add(counts{r.Packets, r.Bytes})
		owners[k] = r
	}
	want, wantTotal := reportFlows(t, rows)
	if len(want) != 2 {
		t.Fatalf("the report has %d flows, want the 2 the helper sent: %+v", len(want), rows)
	}
	for _, r := range rows {
		k := flowKey{protoNumbers[r.Proto], r.SrcIP, r.DstIP, r.SrcPort, r.DstPort}
		o := owners[k]
		if got[k] != want[k] {
			t.Errorf("goflow2: %s has %+v, the report %+v", k, got[k], want[k])
		}
		if o.PID != r.PID || o.Comm != r.Comm || o.Cgroup != r.Cgroup || o.Dir != 1 || r.Dir != "out" {
			t.Errorf("goflow2: %s has owner pid %d comm %q cgroup %q direction %d; the report pid %d comm %q cgroup %q direction %s",
				k, o.PID, o.Comm, o.Cgroup, o.Dir, r.PID, r.Comm, r.Cgroup, r.Dir)
		}
		if r.Packets != uint64(map[string]int{p.A.IPv4.String(): 40, p.A.IPv6.String(): 25}[r.SrcIP]) {
			t.Errorf("the report's %s has %d packets; the helper sent them", k, r.Packets)
		}
	}
	if total != wantTotal || total.Packets != uint64(sent) {
		t.Errorf("goflow2's totals %+v, the report's %+v, the helper sent %d datagrams", total, wantTotal, sent)
	}
}

// startNfcapd starts nfcapd in e's namespace on addr:port, writing to a
// new directory, which it returns.
func startNfcapd(t *testing.T, e testnet.End, addr netip.Addr, port int) (*collector, string) {
	t.Helper()
	dir := t.TempDir()
	// -B: a receive buffer that holds a flood's export, a burst of
	// thousands of records at loopback speed.
	return startCollector(t, e, port, "nfcapd", "-w", dir, "-b", addr.String(), "-p", strconv.Itoa(port), "-t", "3600", "-B", "16777216"), dir
}

// TestE2EIPFIXFlood sends 300,000 UDP frames from random sources at a
// 4096-row table, exported every second to nfcapd: nfdump's records add
// up to exactly what trafgen sent, and the overflow records (no
// addresses) carry what had no row.
func TestE2EIPFIXFlood(t *testing.T) {
	needNfdump(t)
	trafgen, err := exec.LookPath("trafgen")
	if err != nil {
		t.Skip("skipped: needs trafgen; install the Debian package netsniff-ng")
	}
	bin, p := harness.BinaryAndPair(t)
	disableIPv6(t, p)
	const (
		n          = 300_000
		maxEntries = 4096
	)
	frame := harness.UDPFrameTo(t, p, [4]byte{198, 18, 0, 99}, 9, 9, make([]byte, 18))
	frame[40], frame[41] = 0, 0
	conf := filepath.Join(t.TempDir(), "flood.cfg")
	if err := os.WriteFile(conf, floodConfig(frame, map[int]bool{28: true, 29: true, 34: true, 35: true}), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, p.A, p.A.IPv4)
	var (
		rows   []harness.Row
		dir    string
		stderr string
	)
	captureWithoutDrops(t, p, n, func() (stop func()) {
		var nf *collector
		nf, dir = startNfcapd(t, p.A, p.A.IPv4, port) // a fresh one for each attempt
		tl := harness.StartCapture(t, p.A, bin, "--max-entries", strconv.Itoa(maxEntries),
			"--ipfix", netip.AddrPortFrom(p.A.IPv4, uint16(port)).String(), "--ipfix-interval", "1s")
		return func() {
			rows = harness.StopCapture(t, tl, syscall.SIGINT)
			stderr = tl.Stderr()
			nf.stop(t)
		}
	}, func() {
		out, err := p.B.Command(trafgen, "--dev", p.B.Link, "--conf", conf, "-n", strconv.Itoa(n),
			"--no-sock-mem", "-P", "1", "-q").CombinedOutput()
		if err != nil {
			t.Fatalf("trafgen: %v\n%s", err, out)
		}
	})
	got, total, _ := nfdumpFlows(t, dir)
	_, reportTotal := reportFlows(t, rows)
	overflow := got[flowKey{}]
	t.Logf("the tool: %s", regexp.MustCompile(`.*IPFIX export ended.*`).FindString(stderr))
	t.Logf("nfdump: %d flows with addresses, overflow records %+v, total %+v; the report's total %+v", len(got)-1, overflow, total, reportTotal)
	want := counts{n, n * uint64(len(frame))}
	if total != want || reportTotal != want {
		t.Errorf("nfdump's total %+v, the report's %+v; trafgen sent %+v", total, reportTotal, want)
	}
	if overflow.Packets == 0 || overflow.Packets >= n-maxEntries+1 {
		t.Errorf("overflow records hold %d packets: want the flows beyond the table, more than 0", overflow.Packets)
	}
	if tracked := total.Packets - overflow.Packets; tracked < maxEntries {
		t.Errorf("%d packets in records with addresses, want at least a full table's %d", tracked, maxEntries)
	}
}

// TestE2EIPFIXCollectorDown stops nfcapd in the middle of a run: the
// exporter drops (and counts) what it cannot send, the tool goes on, and
// once nfcapd is back the refreshed templates let it decode what follows.
func TestE2EIPFIXCollectorDown(t *testing.T) {
	needNfdump(t)
	bin, p := harness.BinaryAndPair(t)
	port := freePort(t, p.A, p.A.IPv4)
	nf, before := startNfcapd(t, p.A, p.A.IPv4, port)
	tl := harness.StartCapture(t, p.A, bin, "--ipfix", netip.AddrPortFrom(p.A.IPv4, uint16(port)).String(),
		"--ipfix-interval", "1s", "--ipfix-template-refresh", "1s")
	payload := make([]byte, 100)
	flow := func(i int) sentUDP {
		return sentUDP{harness.NewUDPFlow(fmt.Sprintf("flow %d", i), p.B, p.A,
			netip.AddrPortFrom(p.B.IPv4, uint16(43000+i)), netip.AddrPortFrom(p.A.IPv4, 7000)), 50 + i}
	}
	up, down, back := flow(1), flow(2), flow(3)
	harness.SendUDPFlow(t, up.UDPFlow, payload, up.n)
	time.Sleep(1500 * time.Millisecond) // exported
	nf.stop(t)
	harness.SendUDPFlow(t, down.UDPFlow, payload, down.n)
	time.Sleep(2500 * time.Millisecond) // exported to no one
	nf, after := startNfcapd(t, p.A, p.A.IPv4, port)
	time.Sleep(1500 * time.Millisecond) // templates again
	harness.SendUDPFlow(t, back.UDPFlow, payload, back.n)
	time.Sleep(1500 * time.Millisecond)
	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	nf.stop(t)

	frame := uint64(harness.EthLen + harness.IPv4Len + harness.UDPLen + len(payload))
	key := func(f sentUDP) flowKey {
		return flowKey{17, f.Src.Addr().String(), f.Dst.Addr().String(), f.Src.Port(), f.Dst.Port()}
	}
	report, _ := reportFlows(t, rows)
	for _, f := range []sentUDP{up, down, back} {
		if g := report[key(f)]; g != (counts{uint64(f.n), uint64(f.n) * frame}) {
			t.Errorf("the report's %s: %+v; the test sent %d datagrams", f.Name, g, f.n)
		}
	}
	first, _, _ := nfdumpFlows(t, before)
	second, _, _ := nfdumpFlows(t, after)
	for _, c := range []struct {
		what string
		m    map[flowKey]counts
		f    sentUDP
		want uint64
	}{
		{"before the stop", first, up, uint64(up.n)}, {"before the stop", first, down, 0},
		{"after the restart", second, back, uint64(back.n)}, {"after the restart", second, down, 0},
	} {
		if g := c.m[key(c.f)]; g != (counts{c.want, c.want * frame}) {
			t.Errorf("nfcapd %s has %+v of %s, want %d packets", c.what, g, c.f.Name, c.want)
		}
	}
	end := regexp.MustCompile(`IPFIX export ended.* not_sent=(\d+)`).FindStringSubmatch(tl.Stderr())
	if end == nil || end[1] == "0" {
		t.Errorf("the log does not count records not sent while the collector was down:\n%s", tl.Stderr())
	}
}

// nfSpan is a record's times and counts in nfdump's JSON.
type nfSpan struct {
	First   string `json:"first"`
	Last    string `json:"last"`
	Packets uint64 `json:"in_packets"`
	Bytes   uint64 `json:"in_bytes"`
}

// TestE2EIPFIXRead exports a capture file (--read): the records follow
// the file's clock, one per flow and minute of capture time, aligned to
// the minute, with the packets of each minute; nfdump reads them from
// nfcapd as such.
func TestE2EIPFIXRead(t *testing.T) {
	needNfdump(t)
	bin, p := harness.BinaryAndPair(t)
	path := filepath.Join(t.TempDir(), "minutes.pcap")
	t0 := time.Unix(1_700_000_000, 0) // 22:13:20 UTC
	const n = 31                      // one datagram every 5s: 22:13:20 .. 22:15:50
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		buf := gopacket.NewSerializeBuffer()
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{198, 18, 0, 2}, DstIP: net.IP{198, 18, 0, 1}}
		udp := &layers.UDP{SrcPort: 5000, DstPort: 6000}
		_ = udp.SetNetworkLayerForChecksum(ip)
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, EthernetType: layers.EthernetTypeIPv4},
			ip, udp, gopacket.Payload(make([]byte, 58))); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 5 * time.Second), CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, p.A, p.A.IPv4)
	nf, dir := startNfcapd(t, p.A, p.A.IPv4, port)
	res := harness.RunBinary(t, exec.Command(bin, "--read", path, "-j", "--ipfix", netip.AddrPortFrom(p.A.IPv4, uint16(port)).String()), &p.A)
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	nf.stop(t)
	out, err := exec.Command("nfdump", "-R", dir, "-o", "json", "proto udp").Output()
	if err != nil {
		t.Fatalf("nfdump: %v", err)
	}
	var recs []nfSpan
	if err := json.Unmarshal(out, &recs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02T15:04:05.000", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	min := func(m int) time.Time { return t0.Truncate(time.Minute).Add(time.Duration(m) * time.Minute) }
	want := []struct {
		first, last time.Time
		packets     uint64
	}{{t0, min(1), 8}, {min(1), min(2), 12}, {min(2), t0.Add(150 * time.Second), 11}}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want one per minute of capture time (3):\n%s", len(recs), out)
	}
	slices.SortFunc(recs, func(a, b nfSpan) int {
		return strings.Compare(a.First, b.First)
	})
	for i, w := range want {
		r := recs[i]
		if !at(r.First).Equal(w.first) || !at(r.Last).Equal(w.last) || r.Packets != w.packets || r.Bytes != w.packets*100 {
			t.Errorf("record %d: %s .. %s, %d packets, %d bytes; want %s .. %s, %d packets of 100 bytes",
				i, r.First, r.Last, r.Packets, r.Bytes, w.first.Local(), w.last.Local(), w.packets)
		}
	}
}

// tcpCollector reads IPFIX messages from connections to ln and decodes
// them with goflow2, adding up the packets of each UDP source port and
// noting the sequence number and template count of each connection.
type tcpCollector struct {
	ln    net.Listener
	mu    sync.Mutex
	ports map[uint16]uint64
	conns []tcpSession
	open  []net.Conn
}

// close closes the listener and every connection: the collector is gone.
func (c *tcpCollector) close() {
	c.ln.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.open {
		conn.Close()
	}
}

// tcpSession is what one connection carried.
type tcpSession struct {
	templates int    // template records
	firstSeq  uint32 // the first message's sequence number
	records   int
}

func (c *tcpCollector) serve(t *testing.T) {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		c.conns = append(c.conns, tcpSession{})
		c.open = append(c.open, conn)
		i := len(c.conns) - 1
		c.mu.Unlock()
		go func() {
			defer conn.Close()
			ts := netflow.CreateTemplateSystem()
			h := make([]byte, 16)
			for first := true; ; first = false {
				if _, err := io.ReadFull(conn, h); err != nil {
					return
				}
				b := make([]byte, binary.BigEndian.Uint16(h[2:]))
				copy(b, h)
				if _, err := io.ReadFull(conn, b[16:]); err != nil {
					return
				}
				var pk netflow.IPFIXPacket
				var v9 netflow.NFv9Packet
				if err := netflow.DecodeMessageVersion(bytes.NewBuffer(b), ts, &v9, &pk); err != nil {
					t.Errorf("goflow2 cannot decode a message: %v", err)
					return
				}
				c.mu.Lock()
				s := &c.conns[i]
				if first {
					s.firstSeq = pk.SequenceNumber
				}
				for _, fs := range pk.FlowSets {
					switch fs := fs.(type) {
					case netflow.TemplateFlowSet:
						s.templates += len(fs.Records)
					case netflow.DataFlowSet:
						s.records += len(fs.Records)
						for _, r := range fs.Records {
							var port uint16
							var packets uint64
							for _, v := range r.Values {
								switch {
								case v.PenProvided:
								case v.Type == 7:
									port = binary.BigEndian.Uint16(v.Value.([]byte))
								case v.Type == 2:
									packets = binary.BigEndian.Uint64(v.Value.([]byte))
								}
							}
							c.ports[port] += packets
						}
					}
				}
				c.mu.Unlock()
			}
		}()
	}
}

func listenCollector(t *testing.T, e testnet.End, addr string) *tcpCollector {
	t.Helper()
	var ln net.Listener
	if err := e.Do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatal(err)
	}
	c := &tcpCollector{ln: ln, ports: map[uint16]uint64{}}
	go c.serve(t)
	return c
}

// waitPackets waits until the collector has the packets of port.
func (c *tcpCollector) waitPackets(t *testing.T, port uint16, want uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c.mu.Lock()
		got := c.ports[port]
		c.mu.Unlock()
		if got == want {
			return
		}
	}
	t.Fatalf("the collector has %d packets of source port %d, want %d", c.ports[port], port, want)
}

// TestE2EIPFIXTCPAsNobody exports over TCP from a run that has switched to
// nobody with no capabilities: the collector goes away and comes back on
// the same port, and the exporter dials it again (nothing to resolve, no
// privilege needed), starting a new session with the templates and
// sequence number 0. What came while it was away is counted as not sent.
func TestE2EIPFIXTCPAsNobody(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	col := listenCollector(t, p.A, netip.AddrPortFrom(p.A.IPv4, 0).String())
	addr := col.ln.Addr().String()
	tl := harness.StartCapture(t, p.A, bin, "--ipfix", "tcp://"+addr, "--ipfix-interval", "1s")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tl.PID()))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Uid:\s+65534\s+65534\s+65534\s+65534$`).Match(status) || !regexp.MustCompile(`(?m)^CapEff:\s+0+$`).Match(status) {
		t.Fatalf("the run is not nobody without capabilities:\n%s", status)
	}
	payload := make([]byte, 40)
	send := func(port uint16, n int) {
		harness.SendUDPFlow(t, harness.NewUDPFlow(fmt.Sprint(port), p.B, p.A, netip.AddrPortFrom(p.B.IPv4, port), netip.AddrPortFrom(p.A.IPv4, 7100)), payload, n)
	}
	send(44001, 30)
	col.waitPackets(t, 44001, 30)
	col.close()
	col.mu.Lock()
	first := col.conns[0]
	col.mu.Unlock()
	// Away: the listener and the connection close.
	time.Sleep(100 * time.Millisecond)
	send(44002, 20)
	time.Sleep(3 * time.Second)
	back := listenCollector(t, p.A, addr)
	defer back.close()
	send(44003, 10)
	defer func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", tl.Stderr())
		}
	}()
	back.waitPackets(t, 44003, 10)
	harness.StopCapture(t, tl, syscall.SIGINT)

	if first.templates != 2 || first.firstSeq != 0 {
		t.Errorf("first session: %d templates, first sequence number %d", first.templates, first.firstSeq)
	}
	back.mu.Lock()
	defer back.mu.Unlock()
	if len(back.conns) != 1 || back.conns[0].templates != 2 || back.conns[0].firstSeq != 0 {
		t.Errorf("after the collector came back: %+v, want one session that starts with both templates and sequence number 0", back.conns)
	}
	if back.ports[44002] != 0 {
		t.Errorf("records exported while the collector was away reached it: %d packets", back.ports[44002])
	}
	m := regexp.MustCompile(`IPFIX export ended.* not_sent=(\d+)`).FindStringSubmatch(tl.Stderr())
	if m == nil || m[1] == "0" {
		t.Errorf("the log does not count what was not sent while the collector was away:\n%s", tl.Stderr())
	}
}

// TestE2EIPFIXDaemon exports from a daemon (--listen) whose scrapes drain
// the same table between exports, with a report at the end (-j): every
// datagram is in exactly one IPFIX record, one report row and the
// counters.
func TestE2EIPFIXDaemon(t *testing.T) {
	needNfdump(t)
	bin, p := harness.BinaryAndPair(t)
	const (
		addr    = "127.0.0.1:9864"
		batches = 5
		per     = 40
		size    = 80
	)
	port := freePort(t, p.A, p.A.IPv4)
	nf, dir := startNfcapd(t, p.A, p.A.IPv4, port)
	tl := harness.StartTool(t, p.A, bin, "-i", p.A.Link, "-t", "0", "-j", "--listen", addr,
		"--ipfix", netip.AddrPortFrom(p.A.IPv4, uint16(port)).String(), "--ipfix-interval", "1s")
	f := sentUDP{harness.NewUDPFlow("IPv4 B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 43101), netip.AddrPortFrom(p.A.IPv4, 7101)), batches * per}
	for range batches {
		harness.SendUDPFlow(t, f.UDPFlow, make([]byte, size), per)
		harness.ScrapeText(t, p.A, addr) // a drain
		// Long enough for the next scrape to drain anew, not to reuse
		// this one's answer.
		time.Sleep(metrics.ReuseWithin + 100*time.Millisecond)
	}
	fams := harness.ScrapeText(t, p.A, addr)
	pk, _ := harness.FamilyValue(fams, "pktstat_packets_total", map[string]string{"direction": "in", "protocol": "UDP"})
	rows := harness.StopCapture(t, tl, syscall.SIGTERM)
	nf.stop(t)
	if pk != float64(f.n) {
		t.Errorf("pktstat_packets_total of UDP in: %v, sent %d", pk, f.n)
	}
	got, total, _ := nfdumpFlows(t, dir)
	frame := uint64(harness.EthLen + harness.IPv4Len + harness.UDPLen + size)
	want, wantTotal := reportFlows(t, rows)
	k := flowKey{17, f.Src.Addr().String(), f.Dst.Addr().String(), f.Src.Port(), f.Dst.Port()}
	if g, w := got[k], (counts{uint64(f.n), uint64(f.n) * frame}); g != w || want[k] != w {
		t.Errorf("nfdump %+v, the report %+v; sent %+v", g, want[k], w)
	}
	if total != wantTotal {
		t.Errorf("nfdump's totals %+v, the report's %+v", total, wantTotal)
	}
}
