package e2e

// End-to-end tests of protocol coverage: VLAN and QinQ frames that really
// cross a veth, where TC finds the outer tag in skb metadata and XDP in
// the frame; ARP by opcode and address, and --no-arp; application
// protocols of real TCP connections, whose payload sits outside the skb's
// linear area when TC sees it.

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// findRows returns the rows that match.
func findRows(rows []harness.Row, match func(harness.Row) bool) []harness.Row {
	var out []harness.Row
	for _, r := range rows {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// vlanCase is one way of tagging: one 802.1Q tag, or an 802.1ad S-tag
// with an 802.1Q C-tag inside (QinQ).
type vlanCase struct {
	name    string
	outer   uint16 // the VLAN ID a row must carry
	inner   uint16 // 0 without a C-tag
	payload int
}

var vlanCases = []vlanCase{
	{name: "802.1Q", outer: 100, payload: 300},
	{name: "QinQ", outer: 300, inner: 100, payload: 200},
}

func (v vlanCase) tags() int {
	if v.inner != 0 {
		return 2
	}
	return 1
}

// frameLen is the length on the wire of one datagram of v, tags included.
func (v vlanCase) frameLen() int {
	return harness.EthLen + 4*v.tags() + harness.IPv4Len + harness.UDPLen + v.payload
}

// This kernel has no VLAN devices (CONFIG_VLAN_8021Q is off), so tagged
// frames are made two other ways, both as a VLAN device makes them:
//   - B -> A: B writes whole tagged frames, built with gopacket, to its
//     veth through a packet socket; A's kernel moves the outer tag into
//     skb metadata on receive (skb_vlan_untag, before TC runs), and native
//     XDP, which runs before that, finds the tags in the frame.
//   - A -> B: a TCX program ahead of the tool on A's egress pushes the tags
//     with bpf_skb_vlan_push, which puts the outer tag into skb metadata,
//     as a VLAN device on a veth does; the tool must find it there.

// sendTagged writes n UDP datagrams of v from B to A as tagged frames, and
// returns the flow.
func sendTagged(t *testing.T, p *testnet.Pair, v vlanCase, n int, sport uint16) harness.UDPFlow {
	t.Helper()
	f := harness.NewUDPFlow(v.name+" B->A", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, sport), netip.AddrPortFrom(p.A.IPv4, 5301))
	ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: p.B.MAC, DstMAC: p.A.MAC, EthernetType: layers.EthernetTypeDot1Q}}
	if v.inner != 0 {
		ls[0].(*layers.Ethernet).EthernetType = layers.EthernetTypeQinQ
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: v.outer, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: v.inner, Type: layers.EthernetTypeIPv4})
	} else {
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: v.outer, Type: layers.EthernetTypeIPv4})
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: p.B.IPv4.AsSlice(), DstIP: p.A.IPv4.AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(f.Src.Port()), DstPort: layers.UDPPort(f.Dst.Port())}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	ls = append(ls, ip, udp, gopacket.Payload(bytes.Repeat([]byte{0x61}, v.payload)))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	if len(buf.Bytes()) != v.frameLen() {
		t.Fatalf("built a %d-byte frame, want %d", len(buf.Bytes()), v.frameLen())
	}
	injectFrames(t, p.B, buf.Bytes(), n)
	return f
}

