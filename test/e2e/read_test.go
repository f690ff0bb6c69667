package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// pcapOut is a pcap file that a test writes frames into with gopacket.
type pcapOut struct {
	t *testing.T
	f *os.File
	w *pcapgo.Writer
}

// createPcap creates an Ethernet pcap file at path, closed when the test
// ends (close closes it before).
func createPcap(t *testing.T, path string) *pcapOut {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	return &pcapOut{t: t, f: f, w: w}
}

// write serializes the layers (lengths and checksums computed) into one
// frame captured at at, and returns its length.
func (p *pcapOut) write(at time.Time, ls ...gopacket.SerializableLayer) int {
	p.t.Helper()
	for _, l := range ls {
		if n, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			for _, nl := range ls {
				if nl, ok := nl.(gopacket.NetworkLayer); ok {
					_ = n.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		p.t.Fatal(err)
	}
	b := buf.Bytes()
	if err := p.w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		p.t.Fatal(err)
	}
	return len(b)
}

func (p *pcapOut) close() { p.f.Close() }

// readCapture is a capture the tests write with gopacket: IPv4 and IPv6
// TCP, UDP and ICMP in both directions, a VLAN-tagged flow, fragments
// and ARP, with known counts per conversation.
func writeCapture(t *testing.T, path string) {
	t.Helper()
	out := createPcap(t, path)
	defer out.close()
	macA := net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB := net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
	a4, b4 := net.IP{198, 18, 0, 1}, net.IP{198, 18, 0, 2}
	a6, b6 := net.ParseIP("2001:2::1"), net.ParseIP("2001:2::2")
	at := time.Unix(1_700_000_000, 0)
	write := func(ls ...gopacket.SerializableLayer) {
		at = at.Add(10 * time.Millisecond)
		out.write(at, ls...)
	}
	eth := func(src, dst net.HardwareAddr, typ layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: typ}
	}
	ip4 := func(src, dst net.IP, p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: p, SrcIP: src, DstIP: dst}
	}
	ip6 := func(src, dst net.IP, p layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p, SrcIP: src, DstIP: dst}
	}
	pay := func(n int) gopacket.Payload { return make(gopacket.Payload, n) }
	for i := range 7 { // IPv4 TCP, both ways
		write(eth(macA, macB, layers.EthernetTypeIPv4), ip4(a4, b4, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 80, ACK: true, Seq: uint32(i)}, pay(100*i))
		if i%2 == 0 {
			write(eth(macB, macA, layers.EthernetTypeIPv4), ip4(b4, a4, layers.IPProtocolTCP), &layers.TCP{SrcPort: 80, DstPort: 40000, ACK: true}, pay(1000))
		}
	}
	for i := range 5 { // IPv4 UDP, both ways
		write(eth(macA, macB, layers.EthernetTypeIPv4), ip4(a4, b4, layers.IPProtocolUDP), &layers.UDP{SrcPort: 5353, DstPort: 53}, pay(30+i))
		write(eth(macB, macA, layers.EthernetTypeIPv4), ip4(b4, a4, layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 5353}, pay(200))
	}
	for range 3 { // ICMP echo
		write(eth(macA, macB, layers.EthernetTypeIPv4), ip4(a4, b4, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7}, pay(56))
	}
	for i := range 4 { // IPv6 TCP and UDP
		write(eth(macA, macB, layers.EthernetTypeIPv6), ip6(a6, b6, layers.IPProtocolTCP), &layers.TCP{SrcPort: 41000, DstPort: 443, ACK: true}, pay(500+i))
		write(eth(macB, macA, layers.EthernetTypeIPv6), ip6(b6, a6, layers.IPProtocolUDP), &layers.UDP{SrcPort: 123, DstPort: 123}, pay(48))
	}
	for range 3 { // VLAN 10, UDP
		write(eth(macA, macB, layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4},
			ip4(a4, b4, layers.IPProtocolUDP), &layers.UDP{SrcPort: 7000, DstPort: 7001}, pay(64))
	}
	for range 2 { // ARP
		write(eth(macA, layers.EthernetBroadcast, layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: macA, SourceProtAddress: a4, DstHwAddress: make([]byte, 6), DstProtAddress: b4})
	}
	// A UDP datagram in two IPv4 fragments.
	first := ip4(a4, b4, layers.IPProtocolUDP)
	first.Flags, first.Id = layers.IPv4MoreFragments, 99
	write(eth(macA, macB, layers.EthernetTypeIPv4), first, gopacket.Payload(append([]byte{0x1f, 0x40, 0x1f, 0x41, 0, 40, 0, 0}, make([]byte, 24)...)))
	second := ip4(a4, b4, layers.IPProtocolUDP)
	second.FragOffset, second.Id = 4, 99
	write(eth(macA, macB, layers.EthernetTypeIPv4), second, pay(8))
}

