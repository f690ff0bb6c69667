package bpftest

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Design limits of the eBPF parser (bpf/include/parse.h), which a frame may
// exceed on purpose. gopacket has no such limits.
const (
	maxVLANTags = 2    // MAX_VLAN_TAGS
	maxIPv6Ext  = 8    // MAX_IPV6_EXT
	maxHdrOff   = 2048 // MAX_HDR_OFF: no header starts past this frame offset
)

// Options are the load-time settings of the programs that change keys.
type Options struct {
	NoARP bool // --no-arp: ARP frames are not broken down
	// NoIfindex is for the programs that see no interface (cgroup and
	// process mode): their keys' Ifindex is 0, not TestRunIfindex.
	NoIfindex bool
}

// TestRunIfindex is the interface BPF_PROG_TEST_RUN runs TC and XDP
// programs on when the context names none: the loopback device of the
// caller's network namespace, index 1 in every namespace. Keys the frame
// hooks produce under test carry it.
const TestRunIfindex = 1

// Expectation is what the eBPF programs must make of one frame, derived
// from gopacket's decoding of the same bytes.
type Expectation struct {
	Key flow.Key
	// Loose is set where gopacket decodes none of a protocol's own fields
	// although the header the parser reads is whole: an OSPF packet whose
	// body gopacket rejects, an IGMP message of a type or length gopacket
	// does not know, ARP of 256 bytes or more. The key's SrcPort, DstPort,
	// Malformed flag (and an ARP row's addresses) are then not judged;
	// everything else is.
	Loose bool
	// Payload is the TCP or UDP payload as gopacket delimits it (by the IP
	// and UDP lengths), for a key with ports; nil without.
	Payload []byte
	// HasL4Payload says whether the key is a TCP or UDP flow whose
	// payload the programs look at (even an empty one).
	HasL4Payload bool
}

// Match reports whether a key the programs produced is the expected one.
func (e Expectation) Match(got flow.Key) bool {
	if !e.Loose {
		return got == e.Key
	}
	want := e.Key
	want.SrcPort, want.DstPort = got.SrcPort, got.DstPort
	want.Flags = want.Flags&^flow.Malformed | got.Flags&flow.Malformed
	if want.IsARP() {
		want.Src, want.Dst = got.Src, got.Dst
	}
	return got == want
}

// CheckL7 checks the programs' verdict on the frame's application protocol
// against what can be known without recognising protocols: flows without a
// TCP or UDP payload to look at are settled as L7Unknown at once, an empty
// payload leaves the verdict pending (L7Unchecked), and any other payload
// gets a verdict. Which protocol a payload holds is checked by the cases
// that were built with one (Case.L7).
func (e Expectation) CheckL7(got flow.L7) error {
	switch {
	case !e.HasL4Payload:
		if got != flow.L7Unknown {
			return fmt.Errorf("l7 = %d, want %d (no TCP or UDP payload: settled at once)", got, flow.L7Unknown)
		}
	case len(e.Payload) == 0:
		if got != flow.L7Unchecked {
			return fmt.Errorf("l7 = %d, want %d (empty payload: still pending)", got, flow.L7Unchecked)
		}
	case got == flow.L7Unchecked || (!got.Known() && got != flow.L7Unknown):
		return fmt.Errorf("l7 = %d for a %d-byte payload, want a verdict", got, len(e.Payload))
	}
	return nil
}

// ExpectedKey returns the flow key the eBPF programs must produce for frame
// with default options; see Expect.
func ExpectedKey(frame []byte) (flow.Key, error) {
	e, err := Expect(frame, Options{})
	if e.Loose {
		return e.Key, errors.New("gopacket cannot judge this frame's L4 fields; use Expect")
	}
	return e.Key, err
}

