package capture

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// mixedCapture is the capture the filter is held to tcpdump on: IPv4 and
// IPv6 TCP, UDP, SCTP, ICMP and ICMPv6, ARP, non-first IPv4 fragments,
// some of it 802.1Q-tagged with VLAN 100 or 200, between many addresses
// of 198.18.0.0/15 and 2001:2::/48 on varied ports. No IPv6 extension
// headers: tcpdump's ip6 primitives do not look through them.
func mixedCapture(t testing.TB) [][]byte {
	t.Helper()
	r := rand.New(rand.NewPCG(15, 1))
	v4 := []net.IP{{198, 18, 0, 1}, {198, 18, 0, 2}, {198, 18, 0, 5}, {198, 18, 1, 9}, {198, 19, 0, 2}, {198, 19, 200, 7}, {198, 18, 0, 200}}
	v6 := []net.IP{net.ParseIP("2001:2::1"), net.ParseIP("2001:2::2"), net.ParseIP("2001:2::3"), net.ParseIP("2001:2:0:1::1"), net.ParseIP("2001:2:0:ffff::9")}
	ports := []uint16{53, 80, 443, 1000, 1500, 2000, 9899, 40000, 51234, 8}
	pickIP := func(s []net.IP) net.IP { return s[r.IntN(len(s))] }
	pickPort := func() uint16 { return ports[r.IntN(len(ports))] }
	var frames [][]byte
	for i := range 400 {
		var ls []gopacket.SerializableLayer
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
		ls = append(ls, eth)
		// The EtherType of the frame's payload, after any tag.
		setType := func(typ layers.EthernetType) {
			switch i % 5 {
			case 1:
				eth.EthernetType = layers.EthernetTypeDot1Q
				ls = append(ls, &layers.Dot1Q{VLANIdentifier: 100, Type: typ})
			case 3:
				eth.EthernetType = layers.EthernetTypeDot1Q
				ls = append(ls, &layers.Dot1Q{VLANIdentifier: 200, Type: typ})
			default:
				eth.EthernetType = typ
			}
		}
		kind := r.IntN(12)
		switch {
		case kind == 0: // ARP
			setType(layers.EthernetTypeARP)
			op := uint16(layers.ARPRequest)
			if r.IntN(2) == 0 {
				op = layers.ARPReply
			}
			ls = append(ls, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
				HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
				SourceHwAddress: eth.SrcMAC, SourceProtAddress: pickIP(v4).To4(),
				DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: pickIP(v4).To4()})
		case kind <= 6: // IPv4
			setType(layers.EthernetTypeIPv4)
			ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, SrcIP: pickIP(v4).To4(), DstIP: pickIP(v4).To4()}
			ls = append(ls, ip)
			switch kind {
			case 1:
				ip.Protocol = layers.IPProtocolTCP
				ls = append(ls, &layers.TCP{SrcPort: layers.TCPPort(pickPort()), DstPort: layers.TCPPort(pickPort()), ACK: true, Window: 100}, bpftest.Payload(r.IntN(40)))
			case 2, 3:
				ip.Protocol = layers.IPProtocolUDP
				ls = append(ls, &layers.UDP{SrcPort: layers.UDPPort(pickPort()), DstPort: layers.UDPPort(pickPort())}, bpftest.Payload(r.IntN(40)))
			case 4:
				ip.Protocol = layers.IPProtocolICMPv4
				ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(uint8(r.IntN(2)*8), 0), Id: 1, Seq: uint16(i)}, bpftest.Payload(8))
			case 5:
				ip.Protocol = layers.IPProtocolSCTP
				ls = append(ls, &layers.SCTP{SrcPort: layers.SCTPPort(pickPort()), DstPort: layers.SCTPPort(pickPort()), VerificationTag: 7}, bpftest.Payload(16))
			default:
				// A non-first fragment of a UDP datagram: no ports.
				ip.Protocol = layers.IPProtocolUDP
				ip.FragOffset = 185
				ls = append(ls, bpftest.Payload(24))
			}
		default: // IPv6
			setType(layers.EthernetTypeIPv6)
			ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: pickIP(v6), DstIP: pickIP(v6)}
			ls = append(ls, ip)
			switch kind {
			case 7, 8:
				ip.NextHeader = layers.IPProtocolTCP
				ls = append(ls, &layers.TCP{SrcPort: layers.TCPPort(pickPort()), DstPort: layers.TCPPort(pickPort()), ACK: true, Window: 100}, bpftest.Payload(r.IntN(40)))
			case 9:
				ip.NextHeader = layers.IPProtocolUDP
				ls = append(ls, &layers.UDP{SrcPort: layers.UDPPort(pickPort()), DstPort: layers.UDPPort(pickPort())}, bpftest.Payload(r.IntN(40)))
			case 10:
				ip.NextHeader = layers.IPProtocolICMPv6
				ls = append(ls, &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, bpftest.Payload(8))
			default:
				ip.NextHeader = layers.IPProtocolSCTP
				ls = append(ls, &layers.SCTP{SrcPort: layers.SCTPPort(pickPort()), DstPort: layers.SCTPPort(pickPort()), VerificationTag: 7}, bpftest.Payload(16))
			}
		}
		frames = append(frames, bpftest.Frame(t, ls...))
	}
	return frames
}