// injectFrames writes frame n times to e's veth through a packet socket,
// paced so that the receiving veth's queue never overflows.
func injectFrames(t *testing.T, e testnet.End, frame []byte, n int) {
	t.Helper()
	err := e.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		addr := &unix.SockaddrLinklayer{Ifindex: e.Index}
		for i := range n {
			if err := unix.Sendto(fd, frame, 0, addr); err != nil {
				return fmt.Errorf("frame %d of %d: %w", i+1, n, err)
			}
			if i%32 == 31 {
				time.Sleep(time.Millisecond)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write frames to %s: %v", e.Link, err)
	}
}

// skbVlanPresentOff and skbVlanTCIOff are offsets in struct __sk_buff.
const (
	skbMarkOff        = 8
	skbVlanPresentOff = 20
	skbVlanTCIOff     = 24
)

// newTagger pushes v's tags, C-tag first, on every packet marked mark.
// It counts them in slot 0.
func newTagger(t *testing.T, v vlanCase, mark int32) *harness.CounterProg {
	t.Helper()
	return harness.LoadCounterProg(t, "vlan_tagger", 1, func(inc func(int32, string) asm.Instructions) asm.Instructions {
		insns := asm.Instructions{
			asm.LoadMem(asm.R2, asm.R6, skbMarkOff, asm.Word),
			asm.JNE.Imm(asm.R2, mark, "out"),
		}
		push := func(proto int32, vid uint16) asm.Instructions {
			return asm.Instructions{
				asm.Mov.Reg(asm.R1, asm.R6),
				asm.Mov.Imm(asm.R2, proto), // __be16 on a little-endian machine
				asm.Mov.Imm(asm.R3, int32(vid)),
				asm.FnSkbVlanPush.Call(),
				asm.JNE.Imm(asm.R0, 0, "out"),
			}
		}
		if v.inner != 0 {
			insns = append(insns, push(0x0081, v.inner)...) // ETH_P_8021Q
			insns = append(insns, push(0xA888, v.outer)...) // ETH_P_8021AD
		} else {
			insns = append(insns, push(0x0081, v.outer)...)
		}
		return append(insns, inc(0, "")...)
	})
}

// newVLANProbe counts, in slot 0, skbs whose metadata holds a tag of
// VLAN vid.
func newVLANProbe(t *testing.T, vid uint16) *harness.CounterProg {
	t.Helper()
	return harness.LoadCounterProg(t, "vlan_probe", 1, func(inc func(int32, string) asm.Instructions) asm.Instructions {
		return append(asm.Instructions{
			asm.LoadMem(asm.R2, asm.R6, skbVlanPresentOff, asm.Word),
			asm.JEq.Imm(asm.R2, 0, "out"),
			asm.LoadMem(asm.R2, asm.R6, skbVlanTCIOff, asm.Word),
			asm.And.Imm(asm.R2, 0x0FFF),
			asm.JNE.Imm(asm.R2, int32(vid), "out"),
		}, inc(0, "")...)
	})
}

// sendMarked sends n datagrams of v from A to B from a socket whose
// packets carry mark, for the tagger.
func sendMarked(t *testing.T, p *testnet.Pair, v vlanCase, n int, sport uint16, mark int) harness.UDPFlow {
	t.Helper()
	f := harness.NewUDPFlow(v.name+" A->B", p.A, p.B, netip.AddrPortFrom(p.A.IPv4, sport), netip.AddrPortFrom(p.B.IPv4, 5302))
	tx, err := p.A.DialUDP(f.Src, f.Dst)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rc, err := tx.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark) }); err != nil || serr != nil {
		t.Fatalf("set SO_MARK: %v %v", err, serr)
	}
	if err := testnet.SendUDP(tx, bytes.Repeat([]byte{0x62}, v.payload), n); err != nil {
		t.Fatal(err)
	}
	return f
}

// wantVLANRow checks the row of f: vlan, exact packets, and bytes of the
// frames on the wire, tags included.
func wantVLANRow(t *testing.T, rows []harness.Row, f harness.UDPFlow, v vlanCase, n int) {
	t.Helper()
	got := findRows(rows, func(r harness.Row) bool {
		return r.Proto == "UDP" && r.SrcIP == f.Src.Addr().String() && r.DstIP == f.Dst.Addr().String() &&
			r.SrcPort == f.Src.Port() && r.DstPort == f.Dst.Port()
	})
	if len(got) != 1 {
		t.Fatalf("%s: %d rows, want 1; report:\n%s", f.Name, len(got), harness.DumpRows(rows))
	}
	frame := uint64(v.frameLen())
	r := got[0]
	if r.VLAN != v.outer || r.Packets != uint64(n) || r.Bytes != uint64(n)*frame {
		t.Errorf("%s: vlan %d, %d packets, %d bytes; sent %d frames of %d bytes on VLAN %d", f.Name, r.VLAN, r.Packets, r.Bytes, n, frame, v.outer)
		return
	}
	t.Logf("%s: vlan %d, %d packets / %d bytes, equal to what was sent", f.Name, r.VLAN, r.Packets, r.Bytes)
}