// Expect returns what the eBPF programs must make of frame, taken from
// gopacket's decoding of the same bytes
// (gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default),
// and gopacket's decoders of single layers).
//
// Where our keys differ from gopacket by design, the rule is spelled out
// where it is applied. The ones that apply throughout:
//   - A header gopacket cannot decode (cut short, or an impossible length)
//     adds nothing to the key and sets flow.Malformed. So does a header that
//     the previous one announces but that gopacket did not find.
//   - Addresses of a row whose IP header is unusable are the key's zero
//     bytes, which capture.KeyFromBPF shows as 0.0.0.0 or ::.
//   - The parser never reads the contents of options (IPv4 options, IPv6
//     hop-by-hop and destination options, TCP options): they do not change
//     a key. gopacket rejects options it cannot parse; where it does, the
//     oracle decodes the header with its options overwritten by NOPs, or
//     with gopacket's IPv6ExtensionSkipper, which reads only the length.
func Expect(frame []byte, o Options) (Expectation, error) {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	c := &cursor{layers: pkt.Layers(), data: frame}
	var x Expectation
	k := &x.Key
	if !o.NoIfindex {
		k.Ifindex = TestRunIfindex
	}

	e, ok := c.next().(*layers.Ethernet)
	if !ok || !decodedOK(e, c.at) {
		return x, fmt.Errorf("gopacket found no Ethernet header in %d bytes", len(frame))
	}
	// gopacket reports an 802.3 length field as EthernetTypeLLC (0), as our
	// key does.
	k.EtherType = uint16(e.EthernetType)

	for tags := 0; isVLAN(k.EtherType); tags++ {
		if tags == maxVLANTags {
			// Deeper stacks are counted under the next tag's TPID.
			return x, nil
		}
		d, ok := c.next().(*layers.Dot1Q)
		if !ok || !decodedOK(d, c.at) {
			k.Flags |= flow.Malformed
			return x, nil
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

	rest := c.rest()
	switch k.EtherType {
	case flow.EtherTypeIPv4:
		ipv4(rest, &x)
	case flow.EtherTypeIPv6:
		ipv6(rest, len(frame)-len(rest), &x)
	case flow.EtherTypeARP:
		// ARP rows always carry IPv4 addresses; with --no-arp, or for ARP
		// of another protocol, they are 0.0.0.0.
		k.Src, k.Dst = netip.IPv4Unspecified(), netip.IPv4Unspecified()
		if !o.NoARP {
			arpFields(c, &x)
		}
	}
	return x, nil
}

func isVLAN(t uint16) bool {
	return t == uint16(layers.EthernetTypeDot1Q) || t == uint16(layers.EthernetTypeQinQ)
}

func arpFields(c *cursor, x *Expectation) {
	k := &x.Key
	// gopacket computes an ARP packet's length, 8 + 2*hlen + 2*plen, in 8
	// bits (layers/arp.go), so it fails or misreads ARP of 256 bytes and
	// more, which RFC 826 allows. The oracle computes the length itself:
	// such a packet cut short is malformed; a whole one is not judged.
	if at := c.rest(); len(at) >= 6 {
		if n := 8 + 2*int(at[4]) + 2*int(at[5]); n >= 256 {
			if len(at) < n {
				k.Flags |= flow.Malformed
			} else {
				x.Loose = true
			}
			return
		}
	}
	a, ok := c.next().(*layers.ARP)
	if !ok || !decodedOK(a, c.at) {
		k.Flags |= flow.Malformed
		return
	}
	k.SrcPort = a.Operation
	if a.Protocol == layers.EthernetTypeIPv4 && a.ProtAddressSize == 4 {
		k.Src = netip.AddrFrom4([4]byte(a.SourceProtAddress))
		k.Dst = netip.AddrFrom4([4]byte(a.DstProtAddress))
	}
}

// ipv4 reads the IPv4 header at the start of b, then its payload.
func ipv4(b []byte, x *Expectation) {
	k := &x.Key
	k.Src, k.Dst = netip.IPv4Unspecified(), netip.IPv4Unspecified()
	var ip layers.IPv4
	if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		// Option contents are not the parser's business (see Expect).
		var nop []byte
		if len(b) >= 20 {
			nop = withNOPOptions(b, 20, int(b[0]&0x0F)*4)
		}
		if nop == nil || ip.DecodeFromBytes(nop, gopacket.NilDecodeFeedback) != nil {
			k.Flags |= flow.Malformed
			return
		}
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
	// gopacket stops at any fragment; the first one does carry the L4
	// header, and our key has its ports: decode the payload either way.
	// gopacket's payload ends where the IP total length says (a length of
	// 0, as TSO and BIG TCP packets carry, reaches the frame's end).
	transport(ip.Payload, x)
}

// withNOPOptions returns a copy of a header whose option bytes
// [from, to) are NOPs (1 in IPv4 and TCP), or nil if there are none or
// the header is not all there.
func withNOPOptions(b []byte, from, to int) []byte {
	if len(b) < from || to <= from || to > len(b) {
		return nil
	}
	c := append([]byte(nil), b...)
	for i := from; i < to; i++ {
		c[i] = 1
	}
	return c
}

// ipv6 reads the IPv6 header at the start of b, which sits at offset l3
// of the frame, and its extension headers, then the payload.
func ipv6(b []byte, l3 int, x *Expectation) {
	k := &x.Key
	k.Src, k.Dst = netip.IPv6Unspecified(), netip.IPv6Unspecified()
	var ip layers.IPv6
	// gopacket reports errors about a leading hop-by-hop header and about
	// payload length 0 from here, after the fixed header's fields are set;
	// the fixed header itself fails only when it is shorter than 40 bytes.
	err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback)
	if (err != nil && len(b) < 40) || ip.Version != 6 {
		k.Flags |= flow.Malformed
		return
	}
	k.Src = netip.AddrFrom16([16]byte(ip.SrcIP.To16()))
	k.Dst = netip.AddrFrom16([16]byte(ip.DstIP.To16()))

	// The payload is payload_len bytes after the fixed header (RFC 8200 3),
	// a leading hop-by-hop header included; gopacket counts them from the
	// end of that header. Payload length 0 is a jumbogram's (RFC 2675) or
	// a BIG TCP packet's: the packet runs to the frame's end, which gopacket
	// accepts only with a jumbo option. The oracle delimits it itself.
	payload := b[40:]
	if ip.Length != 0 && int(ip.Length) < len(payload) {
		payload = payload[:ip.Length]
	}

	nh := ip.NextHeader
	// off is where the next header starts in the frame; each header's
	// payload is what follows it.
	off := l3 + 40
	for ext := 0; ; ext++ {
		k.Proto = uint8(nh)
		if off > maxHdrOff {
			// The parser reads no header that starts this far in: the
			// chain is too deep to follow, in bytes.
			k.Flags |= flow.DeepChain
			return
		}
		switch nh {
		case layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination,
			layers.IPProtocolIPv6Routing, layers.IPProtocolAH, layers.IPProtocolIPv6Fragment:
			if ext == maxIPv6Ext {
				// The parser stops following the chain here, and says so.
				k.Flags |= flow.DeepChain
				return
			}
		default:
			transport(payload, x)
			return
		}
		before := len(payload)
		switch nh {
		case layers.IPProtocolAH:
			ah, ok := single(payload, layers.LayerTypeIPSecAH).(*layers.IPSecAH)
			if !ok {
				k.Flags |= flow.Malformed
				return
			}
			nh, payload = ah.NextHeader, ah.Payload
		case layers.IPProtocolIPv6Fragment:
			f, ok := single(payload, layers.LayerTypeIPv6Fragment).(*layers.IPv6Fragment)
			if !ok {
				k.Flags |= flow.Malformed
				return
			}
			nh, payload = f.NextHeader, f.Payload
			if f.FragmentOffset != 0 {
				k.Proto = uint8(nh)
				k.Flags |= flow.Fragment
				return
			}
		default:
			// Hop-by-hop, destination options and routing headers share one
			// layout (RFC 8200 4.3-4.6). gopacket's own decoders also parse
			// their options (see Expect) and know only routing type 0: the
			// skipper steps over any of them by its length.
			var sk layers.IPv6ExtensionSkipper
			if sk.DecodeFromBytes(payload, gopacket.NilDecodeFeedback) != nil {
				k.Flags |= flow.Malformed
				return
			}
			nh, payload = sk.NextHeader, sk.Payload
		}
		off += before - len(payload)
	}
}

// transport fills the fields of the protocols that have them (ports, ICMP
// type and code, SPI, GRE and OSPF and IGMP fields) from b, the IP payload;
// other protocols are counted without.
func transport(b []byte, x *Expectation) {
	k := &x.Key
	ok := true
	switch k.Proto {
	case flow.ProtoTCP:
		var h layers.TCP
		if err := h.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			// Option contents are not the parser's business (see Expect).
			var nop []byte
			if len(b) >= 20 {
				nop = withNOPOptions(b, 20, int(b[12]>>4)*4)
			}
			ok = nop != nil && h.DecodeFromBytes(nop, gopacket.NilDecodeFeedback) == nil
		}
		if ok {
			k.SrcPort, k.DstPort = uint16(h.SrcPort), uint16(h.DstPort)
			x.HasL4Payload, x.Payload = true, h.Payload
		}
	case flow.ProtoUDP:
		var h layers.UDP
		if ok = h.DecodeFromBytes(b, gopacket.NilDecodeFeedback) == nil; ok {
			k.SrcPort, k.DstPort = uint16(h.SrcPort), uint16(h.DstPort)
			x.HasL4Payload, x.Payload = true, h.Payload
		}
	case flow.ProtoSCTP:
		var h layers.SCTP
		if ok = h.DecodeFromBytes(b, gopacket.NilDecodeFeedback) == nil; ok {
			k.SrcPort, k.DstPort = uint16(h.SrcPort), uint16(h.DstPort)
		}
	case flow.ProtoICMP:
		var h layers.ICMPv4
		if ok = h.DecodeFromBytes(b, gopacket.NilDecodeFeedback) == nil; ok {
			k.SrcPort, k.DstPort = uint16(h.TypeCode.Type()), uint16(h.TypeCode.Code())
		}
	case flow.ProtoICMPv6:
		var h layers.ICMPv6
		if ok = h.DecodeFromBytes(b, gopacket.NilDecodeFeedback) == nil; ok {
			k.SrcPort, k.DstPort = uint16(h.TypeCode.Type()), uint16(h.TypeCode.Code())
		}
	case flow.ProtoESP:
		var h *layers.IPSecESP
		if h, ok = single(b, layers.LayerTypeIPSecESP).(*layers.IPSecESP); ok {
			k.SrcPort, k.DstPort = uint16(h.SPI>>16), uint16(h.SPI)
		}
	case flow.ProtoAH:
		// Only IPv4 gets here: in IPv6, AH is an extension header.
		var h *layers.IPSecAH
		if h, ok = single(b, layers.LayerTypeIPSecAH).(*layers.IPSecAH); ok {
			k.SrcPort, k.DstPort = uint16(h.SPI>>16), uint16(h.SPI)
		}
	case flow.ProtoGRE:
		var h *layers.GRE
		// Rule: source routing (the R bit) went with RFC 1701 and Linux
		// refuses it (gre_parse_header); the parser calls it malformed
		// without walking the routing entries that gopacket decodes.
		if h, ok = single(b, layers.LayerTypeGRE).(*layers.GRE); ok && !h.RoutingPresent {
			k.SrcPort, k.DstPort = uint16(h.Protocol), greFlags(h)
		} else {
			ok = false
		}
	case flow.ProtoOSPF:
		l, err := singleErr(b, layers.LayerTypeOSPF)
		switch h := l.(type) {
		case *layers.OSPFv2:
			k.SrcPort, k.DstPort = uint16(h.Type), uint16(h.Version)
		case *layers.OSPFv3:
			k.SrcPort, k.DstPort = uint16(h.Type), uint16(h.Version)
		default:
			// gopacket refuses a header cut short, or of a version other
			// than 2 and 3, with these words; everything else it refuses
			// is in the body, which the parser does not read.
			msg := fmt.Sprint(err)
			ok = false
			x.Loose = !strings.HasPrefix(msg, "Packet too smal") && !strings.HasPrefix(msg, "Unable to determine OSPF type")
		}
	case flow.ProtoIGMP:
		// Rule: every IGMP message has at least 8 bytes (RFC 3376 4);
		// gopacket's IGMPv3 report decoder ignores its own length errors.
		if len(b) < 8 {
			ok = false
			break
		}
		switch h := single(b, layers.LayerTypeIGMP).(type) {
		case *layers.IGMP:
			k.SrcPort = uint16(h.Type)
		case *layers.IGMPv1or2:
			k.SrcPort = uint16(h.Type)
		default:
			// A type or length gopacket does not know: not judged.
			ok, x.Loose = false, true
		}
	}
	if !ok {
		// Fields of a broken header would be garbage: our key keeps zeros.
		k.SrcPort, k.DstPort = 0, 0
		if !x.Loose {
			k.Flags |= flow.Malformed
		}
	}
}