// shortFilterCases are the TC expressions of a -test.short run: between
// them, every kind of test the compiler emits (EtherType, protocol, ports
// and port ranges, IPv4 and IPv6 hosts and nets, ARP addresses, and, or,
// not; the XDP case adds a VLAN ID).
var shortFilterCases = []string{
	"(src net 198.18.0.0/16 and (udp or sctp) and not dst port 53) or host 2001:2::1 or arp host 198.18.0.5 or (ip6 net 2001:2:0:1::/64 and tcp portrange 1-1024) or icmp",
}

// filterCases are the expressions held to tcpdump. Those with "vlan" are
// written "vlan [ID] and (Y)" and go to tcpdump as they are; the others
// are counted as tcpdump counts "(X) and not vlan" plus "vlan and (X)",
// since our primitives look through one VLAN tag and tcpdump's do not
// (docs/usage.md#filters).
var filterCases = []string{
	"tcp", "udp", "icmp", "icmp6", "sctp", "arp", "ip", "ip6",
	"host 198.18.0.1", "src host 198.18.0.1", "dst host 198.19.0.2", "host 2001:2::1", "ip6 src host 2001:2::3",
	"ip host 198.18.0.5", "arp host 198.18.0.5", "arp dst host 198.18.1.9",
	"net 198.18.0.0/16", "net 198.19", "dst net 198.18.0.0 mask 255.255.255.0", "net 2001:2::/48",
	"ip6 net 2001:2:0:1::/64", "src and dst net 198.18.0.0/16", "src or dst net 198.19.0.0/16", "ip src net 198.18.0.0/24",
	"port 53", "udp dst port 53", "tcp port 80", "tcp src port 443", "sctp port 9899", "port 8",
	"portrange 1000-2000", "tcp portrange 1-1024", "udp portrange 40000-60000", "dst portrange 2000-1000",
	"udp and dst port 53", "not tcp", "!udp", "tcp or udp", "tcp && port 80", "(tcp or udp) and not port 53",
	"ip proto 17", "ip6 proto 6", "proto 132", "ip proto \\tcp", "host 198.18.0.1 or 198.18.0.2",
	"not host 198.18.0.1 and not arp", "port 80 or 443", "icmp or icmp6 or arp", "not (ip or ip6)",
	"udp or tcp and port 80", "src port 1000 || dst port 2000", "ip and not (net 198.18.0.0/16)",
	"src net 2001:2::/64 and (tcp dst portrange 40000-65535 or icmp6)",
	"vlan", "vlan 100", "vlan 200 and (tcp)", "vlan and (host 198.18.0.1)", "vlan 100 and (udp dst port 53)",
	"vlan 200 and (arp or icmp6)",
}