// TestE2EVLANTC runs the tool in TC mode on A's veth with 802.1Q and QinQ
// frames both ways. Probes ahead of the tool prove that the outer tag sat
// in skb metadata, not in the frame: on receive every frame, on transmit
// every one the tagger tagged. The rows must name the outer VLAN and count
// the tags' bytes.
func TestE2EVLANTC(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	const n = 100
	tl := harness.StartCapture(t, p.A, bin)
	type result struct {
		v        vlanCase
		in, out  harness.UDPFlow
		inProbe  *harness.CounterProg
		outProbe *harness.CounterProg
		tagger   *harness.CounterProg
	}
	var res []result
	for i, v := range vlanCases {
		r := result{v: v, inProbe: newVLANProbe(t, v.outer), outProbe: newVLANProbe(t, v.outer), tagger: newTagger(t, v, int32(i+1))}
		// Head: the probes first, then the tagger ahead of them on egress.
		harness.AttachTCXHead(t, p.A, r.inProbe.Prog, ebpf.AttachTCXIngress)
		harness.AttachTCXHead(t, p.A, r.outProbe.Prog, ebpf.AttachTCXEgress)
		harness.AttachTCXHead(t, p.A, r.tagger.Prog, ebpf.AttachTCXEgress)
		r.in = sendTagged(t, p, v, n, uint16(42001+i))
		r.out = sendMarked(t, p, v, n, uint16(42011+i), i+1)
		res = append(res, r)
	}
	// The hook runs after the send returns when the kernel defers the
	// receive work: stop once the probes on A's hooks have seen it all.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		all := true
		for _, r := range res {
			all = all && r.inProbe.Count(t, 0) >= n && r.outProbe.Count(t, 0) >= n
		}
		if all {
			break
		}
	}
	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	for _, r := range res {
		if got := r.inProbe.Count(t, 0); got != n {
			t.Errorf("%s: %d frames arrived at A's TC ingress with the tag in metadata, want %d", r.v.name, got, n)
		}
		if tagged, meta := r.tagger.Count(t, 0), r.outProbe.Count(t, 0); tagged != n || meta != n {
			t.Errorf("%s: the tagger tagged %d datagrams and %d left with the tag in metadata, want %d", r.v.name, tagged, meta, n)
		}
		wantVLANRow(t, rows, r.in, r.v, n)
		wantVLANRow(t, rows, r.out, r.v, n)
	}
}

// TestE2EVLANXDP runs the tool in XDP mode (native, on A's veth) with
// 802.1Q and QinQ frames from B: XDP runs before the kernel moves any tag,
// so it finds them all in the frame.
func TestE2EVLANXDP(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	const n = 100
	tl := harness.StartCapture(t, p.A, bin, "-x")
	var ins []harness.UDPFlow
	for i, v := range vlanCases {
		ins = append(ins, sendTagged(t, p, v, n, uint16(42021+i)))
	}
	rows := harness.StopCapture(t, tl, syscall.SIGINT)
	for i, v := range vlanCases {
		wantVLANRow(t, rows, ins[i], v, n)
	}
}

