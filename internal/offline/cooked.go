package offline

import (
	"encoding/binary"
	"fmt"
)

// Linux cooked captures (what tcpdump -i any writes) carry no Ethernet
// header but a pseudo-header of their own: SLL (16 bytes) or SLL2 (20
// bytes). fromCooked replaces it with an Ethernet header that has the same
// EtherType, the sender's link-layer address as its source (when it is a
// MAC) and an all-zero destination, so that the programs parse the frame
// as they would on an Ethernet interface; the frame's length changes by
// the difference of the headers. The pseudo-header's packet type gives the
// direction: outgoing (4) is egress, everything else ingress.
const (
	sllLen      = 16
	sll2Len     = 20
	ethLen      = 14
	sllOutgoing = 4 // PACKET_OUTGOING
)

func (r *Reader) fromCooked(p Packet, lt linkType) (Packet, error) {
	var proto, pktType uint16
	var addrLen int
	var addr []byte
	hdr := sllLen
	if lt == linkSLL2 {
		hdr = sll2Len
	}
	if len(p.Data) < hdr {
		return Packet{}, fmt.Errorf("a %d-byte packet is shorter than its Linux cooked header (%d bytes)", len(p.Data), hdr)
	}
	if lt == linkSLL2 {
		proto = binary.BigEndian.Uint16(p.Data[0:2])
		pktType = uint16(p.Data[10])
		addrLen = int(p.Data[11])
		addr = p.Data[12:20]
	} else {
		pktType = binary.BigEndian.Uint16(p.Data[0:2])
		addrLen = int(binary.BigEndian.Uint16(p.Data[4:6]))
		addr = p.Data[6:14]
		proto = binary.BigEndian.Uint16(p.Data[14:16])
	}
	payload := p.Data[hdr:]
	r.buf = append(r.buf[:0], make([]byte, ethLen)...)
	if addrLen == 6 {
		copy(r.buf[6:12], addr[:6])
	}
	binary.BigEndian.PutUint16(r.buf[12:14], proto)
	r.buf = append(r.buf, payload...)
	p.Data = r.buf
	p.Len = p.Len - hdr + ethLen
	if p.Dir == DirUnknown {
		p.Dir = DirIn
		if pktType == sllOutgoing {
			p.Dir = DirOut
		}
	}
	return p, nil
}