// greFlags rebuilds the first 16 bits of a GRE header from gopacket's
// fields: C R K S s Recur(3) | Flags(5, A first) Version(3).
func greFlags(h *layers.GRE) uint16 {
	bit := func(b bool, n uint) uint16 {
		if b {
			return 1 << n
		}
		return 0
	}
	return bit(h.ChecksumPresent, 15) | bit(h.RoutingPresent, 14) | bit(h.KeyPresent, 13) |
		bit(h.SeqPresent, 12) | bit(h.StrictSourceRoute, 11) | uint16(h.RecursionControl&7)<<8 |
		uint16(h.Flags&0x1F)<<3 | uint16(h.Version&7)
}

// single decodes b as one layer of type t with gopacket and returns it, or
// nil when gopacket did not decode it.
func single(b []byte, t gopacket.LayerType) gopacket.Layer {
	l, _ := singleErr(b, t)
	return l
}

// singleErr is single, and the error gopacket reported for the layer.
func singleErr(b []byte, t gopacket.LayerType) (gopacket.Layer, error) {
	pkt := gopacket.NewPacket(b, t, gopacket.Default)
	if ls := pkt.Layers(); len(ls) > 0 && ls[0].LayerType() == t {
		return ls[0], nil
	}
	if el := pkt.ErrorLayer(); el != nil {
		return nil, el.Error()
	}
	return nil, fmt.Errorf("gopacket decoded no %v", t)
}

// cursor walks gopacket's layers of data, knowing where each one starts.
type cursor struct {
	layers []gopacket.Layer
	data   []byte
	i      int
	at     []byte // the bytes from the start of the layer last returned
	off    int    // where the next layer starts
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

// rest is the bytes after the last layer returned.
func (c *cursor) rest() []byte { return c.data[min(c.off, len(c.data)):] }

// decodedOK reports whether gopacket decodes layer l from at, the bytes
// where it starts, without error. gopacket.NewPacket keeps some layers
// whose decoding failed, followed by a DecodeFailure that does not say
// which layer failed, so the layer is decoded again on its own. Some of
// gopacket's decoders panic on short input, as NewPacket knows: a panic is
// a failure here too.
func decodedOK(l gopacket.Layer, at []byte) (ok bool) {
	dl, isDL := reflect.New(reflect.TypeOf(l).Elem()).Interface().(gopacket.DecodingLayer)
	if !isDL {
		// gopacket decodes this layer only inside a packet, where a
		// failure drops the layer: it is here, so it was decoded.
		return true
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
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