// tcpdumpCount is how many packets of file tcpdump's expr keeps.
func tcpdumpCount(t *testing.T, file, expr string) int {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.pcap")
	cmd := exec.Command("tcpdump", "-nn", "-r", file, "-w", out, expr)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tcpdump %q: %v: %s", expr, err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, _, err := rd.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

// writePcap writes frames to a pcap file in a test directory, and
// returns it with the frames' total.
func writePcap(t *testing.T, frames [][]byte) (string, flow.Counters) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "capture.pcap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	var total flow.Counters
	for _, fr := range frames {
		if err := w.WritePacket(gopacket.CaptureInfo{CaptureLength: len(fr), Length: len(fr)}, fr); err != nil {
			t.Fatal(err)
		}
		total.Add(flow.Counters{Packets: 1, Bytes: uint64(len(fr))})
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n := tcpdumpCount(t, file, ""); n != len(frames) {
		t.Fatalf("tcpdump reads %d packets of %d", n, len(frames))
	}
	return file, total
}

// tcpdumpKeeps is how many packets of file tcpdump keeps for our
// expression expr. Our primitives look through one VLAN tag; tcpdump's do
// only after "vlan", which shifts the offsets of everything after it in
// the expression, negated or not. So an expression without "vlan" is
// counted as tcpdump's "(X) and not vlan" (untagged frames: "vlan" comes
// last) plus "vlan and (X)" (tagged frames); "(X) or (vlan and (X))"
// would keep every tagged frame for "not tcp". Expressions with "vlan" are
// written "vlan [ID] and (Y)" and go to tcpdump as they are.
func tcpdumpKeeps(t *testing.T, file, expr string) int {
	if strings.HasPrefix(expr, "vlan") {
		return tcpdumpCount(t, file, expr)
	}
	return tcpdumpCount(t, file, "("+expr+") and not vlan") + tcpdumpCount(t, file, "vlan and ("+expr+")")
}

// requireTcpdump skips t where tcpdump, its ground truth, is missing.
func requireTcpdump(t *testing.T) {
	t.Helper()
	bpftest.RequireRoot(t)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is not installed (apt-get install tcpdump): it is this test's ground truth")
	}
}

// TestFilterMatchesTcpdump runs every frame of a mixed capture through the
// real TC program (and a few expressions through the XDP program) with
// each expression compiled in, and checks that the packets kept are
// exactly those tcpdump keeps, and that the filtered counters hold exactly
// the rest, packets and bytes.
func TestFilterMatchesTcpdump(t *testing.T) {
	requireTcpdump(t)
	frames := mixedCapture(t)
	for _, fr := range frames {
		if !skbTestRunAccepts(fr) {
			t.Fatalf("BPF_PROG_TEST_RUN would refuse a frame of the capture: %x", fr)
		}
	}
	file, total := writePcap(t, frames)
	if len(filterCases) < 40 {
		t.Errorf("%d expressions, want at least 40", len(filterCases))
	}
	tc, xdp := filterCases, []string{"udp and dst port 53", "not tcp", "host 198.18.0.1 or arp", "net 2001:2::/48 and not icmp6", "vlan 100 and (tcp portrange 1-1024)"}
	if testing.Short() {
		// The kernel matrix (-test.short): emulated, every load takes
		// seconds. What differs between kernels is whether the verifier
		// takes the compiled code, which a few expressions that use every
		// kind of test show; the whole table runs on the host.
		tc, xdp = shortFilterCases, xdp[len(xdp)-1:]
	}
	for _, c := range []struct {
		kind  testHook
		exprs []string
	}{
		{tcHook, tc},
		{xdpHook, xdp},
	} {
		for _, expr := range c.exprs {
			t.Run(fmt.Sprintf("%v/%s", map[testHook]string{tcHook: "tc", xdpHook: "xdp"}[c.kind], expr), func(t *testing.T) {
				flt, err := filter.Parse([]string{expr})
				if err != nil {
					t.Fatal(err)
				}
				want := tcpdumpKeeps(t, file, expr)
				h := loadHook(t, c.kind, testLoad{maxEntries: 1024, filter: flt})
				for _, fr := range frames {
					bpftest.Run(t, h.progs[0].prog, fr, nil)
				}
				rows, err := h.tb.TakeActive()
				if err != nil {
					t.Fatal(err)
				}
				var kept flow.Counters
				for _, r := range rows {
					kept.Add(r.Counters)
				}
				dropped, err := h.tb.TakeActiveFiltered()
				if err != nil {
					t.Fatal(err)
				}
				if kept.Packets != uint64(want) {
					t.Errorf("kept %d packets, tcpdump keeps %d", kept.Packets, want)
				}
				if dropped.Packets != total.Packets-kept.Packets || dropped.Bytes != total.Bytes-kept.Bytes {
					t.Errorf("filtered out %+v, want the rest: %d packets, %d bytes", dropped, total.Packets-kept.Packets, total.Bytes-kept.Bytes)
				}
				t.Logf("kept %d of %d (tcpdump %d)", kept.Packets, total.Packets, want)
			})
		}
	}
}