// arpExchange writes n ARP requests for A's address from B's veth through
// a packet socket, frames the test built, and reads A's replies from
// another: the counts are exact. It returns the request frame.
func arpExchange(t *testing.T, p *testnet.Pair, n int) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: p.B.MAC, DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: p.B.MAC, SourceProtAddress: p.B.IPv4.AsSlice(),
			DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: p.A.IPv4.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	frame := buf.Bytes()
	const ethPARP = 0x0608 // htons(ETH_P_ARP)
	addr := &unix.SockaddrLinklayer{Protocol: ethPARP, Ifindex: p.B.Index}
	replies := 0
	err = p.B.Do(func() error {
		rx, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, ethPARP)
		if err != nil {
			return err
		}
		defer unix.Close(rx)
		if err := unix.Bind(rx, addr); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(5 * time.Second))
		if err := unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		tx, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(tx)
		for range n {
			if err := unix.Sendto(tx, frame, 0, addr); err != nil {
				return err
			}
		}
		b := make([]byte, 128)
		for replies < n {
			m, from, err := unix.Recvfrom(rx, b, 0)
			if err != nil {
				return fmt.Errorf("%d of %d ARP replies arrived: %w", replies, n, err)
			}
			ll, ok := from.(*unix.SockaddrLinklayer)
			if ok && ll.Pkttype != unix.PACKET_OUTGOING && m >= 22 && b[20] == 0 && b[21] == 2 {
				replies++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ARP exchange from %s: %v", p.B.NS, err)
	}
	return frame
}

// TestE2EARP: ARP rows carry the opcode and the sender and target IPv4
// addresses; with --no-arp, every ARP frame of a direction shares one row
// without them.
func TestE2EARP(t *testing.T) {
	bin := harness.Binary(t)
	for _, noARP := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-arp=%v", noARP), func(t *testing.T) {
			p := testnet.NewPair(t)
			const n = 20
			var extra []string
			if noARP {
				extra = append(extra, "--no-arp")
			}
			tl := harness.StartCapture(t, p.A, bin, extra...)
			req := arpExchange(t, p, n)
			rows := harness.StopCapture(t, tl, syscall.SIGINT)
			arps := findRows(rows, func(r harness.Row) bool { return r.Proto == "ARP" })
			// veth does not pad: an ARP frame is 42 bytes both ways.
			want := []harness.Row{
				{Proto: "ARP", SrcIP: p.B.IPv4.String(), DstIP: p.A.IPv4.String(), ARPOp: "request", Dir: "in", Packets: n, Bytes: n * uint64(len(req)), SrcPort: 1},
				{Proto: "ARP", SrcIP: p.A.IPv4.String(), DstIP: p.B.IPv4.String(), ARPOp: "reply", Dir: "out", Packets: n, Bytes: n * 42, SrcPort: 2},
			}
			if noARP {
				for i := range want {
					want[i].SrcIP, want[i].DstIP, want[i].ARPOp, want[i].SrcPort = "", "", "", 0
				}
			}
			if len(arps) != len(want) {
				t.Fatalf("%d ARP rows, want %d:\n%s", len(arps), len(want), harness.DumpRows(rows))
			}
			for _, w := range want {
				if len(findRows(arps, func(r harness.Row) bool { return arpFields(r) == w })) != 1 {
					t.Errorf("no row %+v; ARP rows:\n%s", w, harness.DumpRows(arps))
				}
			}
		})
	}
}

// arpFields is r with only the fields TestE2EARP compares: addresses,
// ports, protocol, counts, VLAN, application protocol, opcode and
// direction.
func arpFields(r harness.Row) harness.Row {
	return harness.Row{SrcIP: r.SrcIP, DstIP: r.DstIP, Proto: r.Proto, Bytes: r.Bytes, Packets: r.Packets,
		SrcPort: r.SrcPort, DstPort: r.DstPort, VLAN: r.VLAN, AppProto: r.AppProto, ARPOp: r.ARPOp, Dir: r.Dir}
}

