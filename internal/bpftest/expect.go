package bpftest

import (
	"fmt"
	"net/netip"
	"reflect"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Design limits of the eBPF parser (bpf/include/parse.h), which a frame may
// exceed on purpose. gopacket has no such limits.
const (
	maxVLANTags = 2 // MAX_VLAN_TAGS
	maxIPv6Ext  = 8 // MAX_IPV6_EXT
)

// ExpectedKey returns the flow key the eBPF programs must produce for frame,
// taken from gopacket's decoding of the same bytes
// (gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)).
//
// It reads gopacket's layers; where our keys differ from gopacket by design,
// the rule is spelled out where it is applied. The ones that apply
// throughout:
//   - A header gopacket cannot decode (cut short, or an impossible length)
//     adds nothing to the key and sets flow.Malformed. So does a header that
//     the previous one announces but that gopacket did not find.
//   - Addresses of a row whose IP header is unusable are the key's zero
//     bytes, which capture.KeyFromBPF shows as 0.0.0.0 or ::.
func ExpectedKey(frame []byte) (flow.Key, error) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	c := &cursor{layers: pkt.Layers(), data: frame}
	var k flow.Key

	e, ok := c.next().(*layers.Ethernet)
	if !ok || !decodedOK(e, c.at) {
		return k, fmt.Errorf("gopacket found no Ethernet header in %d bytes", len(frame))
	}
	// gopacket reports an 802.3 length field as EthernetTypeLLC (0), as our
	// key does.
	k.EtherType = uint16(e.EthernetType)

	for tags := 0; isVLAN(k.EtherType); tags++ {
		if tags == maxVLANTags {
			// Deeper stacks are counted under the next tag's TPID.
			return k, nil
		}
		d, ok := c.next().(*layers.Dot1Q)
		if !ok || !decodedOK(d, c.at) {
			k.Flags |= flow.Malformed
			return k, nil
		}
		// The outermost tag names the row's VLAN; a priority tag (VID 0)
		// names none, so an inner tag may.
		if k.VLAN == 0 {
			k.VLAN = d.VLANIdentifier
		}
		k.EtherType = uint16(d.Type)
		// Behind a tag, gopacket keeps a length field as a type; our key
		// stores 0 for it, as for an untagged 802.3 frame.
		if k.EtherType < 0x0600 {
			k.EtherType = 0
		}
	}

	switch k.EtherType {
	case flow.EtherTypeIPv4:
		ipv4(c, &k)
	case flow.EtherTypeIPv6:
		if err := ipv6(c, &k); err != nil {
			return k, err
		}
	}
	return k, nil
}

func isVLAN(t uint16) bool {
	return t == uint16(layers.EthernetTypeDot1Q) || t == uint16(layers.EthernetTypeQinQ)
}

func ipv4(c *cursor, k *flow.Key) {
	k.Src, k.Dst = netip.IPv4Unspecified(), netip.IPv4Unspecified()
	ip, ok := c.next().(*layers.IPv4)
	if !ok || !decodedOK(ip, c.at) {
		k.Flags |= flow.Malformed
		return
	}
	// gopacket does not check the version nibble; a frame whose version
	// disagrees with its EtherType has no usable IP header.
	if ip.Version != 4 {
		k.Flags |= flow.Malformed
		return
	}
	k.Src = netip.AddrFrom4([4]byte(ip.SrcIP.To4()))
	k.Dst = netip.AddrFrom4([4]byte(ip.DstIP.To4()))
	k.Proto = uint8(ip.Protocol)
	if ip.FragOffset != 0 {
		// A later fragment: its payload has no L4 header, so no ports.
		k.Flags |= flow.Fragment
		return
	}
	if ip.Flags&layers.IPv4MoreFragments != 0 {
		// gopacket stops at any fragment; the first one does carry the L4
		// header, and our key has its ports. Decode it from the payload.
		c = subCursor(ip.Payload, ip.Protocol.LayerType())
	}
	transport(c, k)
}