// TestFilterCgroupMatchesTcpdump runs the capture's untagged IP frames
// through the cgroup_skb program, which sees them from the IP header on,
// with a few expressions, against tcpdump on the same frames.
func TestFilterCgroupMatchesTcpdump(t *testing.T) {
	requireTcpdump(t)
	var frames [][]byte
	for _, fr := range mixedCapture(t) {
		if typ := uint16(fr[12])<<8 | uint16(fr[13]); typ == flow.EtherTypeIPv4 || typ == flow.EtherTypeIPv6 {
			frames = append(frames, fr)
		}
	}
	file, total := writePcap(t, frames)
	exprs := []string{"udp and dst port 53", "not tcp", "src net 198.18.0.0/16 or ip6 dst host 2001:2::1", "portrange 1000-2000 and not icmp"}
	if testing.Short() {
		exprs = exprs[2:3] // as in TestFilterMatchesTcpdump
	}
	for _, expr := range exprs {
		t.Run(expr, func(t *testing.T) {
			flt, err := filter.Parse([]string{expr})
			if err != nil {
				t.Fatal(err)
			}
			want := tcpdumpKeeps(t, file, expr)
			objs := loadObjects[bpfprog.CgroupObjects](t, objectSpec(t, bpfprog.LoadCgroup), testLoad{maxEntries: 1024, filter: flt})
			for _, fr := range frames {
				if ret, err := objs.PktstatCgIn.Run(&ebpf.RunOptions{Data: fr}); err != nil || ret != cgPass {
					t.Fatalf("run: %d, %v", ret, err)
				}
			}
			var kept flow.Counters
			for _, r := range readRaw(t, objs) {
				kept.Add(r.c)
			}
			var vals []bpfprog.FlowVal
			if err := objs.Filtered.Lookup(uint32(0), &vals); err != nil {
				t.Fatal(err)
			}
			var dropped flow.Counters
			for _, v := range vals {
				dropped.Add(flow.Counters{Packets: v.Packets, Bytes: v.Bytes})
			}
			// cgroup_skb counts L3 bytes: the frames less their Ethernet headers.
			l3 := total.Bytes - ethLen*total.Packets
			if kept.Packets != uint64(want) {
				t.Errorf("kept %d packets, tcpdump keeps %d", kept.Packets, want)
			}
			if dropped.Packets != total.Packets-kept.Packets || dropped.Bytes != l3-kept.Bytes {
				t.Errorf("filtered out %+v, want the rest: %d packets, %d bytes", dropped, total.Packets-kept.Packets, l3-kept.Bytes)
			}
		})
	}
}

// TestFilterProcessBackendsVerify loads each process-mode backend with a
// filter compiled in: its cgroup_skb programs and its TCP-call hooks all
// call the filter. A backend this kernel refuses without a filter too is
// skipped (TestProcessBackendsVerify says why).
func TestFilterProcessBackendsVerify(t *testing.T) {
	bpftest.RequireRoot(t)
	flt, err := filter.Parse([]string{"tcp and not port 22 or udp dst portrange 1-1024 or net 2001:2::/48"})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ProcessSpec(1024)
	if err != nil {
		t.Fatal(err)
	}
	spec := plain.Copy()
	if err := applyFilter(spec, flt); err != nil {
		t.Fatal(err)
	}
	for _, b := range ProcessBackends() {
		t.Run(string(b), func(t *testing.T) {
			coll, err := loadBackend(spec, b)
			if err != nil {
				if c, perr := loadBackend(plain, b); perr != nil {
					t.Skipf("skipped: the %s backend does not load here without a filter either: %v", b, perr)
				} else {
					c.Close()
				}
				t.Fatalf("the %s backend loads without a filter, not with one: %v", b, err)
			}
			coll.Close()
		})
	}
}