// TestE2EL7TCP opens real TCP connections from A to B, with the tool in
// TC mode on A: an HTTP/1.1 request to port 5443 and a TLS handshake to
// port 8080, the other way round from what ports suggest. A's TCP stack
// puts the payload of what it sends into page fragments, outside the
// skb's linear area: a probe ahead of the tool counts that the request's
// first payload bytes were non-linear. Both rows of each connection must
// name the protocol.
func TestE2EL7TCP(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	httpAddr := netip.AddrPortFrom(p.B.IPv4, 5443)
	tlsAddr := netip.AddrPortFrom(p.B.IPv4, 8080)

	var hl, tlsl net.Listener
	if err := p.B.Do(func() (err error) {
		if hl, err = net.Listen("tcp4", httpAddr.String()); err != nil {
			return err
		}
		tlsl, err = net.Listen("tcp4", tlsAddr.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(hl)
	defer srv.Close()
	go srv.Serve(tls.NewListener(tlsl, &tls.Config{Certificates: []tls.Certificate{bpftest.SelfSignedCert(t)}}))

	// The request, as the client will write it, fixes the frame length
	// the probe looks for: Ethernet, IPv4, TCP with timestamps (32 bytes).
	req, err := http.NewRequest(http.MethodGet, "http://"+httpAddr.String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "pktstat-bpf-e2e")
	req.Close = true // the server closes after its response
	var reqBytes bytes.Buffer
	if err := req.Write(&reqBytes); err != nil {
		t.Fatal(err)
	}
	const hdr = harness.EthLen + harness.IPv4Len + 32
	frameLen := hdr + reqBytes.Len()

	tl := harness.StartCapture(t, p.A, bin, "--tc-attach", "tcx")
	probe := harness.NewCounterProg(t, "l7_probe", frameLen, hdr+24)
	harness.AttachTCXHead(t, p.A, probe.Prog, ebpf.AttachTCXEgress)

	local := map[string]netip.AddrPort{}
	err = p.A.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp4", httpAddr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		local["HTTP"] = netip.MustParseAddrPort(c.LocalAddr().String())
		if _, err := c.Write(reqBytes.Bytes()); err != nil {
			return err
		}
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		resp, err := io.ReadAll(io.LimitReader(c, 4096))
		if err != nil {
			return fmt.Errorf("read the HTTP response: %w", err)
		}
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
			return fmt.Errorf("HTTP response %q", resp)
		}

		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp4", tlsAddr.String(),
			&tls.Config{ServerName: "example.test", InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		defer tc.Close()
		local["TLS"] = netip.MustParseAddrPort(tc.LocalAddr().String())
		return tc.Handshake()
	})
	if err != nil {
		t.Fatal(err)
	}
	// Let the closing segments pass before the report.
	time.Sleep(200 * time.Millisecond)
	rows := harness.StopCapture(t, tl, syscall.SIGINT)

	if seen, nonLinear := probe.Count(t, 0), probe.Count(t, 1); seen != 1 || nonLinear != 1 {
		t.Errorf("the probe saw %d %d-byte frames (%d with the payload's first bytes non-linear), want the request once, non-linear", seen, frameLen, nonLinear)
	}
	for _, c := range []struct {
		app    string
		server netip.AddrPort
	}{{"HTTP", httpAddr}, {"TLS", tlsAddr}} {
		cl := local[c.app]
		for _, dir := range []struct {
			name     string
			src, dst netip.AddrPort
		}{{"out", cl, c.server}, {"in", c.server, cl}} {
			got := findRows(rows, func(r harness.Row) bool {
				return r.Proto == "TCP" && r.SrcIP == dir.src.Addr().String() && r.SrcPort == dir.src.Port() &&
					r.DstIP == dir.dst.Addr().String() && r.DstPort == dir.dst.Port()
			})
			if len(got) != 1 || got[0].Dir != dir.name {
				t.Fatalf("%s %s: rows %+v, want 1; report:\n%s", c.app, dir.name, got, harness.DumpRows(rows))
			}
			if got[0].AppProto != c.app {
				t.Errorf("%s %s -> %s (%s): appProto %q, want %q", c.app, dir.src, dir.dst, dir.name, got[0].AppProto, c.app)
			} else {
				t.Logf("%s %s -> %s (%s): appProto %s over %d packets", c.app, dir.src, dir.dst, dir.name, got[0].AppProto, got[0].Packets)
			}
		}
	}
}