func ipv6(c *cursor, k *flow.Key) error {
	k.Src, k.Dst = netip.IPv6Unspecified(), netip.IPv6Unspecified()
	ip, ok := c.next().(*layers.IPv6)
	if !ok || !decodedOK(ip, c.at) || ip.Version != 6 {
		k.Flags |= flow.Malformed
		return nil
	}
	k.Src = netip.AddrFrom16([16]byte(ip.SrcIP.To16()))
	k.Dst = netip.AddrFrom16([16]byte(ip.DstIP.To16()))

	nh := ip.NextHeader
	for ext := 0; ; ext++ {
		k.Proto = uint8(nh)
		var l gopacket.Layer
		switch nh {
		case layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination,
			layers.IPProtocolIPv6Routing, layers.IPProtocolAH, layers.IPProtocolIPv6Fragment:
			if ext == maxIPv6Ext {
				// The parser stops following the chain here, and says so.
				k.Flags |= flow.DeepChain
				return nil
			}
			l = c.next()
			if l == nil || l.LayerType() != nh.LayerType() || !decodedOK(l, c.at) {
				k.Flags |= flow.Malformed
				return nil
			}
		default:
			transport(c, k)
			return nil
		}
		switch h := l.(type) {
		case *layers.IPv6HopByHop:
			nh = h.NextHeader
		case *layers.IPv6Destination:
			nh = h.NextHeader
		case *layers.IPv6Routing:
			nh = h.NextHeader
		case *layers.IPSecAH:
			nh = h.NextHeader
		case *layers.IPv6Fragment:
			nh = h.NextHeader
			if h.FragmentOffset != 0 {
				k.Proto = uint8(nh)
				k.Flags |= flow.Fragment
				return nil
			}
			// As for IPv4: gopacket stops at the first fragment, whose
			// payload does start with the next header.
			c = subCursor(h.Payload, nh.LayerType())
		default:
			return fmt.Errorf("extension header %v decoded as %T", nh, h)
		}
	}
}

// transport fills the ports (or ICMP type and code) of the protocols that
// have them; other protocols are counted without.
func transport(c *cursor, k *flow.Key) {
	var want gopacket.LayerType
	switch k.Proto {
	case flow.ProtoTCP:
		want = layers.LayerTypeTCP
	case flow.ProtoUDP:
		want = layers.LayerTypeUDP
	case flow.ProtoSCTP:
		want = layers.LayerTypeSCTP
	case flow.ProtoICMP:
		want = layers.LayerTypeICMPv4
	case flow.ProtoICMPv6:
		want = layers.LayerTypeICMPv6
	default:
		return
	}
	l := c.next()
	if l == nil || l.LayerType() != want || !decodedOK(l, c.at) {
		// Ports of a broken header would be garbage: our key keeps zeros.
		k.Flags |= flow.Malformed
		return
	}
	switch h := l.(type) {
	case *layers.TCP:
		k.SrcPort, k.DstPort = uint16(h.SrcPort), uint16(h.DstPort)
	case *layers.UDP:
		k.SrcPort, k.DstPort = uint16(h.SrcPort), uint16(h.DstPort)
	case *layers.SCTP:
		k.SrcPort, k.DstPort = uint16(h.SrcPort), uint16(h.DstPort)
	case *layers.ICMPv4:
		k.SrcPort, k.DstPort = uint16(h.TypeCode.Type()), uint16(h.TypeCode.Code())
	case *layers.ICMPv6:
		k.SrcPort, k.DstPort = uint16(h.TypeCode.Type()), uint16(h.TypeCode.Code())
	}
}

// cursor walks gopacket's layers of data, knowing where each one starts.
type cursor struct {
	layers []gopacket.Layer
	data   []byte
	i      int
	at     []byte // the bytes from the start of the layer last returned
	off    int    // where the next layer starts
}

func subCursor(data []byte, first gopacket.LayerType) *cursor {
	pkt := gopacket.NewPacket(data, first, gopacket.Default)
	return &cursor{layers: pkt.Layers(), data: data}
}

// next returns the next decoded layer, or nil at the end or where gopacket
// gave up.
func (c *cursor) next() gopacket.Layer {
	if c.i >= len(c.layers) {
		return nil
	}
	l := c.layers[c.i]
	if l.LayerType() == gopacket.LayerTypeDecodeFailure {
		return nil
	}
	c.i++
	c.at = c.data[min(c.off, len(c.data)):]
	c.off += len(l.LayerContents())
	return l
}

// decodedOK reports whether gopacket decodes layer l from at, the bytes
// where it starts, without error. gopacket.NewPacket keeps some layers
// whose decoding failed (an IPv4 header with IHL 4, a TCP header cut
// short), followed by a DecodeFailure that does not say which layer failed,
// so the layer is decoded again on its own.
func decodedOK(l gopacket.Layer, at []byte) bool {
	dl, ok := reflect.New(reflect.TypeOf(l).Elem()).Interface().(gopacket.DecodingLayer)
	if !ok {
		// gopacket decodes this layer only inside a packet, where a
		// failure drops the layer: it is here, so it was decoded.
		return true
	}
	return dl.DecodeFromBytes(at, gopacket.NilDecodeFeedback) == nil
}

// HeaderLen is the length of frame's headers up to and including the
// transport header (TCP options included), as gopacket decodes them: the
// bytes that every segment of a GSO packet repeats.
func HeaderLen(frame []byte) (int, error) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		return 0, fmt.Errorf("decode frame: %w", el.Error())
	}
	n := 0
	for _, l := range pkt.Layers() {
		n += len(l.LayerContents())
		if l.LayerType() == layers.LayerTypeTCP || l.LayerType() == layers.LayerTypeUDP {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no TCP or UDP header in %d bytes", len(frame))
}
