package offline

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
	ipA  = net.IP{198, 18, 0, 1}
	ipB  = net.IP{198, 18, 0, 2}
)

// tcpFrame builds an Ethernet/IPv4/TCP frame with gopacket.
func tcpFrame(t *testing.T, src, dst net.IP, sport, dport uint16, tcp layers.TCP, payload int) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
	tcp.SrcPort, tcp.DstPort = layers.TCPPort(sport), layers.TCPPort(dport)
	_ = tcp.SetNetworkLayerForChecksum(ip)
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip, &tcp, gopacket.Payload(make([]byte, payload)))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// epb is an Enhanced Packet Block (little-endian) holding data, cut to
// capLen, with epb_flags when flags is not 0.
func epb(data []byte, capLen int, flags uint32) []byte {
	var opts []byte
	if flags != 0 {
		opts = binary.LittleEndian.AppendUint16(opts, 2)
		opts = binary.LittleEndian.AppendUint16(opts, 4)
		opts = binary.LittleEndian.AppendUint32(opts, flags)
		opts = append(opts, 0, 0, 0, 0) // end of options
	}
	padded := (capLen + 3) &^ 3
	total := 28 + padded + len(opts) + 4
	b := binary.LittleEndian.AppendUint32(nil, 6)
	b = binary.LittleEndian.AppendUint32(b, uint32(total))
	b = binary.LittleEndian.AppendUint32(b, 0) // interface 0
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 1000)
	b = binary.LittleEndian.AppendUint32(b, uint32(capLen))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data[:capLen]...)
	b = append(b, make([]byte, padded-capLen)...)
	b = append(b, opts...)
	return binary.LittleEndian.AppendUint32(b, uint32(total))
}

// TestPcapngDirections: epb_flags inbound, outbound and absent come out
// as the three directions, in order, and a cut packet keeps its length on
// the wire.
func TestPcapngDirections(t *testing.T) {
	var file bytes.Buffer
	w, err := pcapgo.NewNgWriter(&file, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f := tcpFrame(t, ipA, ipB, 1, 2, layers.TCP{ACK: true}, 300)
	file.Write(epb(f, len(f), 1))
	file.Write(epb(f, len(f), 2))
	file.Write(epb(f, 60, 0))
	file.Write(epb(f, len(f), 2|1<<5)) // outbound, with reception-type bits set
	r, err := NewReader(&file)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		dir      Dir
		capLen   int
		truncate bool
	}{{DirIn, len(f), false}, {DirOut, len(f), false}, {DirUnknown, 60, true}, {DirOut, len(f), false}}
	for i, w := range want {
		p, err := r.Next()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if p.Dir != w.dir || len(p.Data) != w.capLen || p.Len != len(f) || p.Truncated() != w.truncate {
			t.Errorf("packet %d: dir %d, %d of %d bytes; want dir %d, %d of %d", i, p.Dir, len(p.Data), p.Len, w.dir, w.capLen, len(f))
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last packet: %v, want io.EOF", err)
	}
}

// pcapHeader is a little-endian pcap file header of link type lt.
func pcapHeader(lt uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	return binary.LittleEndian.AppendUint32(b, lt)
}

func pcapRecord(data []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 1)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// TestCooked: SLL and SLL2 frames become Ethernet frames with the same
// EtherType and payload, the sender's MAC as source, 14 header bytes, and
// the packet type's direction.
func TestCooked(t *testing.T) {
	eth := tcpFrame(t, ipA, ipB, 1, 2, layers.TCP{ACK: true}, 10)
	payload := eth[14:]
	sll := func(pktType uint16) []byte {
		b := binary.BigEndian.AppendUint16(nil, pktType)
		b = binary.BigEndian.AppendUint16(b, 1) // ARPHRD_ETHER
		b = binary.BigEndian.AppendUint16(b, 6)
		b = append(b, macA...)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		return append(b, payload...)
	}
	sll2 := func(pktType byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, 0x0800)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint32(b, 7)
		b = binary.BigEndian.AppendUint16(b, 1)
		b = append(b, pktType, 6)
		b = append(b, macA...)
		b = append(b, 0, 0)
		return append(b, payload...)
	}
	for _, c := range []struct {
		name string
		lt   uint32
		recs [][]byte
	}{{"SLL", 113, [][]byte{sll(0), sll(4)}}, {"SLL2", 276, [][]byte{sll2(0), sll2(4)}}} {
		t.Run(c.name, func(t *testing.T) {
			file := pcapHeader(c.lt)
			for _, r := range c.recs {
				file = append(file, pcapRecord(r)...)
			}
			r, err := NewReader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			for i, dir := range []Dir{DirIn, DirOut} {
				p, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				want := append(append(make([]byte, 6), macA...), eth[12:]...)
				if !bytes.Equal(p.Data, want) || p.Len != len(eth) || p.Dir != dir {
					t.Errorf("packet %d: dir %d len %d\n% x\nwant dir %d len %d\n% x", i, p.Dir, p.Len, p.Data, dir, len(eth), want)
				}
			}
			if !r.Cooked {
				t.Error("the reader does not say it converted a cooked capture")
			}
		})
	}
}

// TestLinkTypeRefused: a raw-IP capture is an error that names the type.
func TestLinkTypeRefused(t *testing.T) {
	_, err := NewReader(bytes.NewReader(pcapHeader(101)))
	if err == nil || !strings.Contains(err.Error(), "link type 101") {
		t.Fatalf("raw IP capture: %v, want an error naming link type 101", err)
	}
	_, err = NewReader(strings.NewReader("hello, world, not a capture"))
	if err == nil || !strings.Contains(err.Error(), "not a pcap or pcapng file") {
		t.Fatalf("text: %v", err)
	}
}