// TestFilteredUnderLoad drains while the TC program runs with a filter
// that drops half the flows: every run lands in exactly one drain, in a
// row or in the filtered counters, and the filtered ones are exactly the
// dropped flows' runs.
func TestFilteredUnderLoad(t *testing.T) {
	flt, err := filter.Parse([]string{"udp src portrange 52000-52003"})
	if err != nil {
		t.Fatal(err)
	}
	h := loadHook(t, tcHook, testLoad{maxEntries: 64, filter: flt})
	const (
		flows  = 8
		rounds = 20000
	)
	frames := make([][]byte, flows)
	for i := range frames {
		frames[i] = udpFrame(t, uint16(52000+i), 18)
	}
	var kept, dropped flow.Counters
	drains, withFiltered := 0, 0
	collect := func() {
		s, err := h.tb.Drain(nil)
		if err != nil {
			t.Fatal(err)
		}
		drains++
		for _, r := range s.Flows {
			if r.SrcPort > 52003 {
				t.Errorf("drain %d: a row of a flow the filter drops: %+v", drains, r)
			}
			kept.Add(r.Counters)
		}
		dropped.Add(s.Filtered)
		if s.Filtered.Packets > 0 {
			withFiltered++
		}
	}
	drainDuringRuns(t, h.tc.PktstatIngress, frames, rounds, collect)
	half := flow.Counters{Packets: flows / 2 * rounds, Bytes: uint64(flows / 2 * rounds * len(frames[0]))}
	if kept != half || dropped != half {
		t.Errorf("over %d drains: rows %+v, filtered %+v; want %+v each", drains, kept, dropped, half)
	}
	t.Logf("%d drains, %d with filtered traffic, over %d runs", drains, withFiltered, flows*rounds)
	if withFiltered < 3 {
		t.Errorf("only %d drains saw filtered traffic; the test did not exercise concurrent switches", withFiltered)
	}
}

// TestFilterProcessMode runs process mode with a filter that keeps the
// UDP datagrams to one port: this process's rows are exactly those
// datagrams, sent and received, and its datagrams to another port and its
// TCP calls go to the filtered counters (at least them: process mode sees
// the whole host).
func TestFilterProcessMode(t *testing.T) {
	testnet.RequireRoot(t)
	const keep, drop, tcpPort = 47011, 47012, 47013
	flt, err := filter.Parse([]string{"udp and dst port 47011"})
	if err != nil {
		t.Fatal(err)
	}
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	pr, err := StartProcess(ProcessOptions{MaxEntries: 1024, Filter: flt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	self := os.Getpid()

	// exchange sends n datagrams of size bytes from A to port on B and
	// reads them there; it returns the client's address and the server's.
	exchange := func(port, n, size int) (netip.AddrPort, netip.AddrPort) {
		var srv *net.UDPConn
		if err := p.B.Do(func() (err error) { srv, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port}); return }); err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		to := netip.AddrPortFrom(p.B.IPv4, uint16(port))
		var cli *net.UDPConn
		if err := p.A.Do(func() (err error) { cli, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to)); return }); err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		buf := make([]byte, size)
		if err := srv.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		for range n {
			if _, err := cli.Write(buf); err != nil {
				t.Fatal(err)
			}
			if _, _, err := srv.ReadFromUDPAddrPort(buf); err != nil {
				t.Fatal(err)
			}
		}
		return addrPortOf(cli.LocalAddr()), to
	}
	src, to := exchange(keep, 5, 100)
	exchange(drop, 3, 200)

	// TCP: 1000 bytes written on A, read on B.
	var ln net.Listener
	if err := p.B.Do(func() (err error) { ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", tcpPort)); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var c net.Conn
	if err := p.A.Do(func() (err error) {
		c, err = net.Dial("tcp4", netip.AddrPortFrom(p.B.IPv4, tcpPort).String())
		return
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}

	snap, err := pr.Drain()
	if err != nil {
		t.Fatal(err)
	}
	rows := map[flow.Key]flow.Counters{}
	for _, f := range snap.Flows {
		if f.Key.Owner.Info().PID != uint32(self) {
			continue
		}
		k := f.Key
		k.Owner = flow.NewOwner(flow.OwnerInfo{PID: k.Owner.Info().PID})
		c := rows[k]
		c.Add(f.Counters)
		rows[k] = c
	}
	wantRows(t, rows, map[flow.Key]flow.Counters{
		protoKey(flow.ProtoUDP, src, to, flow.Out, self): {Packets: 5, Bytes: 500},
		protoKey(flow.ProtoUDP, src, to, flow.In, self):  {Packets: 5, Bytes: 500},
	})
	// The dropped port's 3 datagrams each way (1200 payload bytes), and at
	// least one send and one receive call of the TCP bytes (2000).
	if snap.Filtered.Packets < 3*2+2 || snap.Filtered.Bytes < 1200+2000 {
		t.Errorf("filtered %+v, want at least 8 packets and 3200 bytes", snap.Filtered)
	}
}