// convRow is one conversation of tshark's -z conv table: frames and bytes
// from A to B and from B to A.
type convRow struct {
	a, b              string
	abFrames, abBytes uint64
	baFrames, baBytes uint64
	exact             bool // tshark wrote the bytes in bytes, not kB or MB
}

// tsharkConv runs tshark -q -z conv,kind on path.
func tsharkConv(t *testing.T, path, kind string) []convRow {
	t.Helper()
	out, err := exec.Command("tshark", "-n", "-o", "ip.defragment:FALSE", "-r", path, "-q", "-z", "conv,"+kind).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -z conv,%s: %v\n%s", kind, err, out)
	}
	// "198.18.0.1:40000 <-> 198.18.0.2:80  4 1,234 bytes  7 8,910 bytes ..."
	// tshark's columns: <- (B to A) frames and bytes, then -> (A to B).
	// Above 10 kB tshark rounds to kB or MB: such counts are left 0,
	// and exact marks the row.
	re := regexp.MustCompile(`^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+([\d,]+) (bytes|kB|MB)\s+(\d+)\s+([\d,]+) (bytes|kB|MB)`)
	var rows []convRow
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	num := func(s string) uint64 {
		v, err := strconv.ParseUint(strings.ReplaceAll(s, ",", ""), 10, 64)
		if err != nil {
			t.Fatalf("tshark number %q: %v", s, err)
		}
		return v
	}
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		c := convRow{a: m[1], b: m[2], baFrames: num(m[3]), abFrames: num(m[6]), exact: m[5] == "bytes" && m[8] == "bytes"}
		if c.exact {
			c.baBytes, c.abBytes = num(m[4]), num(m[7])
		}
		rows = append(rows, c)
	}
	if len(rows) == 0 {
		t.Fatalf("no conversations in tshark's output:\n%s", out)
	}
	return rows
}

// endpoint is how tshark names one end: "addr:port", or "addr" for
// conv,ipv6.
func endpoint(ip string, port uint16, withPort bool) string {
	if withPort {
		return fmt.Sprintf("%s:%d", ip, port)
	}
	return ip
}

// wantTshark checks rows against tshark's conversations of kind: each
// direction's packets and bytes summed over the rows between the two ends
// (of proto, or of every protocol but ARP when proto is "").
func wantTshark(t *testing.T, rows []harness.Row, path, kind, proto string, withPort bool) {
	t.Helper()
	for _, c := range tsharkConv(t, path, kind) {
		if !c.exact {
			t.Fatalf("tshark rounded %s <-> %s to kB: keep the test's conversations under 10 kB", c.a, c.b)
		}
		sum := func(from, to string) (p, b uint64) {
			for _, r := range rows {
				if proto != "" && !strings.EqualFold(r.Proto, proto) {
					continue
				}
				if proto == "" && r.ARPOp != "" {
					continue // ARP's addresses are not an IP conversation
				}
				if endpoint(r.SrcIP, r.SrcPort, withPort) == from && endpoint(r.DstIP, r.DstPort, withPort) == to {
					p, b = p+r.Packets, b+r.Bytes
				}
			}
			return p, b
		}
		p, b := sum(c.a, c.b)
		if p != c.abFrames || b != c.abBytes {
			t.Errorf("conv,%s %s -> %s: tool %d packets %d bytes, tshark %d frames %d bytes", kind, c.a, c.b, p, b, c.abFrames, c.abBytes)
		}
		p, b = sum(c.b, c.a)
		if p != c.baFrames || b != c.baBytes {
			t.Errorf("conv,%s %s -> %s: tool %d packets %d bytes, tshark %d frames %d bytes", kind, c.b, c.a, p, b, c.baFrames, c.baBytes)
		}
	}
}

func needTshark(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("needs tshark (Debian's tshark package) as the independent decoder")
	}
}