// TestPlanGRO: a TCP super-packet counts as ceil(payload / (MSS - the
// options it carries)) segments, each with its own headers; without a
// SYN, by the largest ordinary segment; without either, once and marked.
func TestPlanGRO(t *testing.T) {
	ts := []layers.TCPOption{{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1}, {OptionType: layers.TCPOptionKindNop, OptionLength: 1}}
	mss := []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}} // 1460
	pkt := func(b []byte) Packet { return Packet{Data: b, Len: len(b), Time: time.Unix(1, 0)} }
	const seg = 1460 - 12 // the timestamps option comes out of every segment
	super := tcpFrame(t, ipA, ipB, 40000, 80, layers.TCP{ACK: true, Options: ts}, 5*seg+100)
	hdr := 14 + 20 + 32

	pl := NewPlanner(Options{})
	pl.Plan(pkt(tcpFrame(t, ipA, ipB, 40000, 80, layers.TCP{SYN: true, Options: mss}, 0)))
	pl.Plan(pkt(tcpFrame(t, ipB, ipA, 80, 40000, layers.TCP{SYN: true, ACK: true, Options: mss}, 0)))
	f := pl.Plan(pkt(super))
	if f.Segs != 6 || f.Bytes != uint64(len(super)+5*hdr) || f.Marks != 0 {
		t.Errorf("after the SYNs: %d segments, %d bytes, marks %b; want 6, %d, none", f.Segs, f.Bytes, f.Marks, len(super)+5*hdr)
	}

	pl = NewPlanner(Options{})
	pl.Plan(pkt(tcpFrame(t, ipA, ipB, 40000, 80, layers.TCP{ACK: true, Options: ts}, 1000)))
	f = pl.Plan(pkt(super))
	if want := (5*seg + 100 + 999) / 1000; f.Segs != uint64(want) {
		t.Errorf("by the largest segment (1000): %d segments, want %d", f.Segs, want)
	}

	pl = NewPlanner(Options{})
	f = pl.Plan(pkt(super))
	if f.Segs != 1 || f.Bytes != uint64(len(super)) || f.Marks != MarkSegmentsGuessed {
		t.Errorf("nothing known: %d segments, %d bytes, marks %b; want 1, %d, guessed", f.Segs, f.Bytes, f.Marks, len(super))
	}
}

// TestPlanDirection: the file's direction wins; else --direction-by-mac
// or --direction-by-net; else ingress.
func TestPlanDirection(t *testing.T) {
	aToB := tcpFrame(t, ipA, ipB, 1, 2, layers.TCP{ACK: true}, 10) // from macA, 198.18.0.1
	p := Packet{Data: aToB, Len: len(aToB)}
	for _, c := range []struct {
		name string
		o    Options
		dir  Dir
		out  bool
	}{
		{"nothing", Options{}, DirUnknown, false},
		{"mac", Options{ByMAC: macA}, DirUnknown, true},
		{"other mac", Options{ByMAC: macB}, DirUnknown, false},
		{"net", Options{ByNet: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/31")}}, DirUnknown, true},
		{"other net", Options{ByNet: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")}}, DirUnknown, false},
		{"file says in", Options{ByMAC: macA}, DirIn, false},
		{"file says out", Options{}, DirOut, true},
	} {
		p.Dir = c.dir
		if f := NewPlanner(c.o).Plan(p); f.Out != c.out {
			t.Errorf("%s: out %v, want %v", c.name, f.Out, c.out)
		}
	}
}

// udpFrame builds an Ethernet/IPv4/UDP frame with gopacket.
func udpFrame(t *testing.T, src, dst net.IP, sport, dport uint16) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestShardSpreadsFlows: the flows between one pair of hosts, UDP or
// TCP, differing only in the source port, spread over 2 and 4 workers
// (the replay runs each shard on worker Shard % workers); and both
// directions of a flow have one shard, so that one worker runs all of it.
func TestShardSpreadsFlows(t *testing.T) {
	const flows = 64
	pkt := func(b []byte) Packet { return Packet{Data: b, Len: len(b), Time: time.Unix(1, 0)} }
	for _, proto := range []string{"udp", "tcp"} {
		frame := func(src, dst net.IP, sport, dport uint16) []byte {
			if proto == "udp" {
				return udpFrame(t, src, dst, sport, dport)
			}
			return tcpFrame(t, src, dst, sport, dport, layers.TCP{ACK: true}, 10)
		}
		pl := NewPlanner(Options{})
		shards := make([]uint32, flows)
		for i := range flows {
			sport := uint16(10000 + i)
			shards[i] = pl.Plan(pkt(frame(ipA, ipB, sport, 53))).Shard
			if back := pl.Plan(pkt(frame(ipB, ipA, 53, sport))).Shard; back != shards[i] {
				t.Errorf("%s flow %d: shard %#x, its reverse %#x", proto, i, shards[i], back)
			}
		}
		for _, workers := range []uint32{2, 4} {
			per := make([]int, workers)
			for _, s := range shards {
				per[s%workers]++
			}
			// An even share is flows/workers; a hash that ignores the
			// ports puts all of them on one worker.
			for w, n := range per {
				if even := flows / int(workers); n < even/2 || n > even*3/2 {
					t.Errorf("%s, %d workers: worker %d has %d of %d flows (%v)", proto, workers, w, n, flows, per)
				}
			}
			t.Logf("%s, %d workers: %v flows each", proto, workers, per)
		}
	}
}
