package harness

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// The ground truth of cgroup mode's rows is an AF_PACKET capture on the
// peer's veth, decoded by gopacket: with the offloads off (OffloadsOff),
// every frame it sees is one packet on the wire.

// FlowID is one direction of one flow.
type FlowID struct {
	Proto    string // "TCP" or "UDP"
	Src, Dst netip.AddrPort
}

// Reverse is the other direction of the flow.
func (f FlowID) Reverse() FlowID { return FlowID{f.Proto, f.Dst, f.Src} }

func (f FlowID) String() string { return fmt.Sprintf("%s %s -> %s", f.Proto, f.Src, f.Dst) }

// Tally is what the capture saw of one direction of a flow.
type Tally struct {
	Packets, Bytes uint64 // IP packets and their total length
	fin            bool
	finEnd         uint32 // sequence number just after the FIN
	ack            bool
	lastAck        uint32
}

// Sniffer captures every frame on one veth with an AF_PACKET socket.
type Sniffer struct {
	fd    int
	mu    sync.Mutex
	flows map[FlowID]*Tally
	MaxL3 int // the largest IP packet seen
	stop  chan struct{}
	done  chan error
}

func StartSniffer(t *testing.T, e testnet.End) *Sniffer {
	t.Helper()
	proto := int(htons(unix.ETH_P_ALL))
	s := &Sniffer{flows: map[FlowID]*Tally{}, stop: make(chan struct{}), done: make(chan error, 1)}
	err := e.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		s.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: e.Index}); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
			return err
		}
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		t.Fatalf("open a packet socket on %s: %v", e.Link, err)
	}
	go s.loop(e.Index)
	t.Cleanup(func() { s.Close() })
	return s
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *Sniffer) loop(ifindex int) {
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-s.stop:
			s.done <- nil
			return
		default:
		}
		n, from, err := unix.Recvfrom(s.fd, buf, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			s.done <- err
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Ifindex != ifindex || n > len(buf) {
			continue
		}
		s.add(buf[:n])
	}
}

// add counts one frame under its flow, as gopacket decodes it.
func (s *Sniffer) add(frame []byte) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	var (
		src, dst netip.Addr
		l3       int
	)
	switch ip := pkt.NetworkLayer().(type) {
	case *layers.IPv4:
		src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		l3 = int(ip.Length)
	case *layers.IPv6:
		src, _ = netip.AddrFromSlice(ip.SrcIP.To16())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To16())
		l3 = 40 + int(ip.Length)
	default:
		return
	}
	var id FlowID
	var tcp *layers.TCP
	switch l4 := pkt.TransportLayer().(type) {
	case *layers.TCP:
		id = FlowID{"TCP", netip.AddrPortFrom(src, uint16(l4.SrcPort)), netip.AddrPortFrom(dst, uint16(l4.DstPort))}
		tcp = l4
	case *layers.UDP:
		id = FlowID{"UDP", netip.AddrPortFrom(src, uint16(l4.SrcPort)), netip.AddrPortFrom(dst, uint16(l4.DstPort))}
	default:
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.MaxL3 = max(s.MaxL3, l3)
	tl := s.flows[id]
	if tl == nil {
		tl = &Tally{}
		s.flows[id] = tl
	}
	tl.Packets++
	tl.Bytes += uint64(l3)
	if tcp != nil {
		if tcp.FIN {
			tl.fin, tl.finEnd = true, tcp.Seq+uint32(len(tcp.Payload))+1
		}
		if tcp.ACK {
			tl.ack, tl.lastAck = true, tcp.Ack
		}
	}
}

func (s *Sniffer) Get(id FlowID) Tally {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tl := s.flows[id]; tl != nil {
		return *tl
	}
	return Tally{}
}

// WaitClosed waits until the capture has seen both FINs of the TCP
// connection and the ACK of each: its last packet.
func (s *Sniffer) WaitClosed(t *testing.T, id FlowID) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		a, b := s.Get(id), s.Get(id.Reverse())
		if a.fin && b.fin && a.ack && b.ack && a.lastAck == b.finEnd && b.lastAck == a.finEnd {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the capture saw no complete close within 10s (%+v / %+v)", id, a, b)
		}
	}
}

// Close stops the capture and fails if the kernel dropped any frame.
func (s *Sniffer) Close() (drops uint32, err error) {
	select {
	case <-s.stop:
		return 0, nil
	default:
	}
	close(s.stop)
	err = <-s.done
	st, serr := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	unix.Close(s.fd)
	if serr != nil {
		return 0, errors.Join(err, serr)
	}
	return st.Drops, err
}

// RowFlow is the flow of a report row.
func RowFlow(r Row) FlowID {
	a, _ := netip.ParseAddr(r.SrcIP)
	b, _ := netip.ParseAddr(r.DstIP)
	return FlowID{Proto: r.Proto, Src: netip.AddrPortFrom(a, r.SrcPort), Dst: netip.AddrPortFrom(b, r.DstPort)}
}