// TestE2EReadMatchesTshark: a gopacket-written pcap replayed through the
// TC programs gives, per conversation and direction, the frames and bytes
// tshark counts (-z conv,tcp, conv,udp, conv,ipv6), with TC and with XDP.
func TestE2EReadMatchesTshark(t *testing.T) {
	// Files only, no traffic: runs beside the other read tests, each
	// start-up mostly the verifier on one CPU.
	t.Parallel()
	needTshark(t)
	bin := harness.Binary(t)
	path := filepath.Join(t.TempDir(), "mix.pcap")
	writeCapture(t, path)
	for _, mode := range [][]string{nil, {"-x"}} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			res := harness.RunBinary(t, exec.Command(bin, append([]string{"--read", path, "-j"}, mode...)...), nil)
			if res.Code != 0 {
				t.Fatalf("exit %d: %s", res.Code, res.Stderr)
			}
			rows, err := harness.ParseRows(res.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Dir != "in" {
					t.Errorf("a pcap without directions counts everything as ingress; row %+v is %q", r, r.Dir)
				}
			}
			wantTshark(t, rows, path, "tcp", "tcp", true)
			wantTshark(t, rows, path, "udp", "udp", true)
			wantTshark(t, rows, path, "ipv6", "", false)
			// conv,ip: every IPv4 packet between the two addresses, ICMP
			// and both fragments included.
			wantTshark(t, rows, path, "ip", "", false)
			// Fragments: tshark runs without reassembly (ip.defragment
			// off), so its UDP conversation holds the first fragment, as
			// the tool's port row does; the tool counts the second in a
			// port-less fragment row of its own.
			var frag []harness.Row
			for _, r := range rows {
				if r.Fragment {
					frag = append(frag, r)
				}
			}
			if len(frag) != 1 || frag[0].Packets != 1 || frag[0].Bytes != 60 || frag[0].Proto != "UDP" {
				t.Errorf("the second fragment's row: %+v", frag)
			}
			arp := 0
			for _, r := range rows {
				if r.Proto == "ARP" {
					arp += int(r.Packets)
				}
			}
			if arp != 2 {
				t.Errorf("ARP: %d packets, want 2", arp)
			}
		})
	}
	// The same packets as Wireshark's own pcapng writer puts them
	// (section and interface options, enhanced packet blocks).
	t.Run("pcapng", func(t *testing.T) {
		ng := filepath.Join(t.TempDir(), "mix.pcapng")
		if out, err := exec.Command("editcap", "-F", "pcapng", path, ng).CombinedOutput(); err != nil {
			t.Fatalf("editcap: %v: %s", err, out)
		}
		var got [2][]harness.Row
		for i, file := range []string{path, ng} {
			res := harness.RunBinary(t, exec.Command(bin, "--read", file, "-j"), nil)
			if res.Code != 0 {
				t.Fatalf("%s: exit %d: %s", file, res.Code, res.Stderr)
			}
			rows, err := harness.ParseRows(res.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			got[i] = rows
		}
		wantSameRows(t, got[1], got[0])
	})
}

// rowKey names a row for comparisons between runs.
func rowKey(r harness.Row) string {
	return fmt.Sprintf("%s %s:%d > %s:%d vlan %d frag %v %s %s", r.Proto, r.SrcIP, r.SrcPort, r.DstIP, r.DstPort, r.VLAN, r.Fragment, r.Dir, r.ARPOp)
}

// wantSameRows fails unless two reports have the same rows with the same
// packets and bytes (rates may differ).
func wantSameRows(t *testing.T, got, want []harness.Row) {
	t.Helper()
	counts := func(rows []harness.Row) map[string][2]uint64 {
		m := map[string][2]uint64{}
		for _, r := range rows {
			c := m[rowKey(r)]
			m[rowKey(r)] = [2]uint64{c[0] + r.Packets, c[1] + r.Bytes}
		}
		return m
	}
	g, w := counts(got), counts(want)
	for k, c := range w {
		if g[k] != c {
			t.Errorf("row %s: %d packets %d bytes, want %d packets %d bytes", k, g[k][0], g[k][1], c[0], c[1])
		}
	}
	for k, c := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("unexpected row %s: %d packets %d bytes", k, c[0], c[1])
		}
	}
}

