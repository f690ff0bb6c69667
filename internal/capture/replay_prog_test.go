package capture

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/offline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// replayUDPFrame is an Ethernet/IPv4/UDP frame from sport, built by gopacket.
func replayUDPFrame(t *testing.T, sport uint16, payload int) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{198, 18, 0, 1}, DstIP: net.IP{198, 18, 0, 2}},
		&layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 53}, gopacket.Payload(make([]byte, payload)))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReplayMergesAndBounds: a whole frame (run by the programs) and a
// cut one of the same flow (keyed by the side copy, counted in Go) end up
// in one row with both packets' wire lengths; cut frames of more flows
// than --max-entries go to the untracked counts, so that memory stays
// bounded by the table.
func TestReplayMergesAndBounds(t *testing.T) {
	bpftest.RequireRoot(t)
	const maxEntries = 4
	r, err := StartReplay(ReplayOptions{MaxEntries: maxEntries, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pl := offline.NewPlanner(offline.Options{})
	whole := replayUDPFrame(t, 1000, 200)
	r.Feed(pl.Plan(offline.Packet{Data: whole, Len: len(whole)}))
	r.Feed(pl.Plan(offline.Packet{Data: whole[:60], Len: len(whole)}))
	for i := range 6 { // six more flows, one cut packet each
		f := replayUDPFrame(t, uint16(2000+i), 300)
		r.Feed(pl.Plan(offline.Packet{Data: f[:50], Len: len(f)}))
	}
	s, err := r.Drain()
	if err != nil {
		t.Fatal(err)
	}
	var rows, pkts, bytes uint64
	for _, f := range s.Flows {
		rows++
		pkts += f.Packets
		bytes += f.Bytes
		if f.SrcPort == 1000 && (f.Packets != 2 || f.Bytes != 2*uint64(len(whole))) {
			t.Errorf("flow from 1000: %d packets %d bytes, want 2 and %d", f.Packets, f.Bytes, 2*len(whole))
		}
	}
	u := s.UntrackedTotal()
	frame := uint64(len(replayUDPFrame(t, 0, 300)))
	if rows != maxEntries || u.Packets != 3 || u.Bytes != 3*frame {
		t.Errorf("%d rows and %d untracked packets (%d bytes); want %d rows, and the 3 cut packets that found no room (%d bytes)",
			rows, u.Packets, u.Bytes, maxEntries, 3*frame)
	}
	if pkts+u.Packets != 8 || bytes+u.Bytes != 2*uint64(len(whole))+6*frame {
		t.Errorf("%d packets %d bytes in all, want 8 and %d", pkts+u.Packets, bytes+u.Bytes, 2*uint64(len(whole))+6*frame)
	}
}