// TestE2EReadCapabilities: --read as the user nobody with exactly
// CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (capsh), the file on standard
// input (nobody cannot open the test's directory), gives the rows a root
// run gives, and once the programs are loaded keeps no capability (CAP_BPF
// before Linux 6.5), with no_new_privs; without any one of the three it
// fails with one line that names it.
func TestE2EReadCapabilities(t *testing.T) {
	// Files only, no traffic: runs beside the other read tests, each
	// start-up mostly the verifier on one CPU.
	t.Parallel()
	bin := harness.Binary(t)
	path := filepath.Join(t.TempDir(), "mix.pcap")
	writeCapture(t, path)
	root := harness.RunBinary(t, exec.Command(bin, "--read", path, "-j"), nil)
	if root.Code != 0 {
		t.Fatalf("as root: exit %d: %s", root.Code, root.Stderr)
	}
	want, err := harness.ParseRows(root.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	runAs := func(caps []string) harness.BinResult {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command("capsh", capshArgs(t, caps, bin, "--read", "-", "-j", "--debug")...)
		cmd.Stdin = f
		return harness.RunBinary(t, cmd, nil)
	}
	res := runAs(modeCaps)
	if res.Code != 0 {
		t.Fatalf("with %v: exit %d: %s", modeCaps, res.Code, res.Stderr)
	}
	got, err := harness.ParseRows(res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	wantSameRows(t, got, want)
	release, err := kernel.Release()
	if err != nil {
		t.Fatal(err)
	}
	wantEff := "CapEff=0x0"
	if kernel.Before(release, 6, 5) {
		wantEff = fmt.Sprintf("CapEff=%#x", uint64(1)<<unix.CAP_BPF)
	}
	if !strings.Contains(res.Stderr, wantEff+" ") || !strings.Contains(res.Stderr, "NoNewPrivs=1") {
		t.Errorf("after loading, want %s and NoNewPrivs=1 in the debug log:\n%s", wantEff, res.Stderr)
	}
	for _, missing := range modeCaps {
		caps := slices.DeleteFunc(slices.Clone(modeCaps), func(c string) bool { return c == missing })
		res := runAs(caps)
		name := strings.ToUpper(missing)
		if res.Code != 1 || !strings.Contains(res.Stderr, "missing "+name) {
			t.Errorf("without %s: exit %d, stderr %q; want exit 1 naming it", name, res.Code, res.Stderr)
		}
	}
}

// startTcpdump writes what e's veth carries to path, and returns once
// tcpdump listens; stop ends it and waits.
func startTcpdump(t *testing.T, e testnet.End, path string) (stop func()) {
	t.Helper()
	return startTcpdumpOn(t, e, e.Link, path)
}

// startTcpdumpOn is startTcpdump on the interface ifname of e's namespace
// (any: every interface, as a Linux cooked capture).
func startTcpdumpOn(t *testing.T, e testnet.End, ifname, path string) (stop func()) {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("needs tcpdump to capture the veth")
	}
	// A 64 MiB buffer: GSO super-packets of 64 KiB fill the default one.
	// --immediate-mode: packets reach the file at once, not when a ring
	// block fills or times out, so that none is left behind at SIGINT.
	cmd := e.Command("tcpdump", "-n", "-U", "--immediate-mode", "-s", "0", "-B", "65536", "-i", ifname, "-w", path)
	var stderr testnet.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		// Let the file settle: tcpdump writes what it read already.
		for last := int64(-1); ; time.Sleep(200 * time.Millisecond) {
			st, err := os.Stat(path)
			if err != nil || st.Size() == last {
				break
			}
			last = st.Size()
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
			if !regexp.MustCompile(`(?m)^0 packets dropped by kernel`).MatchString(stderr.String()) {
				t.Errorf("tcpdump dropped packets, so its file cannot match: %s", stderr.String())
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("tcpdump did not stop: %s", stderr.String())
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(testnet.Patience(10 * time.Second))
	for !strings.Contains(stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return stop
}

// ours keeps the rows of the test's own flows (UDP and TCP ports the
// test chose), leaving out what the namespaces sent by themselves
// (neighbour discovery) while tcpdump ran and the tool did not.
func ours(rows []harness.Row, ports ...uint16) []harness.Row {
	var kept []harness.Row
	for _, r := range rows {
		if slices.Contains(ports, r.SrcPort) || slices.Contains(ports, r.DstPort) {
			kept = append(kept, r)
		}
	}
	return kept
}

// TestE2EReadRoundTrip: tcpdump -w captures A's veth while the tool counts
// it live; UDP both ways and a 4 MB TCP transfer, whose segments cross
// the veth as GSO super-packets that tcpdump writes as single frames.
// --read of that file, with --direction-by-mac naming A's MAC, gives the
// live run's rows, packet for packet and byte for byte: the file's
// super-packets count as ceil(payload / (SYN MSS - options)) segments,
// which is the gso_segs that the live TC program counts.
func TestE2EReadRoundTrip(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	harness.NoSACK(t, p)
	path := filepath.Join(t.TempDir(), "veth.pcap")
	dst := netip.AddrPortFrom(p.B.IPv4, 5201)
	var ln *net.TCPListener
	if err := p.B.Do(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	stopDump := startTcpdump(t, p.A, path)
	tl := harness.StartCapture(t, p.A, bin)
	ab := harness.NewUDPFlow("A to B", p.A, p.B, netip.AddrPortFrom(p.A.IPv4, 7100), netip.AddrPortFrom(p.B.IPv4, 7101))
	ba := harness.NewUDPFlow("B to A, IPv6", p.B, p.A, netip.AddrPortFrom(p.B.IPv6, 7102), netip.AddrPortFrom(p.A.IPv6, 7103))
	harness.SendUDPFlow(t, ab, harness.Pattern(300), 40)
	harness.SendUDPFlow(t, ba, harness.Pattern(700), 25)
	harness.SendTCP(t, p, ln, netip.AddrPortFrom(p.A.IPv4, 41300), dst, 4<<20)
	live := harness.StopCapture(t, tl, syscall.SIGINT)
	stopDump()

	res := harness.RunBinary(t, exec.Command(bin, "--read", path, "-j", "--direction-by-mac", p.A.MAC.String()), nil)
	if res.Code != 0 {
		t.Fatalf("--read: exit %d: %s", res.Code, res.Stderr)
	}
	offline, err := harness.ParseRows(res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	ports := []uint16{7100, 7101, 7102, 7103, 41300, 5201}
	liveOurs := ours(live, ports...)
	if len(liveOurs) != 4 {
		t.Fatalf("live rows of the test's flows: %d, want 4 (two UDP flows, the TCP connection both ways): %+v", len(liveOurs), liveOurs)
	}
	wantSameRows(t, ours(offline, ports...), liveOurs)
	// The file did hold super-packets: fewer frames than wire segments.
	frames := tsharkConv(t, path, "tcp")
	var tcpFrames, tcpLive uint64
	for _, c := range frames {
		tcpFrames += c.abFrames + c.baFrames
	}
	for _, r := range liveOurs {
		if r.Proto == "TCP" {
			tcpLive += r.Packets
		}
	}
	if tcpFrames >= tcpLive {
		t.Logf("the capture holds %d TCP frames for %d wire segments: no GRO/GSO super-packets this time", tcpFrames, tcpLive)
	} else {
		t.Logf("the capture holds %d TCP frames for %d wire segments", tcpFrames, tcpLive)
	}
}

// TestE2EReadIntervals: --interval in capture time. A file whose packets
// span 3.6 s of its own clock, with one empty second, gives one NDJSON
// line per second of that clock, aligned to whole seconds, each with the
// packets of its second and a rate over it; the last line ends at the
// last packet.
func TestE2EReadIntervals(t *testing.T) {
	// Files only, no traffic: runs beside the other read tests, each
	// start-up mostly the verifier on one CPU.
	t.Parallel()
	bin := harness.Binary(t)
	path := filepath.Join(t.TempDir(), "timed.pcap")
	out := createPcap(t, path)
	base := time.Unix(1_700_000_000, 0).UTC()
	offsets := []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, 900 * time.Millisecond,
		1100 * time.Millisecond, 3400 * time.Millisecond, 3600 * time.Millisecond}
	var frameLen int
	for _, off := range offsets {
		frameLen = out.write(base.Add(off),
			&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{198, 18, 0, 1}, DstIP: net.IP{198, 18, 0, 2}},
			&layers.UDP{SrcPort: 9000, DstPort: 9001}, gopacket.Payload(make([]byte, 100)))
	}
	out.close()
	res := harness.RunBinary(t, exec.Command(bin, "--read", path, "-j", "--interval", "1s"), nil)
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	ivs, err := harness.ParseIntervals(res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		end     time.Duration
		length  float64
		packets uint64
	}{{time.Second, 1, 3}, {2 * time.Second, 1, 1}, {3 * time.Second, 1, 0}, {3600 * time.Millisecond, 0.6, 2}}
	if len(ivs) != len(want) {
		t.Fatalf("%d NDJSON lines, want %d:\n%s", len(ivs), len(want), res.Stdout)
	}
	for i, w := range want {
		iv := ivs[i]
		if !iv.Time.Equal(base.Add(w.end)) || iv.Interval < w.length-1e-9 || iv.Interval > w.length+1e-9 || iv.Totals.Packets != w.packets ||
			iv.Totals.Bytes != w.packets*uint64(frameLen) {
			t.Errorf("line %d: ends %s after %gs with %d packets %d bytes; want %s, %gs, %d packets %d bytes",
				i, iv.Time, iv.Interval, iv.Totals.Packets, iv.Totals.Bytes, base.Add(w.end), w.length, w.packets, w.packets*uint64(frameLen))
		}
		if w.packets > 0 {
			rate := float64(w.packets*uint64(frameLen)) * 8 / w.length
			if len(iv.Rows) != 1 || iv.Rows[0].Bitrate < rate*0.999 || iv.Rows[0].Bitrate > rate*1.001 {
				t.Errorf("line %d: rows %+v, want one at %.0f bit/s of capture time", i, iv.Rows, rate)
			}
		}
	}
}

// cutCapture copies the pcap at from to to, keeping at most snap bytes
// of each packet (as tcpdump -s does), and returns the packets and their
// length on the wire.
func cutCapture(t *testing.T, from, to string, snap int) (packets, bytes uint64) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(uint32(snap), layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		data = data[:min(len(data), snap)]
		ci.CaptureLength = len(data)
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
		packets, bytes = packets+1, bytes+uint64(ci.Length)
	}
	return packets, bytes
}

// TestE2EReadSnapLength: packets cut by a snap length count with their
// length on the wire. Cut after every header (80 bytes), the rows equal
// tshark's conversations, which count frame.len too, and no row is
// marked; cut inside the headers (40 bytes), every packet still counts
// with its full length, and the log says how many the parser missed
// bytes of.
func TestE2EReadSnapLength(t *testing.T) {
	// Files only, no traffic: runs beside the other read tests, each
	// start-up mostly the verifier on one CPU.
	t.Parallel()
	needTshark(t)
	bin := harness.Binary(t)
	dir := t.TempDir()
	full := filepath.Join(dir, "mix.pcap")
	writeCapture(t, full)
	cut := filepath.Join(dir, "cut80.pcap")
	cutCapture(t, full, cut, 80)
	res := harness.RunBinary(t, exec.Command(bin, "--read", cut, "-j"), nil)
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	rows, err := harness.ParseRows(res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	wantTshark(t, rows, cut, "tcp", "tcp", true)
	wantTshark(t, rows, cut, "udp", "udp", true)
	wantTshark(t, rows, cut, "ipv6", "", false)
	if strings.Contains(res.Stderr, "snap length") {
		t.Errorf("every header was whole, yet the log warns: %s", res.Stderr)
	}

	cut = filepath.Join(dir, "cut40.pcap")
	packets, bytes := cutCapture(t, full, cut, 40)
	res = harness.RunBinary(t, exec.Command(bin, "--read", cut, "-j"), nil)
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	rows, err = harness.ParseRows(res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	var gotP, gotB uint64
	for _, r := range rows {
		gotP, gotB = gotP+r.Packets, gotB+r.Bytes
	}
	if gotP != packets || gotB != bytes {
		t.Errorf("cut at 40 bytes: %d packets %d bytes, want the file's %d packets %d bytes on the wire", gotP, gotB, packets, bytes)
	}
	if !strings.Contains(res.Stderr, "snap length") {
		t.Errorf("headers were cut, yet the log does not say so: %s", res.Stderr)
	}
}

// TestE2EReadGRO: a TCP super-packet longer than the MTU counts as its
// wire segments. tshark counts it as one frame, so the test converts:
// the tool's packets are tshark's frames plus (segments - 1) per
// super-packet, its bytes tshark's plus (segments - 1) copies of the
// headers (Ethernet, IPv4, TCP with its options). Segments are
// ceil(payload / (the SYNs' MSS - the options)). A connection whose MSS
// the file does not show counts its super-packet once, and its row is
// marked estimated.
func TestE2EReadGRO(t *testing.T) {
	// Files only, no traffic: runs beside the other read tests, each
	// start-up mostly the verifier on one CPU.
	t.Parallel()
	needTshark(t)
	bin := harness.Binary(t)
	path := filepath.Join(t.TempDir(), "gro.pcap")
	out := createPcap(t, path)
	at := time.Unix(1_700_000_000, 0)
	ts := []layers.TCPOption{{OptionType: layers.TCPOptionKindNop, OptionLength: 1}, {OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}}
	mss := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}} // 1460
	write := func(src, dst net.IP, sport, dport uint16, tcp layers.TCP, payload int) {
		tcp.SrcPort, tcp.DstPort = layers.TCPPort(sport), layers.TCPPort(dport)
		at = at.Add(time.Millisecond)
		out.write(at, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}, &tcp, gopacket.Payload(make([]byte, payload)))
	}
	a, b := net.IP{198, 18, 0, 1}, net.IP{198, 18, 0, 2}
	const seg = 1460 - 12 // the timestamps option's 12 bytes come out of the MSS
	write(a, b, 42000, 80, layers.TCP{SYN: true, Options: mss}, 0)
	write(b, a, 80, 42000, layers.TCP{SYN: true, ACK: true, Options: mss}, 0)
	write(a, b, 42000, 80, layers.TCP{ACK: true, Options: ts}, 4*seg)    // 4 segments
	write(a, b, 42000, 80, layers.TCP{ACK: true, Options: ts}, 2*seg+17) // 3 segments
	write(a, b, 43000, 80, layers.TCP{ACK: true, Options: ts}, 5*seg)    // no SYN: once, estimated
	out.close()

	res := harness.RunBinary(t, exec.Command(bin, "--read", path, "-j"), nil)
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	rows, err := harness.ParseRows(res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	const hdr = 14 + 20 + 32
	matched := 0
	extra := map[string]uint64{"198.18.0.1:42000": 3 + 2} // segments beyond the frames
	for _, c := range tsharkConv(t, path, "tcp") {
		if !c.exact {
			t.Fatalf("tshark rounded %s <-> %s", c.a, c.b)
		}
		for _, r := range rows {
			if fmt.Sprintf("%s:%d", r.SrcIP, r.SrcPort) != c.a || fmt.Sprintf("%s:%d", r.DstIP, r.DstPort) != c.b {
				continue
			}
			matched++
			x := extra[c.a]
			if r.Packets != c.abFrames+x || r.Bytes != c.abBytes+x*hdr {
				t.Errorf("%s -> %s: %d packets %d bytes; want tshark's %d frames + %d, %d bytes + %d x %d",
					c.a, c.b, r.Packets, r.Bytes, c.abFrames, x, c.abBytes, x, hdr)
			}
			if r.Estimated != (r.SrcPort == 43000) {
				t.Errorf("%s -> %s: estimated %v", c.a, c.b, r.Estimated)
			}
		}
	}
	if matched != 2 {
		t.Errorf("%d of tshark's two A-to-B conversations have a row: %+v", matched, rows)
	}
	if !strings.Contains(res.Stderr, "GRO super-packets") {
		t.Errorf("the log does not say a super-packet was counted once: %s", res.Stderr)
	}
}

// TestE2EReadFilterGroup: a filter expression and --group-by work on a
// file as live. With 'udp', the rows are exactly tshark's UDP
// conversations; with --group-by proto, each protocol's row adds up that
// protocol's rows of the plain run.
func TestE2EReadFilterGroup(t *testing.T) {
	// Files only, no traffic: runs beside the other read tests, each
	// start-up mostly the verifier on one CPU.
	t.Parallel()
	needTshark(t)
	bin := harness.Binary(t)
	path := filepath.Join(t.TempDir(), "mix.pcap")
	writeCapture(t, path)
	run := func(args ...string) []harness.Row {
		res := harness.RunBinary(t, exec.Command(bin, append([]string{"--read", path, "-j"}, args...)...), nil)
		if res.Code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.Code, res.Stderr)
		}
		rows, err := harness.ParseRows(res.Stdout)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	udp := run("udp")
	for _, r := range udp {
		// The report's last element says what the filter dropped: no proto.
		if r.Proto != "UDP" && r.Proto != "" {
			t.Errorf("filter udp kept %+v", r)
		}
	}
	wantTshark(t, udp, path, "udp", "udp", true)

	all := run()
	grouped := run("--group-by", "proto")
	want := map[string][2]uint64{}
	for _, r := range all {
		c := want[r.Proto]
		want[r.Proto] = [2]uint64{c[0] + r.Packets, c[1] + r.Bytes}
	}
	if len(grouped) != len(want) {
		t.Errorf("--group-by proto: %d rows, want %d: %+v", len(grouped), len(want), grouped)
	}
	for _, r := range grouped {
		if w := want[r.Proto]; w != [2]uint64{r.Packets, r.Bytes} {
			t.Errorf("--group-by proto, %s: %d packets %d bytes, want %d %d", r.Proto, r.Packets, r.Bytes, w[0], w[1])
		}
	}
}

// TestE2EReadCooked: tcpdump -i any in A's namespace writes a Linux
// cooked capture (SLL2 with today's libpcap, SLL with older ones) of
// UDP datagrams A sends and receives. --read turns each frame into an
// Ethernet frame: the packets equal tshark's conv,udp, the bytes are
// tshark's less the cooked header's surplus over Ethernet's 14 bytes
// (6 a frame for SLL2, 2 for SLL), and the packet type gives the
// direction: A's datagrams out, B's in.
func TestE2EReadCooked(t *testing.T) {
	needTshark(t)
	bin, p := harness.BinaryAndPair(t)
	path := filepath.Join(t.TempDir(), "any.pcap")
	stop := startTcpdumpOn(t, p.A, "any", path)
	ab := harness.NewUDPFlow("A to B", p.A, p.B, netip.AddrPortFrom(p.A.IPv4, 7200), netip.AddrPortFrom(p.B.IPv4, 7201))
	ba := harness.NewUDPFlow("B to A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 7202), netip.AddrPortFrom(p.A.IPv4, 7203))
	harness.SendUDPFlow(t, ab, harness.Pattern(200), 30)
	harness.SendUDPFlow(t, ba, harness.Pattern(300), 20) // under tshark's 10 kB rounding
	stop()
	lt, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "frame.encap_type", "-c", "1").Output()
	if err != nil {
		t.Fatal(err)
	}
	surplus := uint64(2) // SLL: 16 bytes
	if strings.TrimSpace(string(lt)) == "210" {
		surplus = 6 // SLL2 (Wireshark's encapsulation 210): 20 bytes
	}
	t.Logf("tcpdump -i any wrote Wireshark encapsulation %s: %d bytes a frame over Ethernet's header", strings.TrimSpace(string(lt)), surplus)
	res := harness.RunBinary(t, exec.Command(bin, "--read", path, "-j"), nil)
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "Linux cooked capture") {
		t.Errorf("no note of the conversion: %s", res.Stderr)
	}
	rows, err := harness.ParseRows(res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	rows = ours(rows, 7200, 7201, 7202, 7203)
	if len(rows) != 2 {
		t.Fatalf("rows of the test's flows: %+v", rows)
	}
	for _, c := range tsharkConv(t, path, "udp") {
		if !c.exact {
			t.Fatalf("tshark rounded %s <-> %s", c.a, c.b)
		}
		for _, r := range rows {
			from, to := fmt.Sprintf("%s:%d", r.SrcIP, r.SrcPort), fmt.Sprintf("%s:%d", r.DstIP, r.DstPort)
			var frames, bytes uint64
			switch {
			case from == c.a && to == c.b:
				frames, bytes = c.abFrames, c.abBytes
			case from == c.b && to == c.a:
				frames, bytes = c.baFrames, c.baBytes
			default:
				continue
			}
			if r.Packets != frames || r.Bytes != bytes-surplus*frames {
				t.Errorf("%s -> %s: %d packets %d bytes; want tshark's %d frames, %d bytes less %d a frame", from, to, r.Packets, r.Bytes, frames, bytes, surplus)
			}
			if want := map[uint16]string{7200: "out", 7202: "in"}[r.SrcPort]; r.Dir != want {
				t.Errorf("%s -> %s: dir %q, want %q from the packet type", from, to, r.Dir, want)
			}
		}
	}
}
