package flow

import (
	"fmt"
	"net/netip"
	"strconv"
)

// IP protocol numbers with fields of their own in a report.
const (
	ProtoICMP   uint8 = 1
	ProtoIGMP   uint8 = 2
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoGRE    uint8 = 47
	ProtoESP    uint8 = 50
	ProtoAH     uint8 = 51
	ProtoICMPv6 uint8 = 58
	ProtoOSPF   uint8 = 89
	ProtoSCTP   uint8 = 132
)

// EtherTypeARP is ARP's EtherType; ARP rows carry an opcode and addresses.
const EtherTypeARP uint16 = 0x0806

// ipProtoName returns IANA protocol keywords, spelled as pktstat-bpf spells
// them where it differs (ICMPv4, IPSEC-ESP, IPSEC-AH).
func ipProtoName(v uint8) (string, bool) {
	switch v {
	case 0:
		return "HOPOPT", true
	case 1:
		return "ICMPv4", true
	case 2:
		return "IGMP", true
	case 4:
		return "IPv4", true
	case 6:
		return "TCP", true
	case 17:
		return "UDP", true
	case 41:
		return "IPv6", true
	case 43:
		return "IPv6-Route", true
	case 44:
		return "IPv6-Frag", true
	case 47:
		return "GRE", true
	case 50:
		return "IPSEC-ESP", true
	case 51:
		return "IPSEC-AH", true
	case 58:
		return "IPv6-ICMP", true
	case 59:
		return "IPv6-NoNxt", true
	case 60:
		return "IPv6-Opts", true
	case 89:
		return "OSPFIGP", true
	case 103:
		return "PIM", true
	case 112:
		return "VRRP", true
	case 115:
		return "L2TP", true
	case 132:
		return "SCTP", true
	case 136:
		return "UDPLite", true
	case 137:
		return "MPLS-in-IP", true
	}
	return "", false
}

// etherTypeName names the non-IP EtherTypes commonly seen on a LAN.
func etherTypeName(v uint16) (string, bool) {
	switch v {
	case 0x0000:
		return "LLC", true
	case 0x0806:
		return "ARP", true
	case 0x8035:
		return "RARP", true
	case 0x8847:
		return "MPLS", true
	case 0x8848:
		return "MPLS-multicast", true
	case 0x8863:
		return "PPPoE-Discovery", true
	case 0x8864:
		return "PPPoE-Session", true
	case 0x888E:
		return "EAPOL", true
	case 0x88CC:
		return "LLDP", true
	case 0x88F7:
		return "PTP", true
	}
	return "", false
}

// ProtoName is the protocol name a report shows for the key: the IANA
// keyword of its IP protocol, or the name of its EtherType. Unknown values
// are shown as numbers, so nothing is ever unnamed.
func (k Key) ProtoName() string {
	if k.IsIP() {
		if n, ok := ipProtoName(k.Proto); ok {
			return n
		}
		return fmt.Sprintf("%d", k.Proto)
	}
	if n, ok := etherTypeName(k.EtherType); ok {
		return n
	}
	return fmt.Sprintf("0x%04x", k.EtherType)
}

// fieldsValid reports whether the key's protocol header was read: an IP
// packet that is not a later fragment, not cut short, and whose extension
// headers were followed to the end.
func (k Key) fieldsValid() bool {
	return k.IsIP() && k.Flags&(Fragment|Malformed|DeepChain) == 0
}

// HasPorts reports whether SrcPort and DstPort are transport ports.
func (k Key) HasPorts() bool {
	return k.fieldsValid() && (k.Proto == ProtoTCP || k.Proto == ProtoUDP || k.Proto == ProtoSCTP)
}

// IsICMP reports whether SrcPort and DstPort hold an ICMP type and code.
func (k Key) IsICMP() bool {
	return k.fieldsValid() && (k.Proto == ProtoICMP || k.Proto == ProtoICMPv6)
}

// SPI returns the security parameter index of an ESP or AH packet.
func (k Key) SPI() (uint32, bool) {
	if !k.fieldsValid() || (k.Proto != ProtoESP && k.Proto != ProtoAH) {
		return 0, false
	}
	return uint32(k.SrcPort)<<16 | uint32(k.DstPort), true
}

// GRE returns a GRE packet's protocol type (the EtherType it carries) and
// the first 16 bits of its header (flags and version).
func (k Key) GRE() (inner, flags uint16, ok bool) {
	if !k.fieldsValid() || k.Proto != ProtoGRE {
		return 0, 0, false
	}
	return k.SrcPort, k.DstPort, true
}

// OSPF returns an OSPF packet's type and version.
func (k Key) OSPF() (typ, version uint8, ok bool) {
	if !k.fieldsValid() || k.Proto != ProtoOSPF {
		return 0, 0, false
	}
	return uint8(k.SrcPort), uint8(k.DstPort), true
}

// IGMPType returns an IGMP message's type.
func (k Key) IGMPType() (uint8, bool) {
	if !k.fieldsValid() || k.Proto != ProtoIGMP {
		return 0, false
	}
	return uint8(k.SrcPort), true
}

// IsARP reports whether the key is an ARP frame's.
func (k Key) IsARP() bool { return k.EtherType == EtherTypeARP }

// ARPOp returns an ARP frame's opcode; its sender and target protocol
// addresses are Src and Dst (0.0.0.0 for ARP of other protocols). ok is
// false for a malformed ARP frame, and for the rows of --no-arp, which hold
// every ARP frame of a VLAN and direction without opcode or addresses.
func (k Key) ARPOp() (op uint16, ok bool) {
	if !k.IsARP() || k.Flags&Malformed != 0 {
		return 0, false
	}
	if k.SrcPort == 0 && unset(k.Src) && unset(k.Dst) {
		return 0, false
	}
	return k.SrcPort, true
}

func unset(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }

// The namers below are lookup tables, one a protocol registry: they share
// the shape of a switch, not any values, so there is nothing to share.

// ARPOpName names ARP opcodes as pktstat-bpf does (RFC 826, RFC 903).
func ARPOpName(op uint16) string {
	switch op {
	case 1:
		return "request"
	case 2:
		return "reply"
	case 3:
		return "rev-req"
	case 4:
		return "rev-reply"
	}
	return strconv.FormatUint(uint64(op), 10)
}

// OSPFTypeName names OSPF packet types as pktstat-bpf does (RFC 2328 A.3).
func OSPFTypeName(t uint8) string {
	switch t {
	case 1:
		return "Hello"
	case 2:
		return "DBDesc"
	case 3:
		return "LSReq"
	case 4:
		return "LSUpd"
	case 5:
		return "LSAck"
	}
	return strconv.FormatUint(uint64(t), 10)
}

// GREInnerName names the protocol a GRE packet carries as pktstat-bpf does.
func GREInnerName(t uint16) string {
	switch t {
	case 0x0800:
		return "IPv4"
	case 0x86DD:
		return "IPv6"
	case 0x6558:
		return "TransEth"
	case 0x8847:
		return "MPLS"
	case 0x8848:
		return "MPLS-MC"
	case 0x0806:
		return "ARP"
	case 0x880B:
		return "PPP"
	}
	return fmt.Sprintf("0x%04x", t)
}

// IGMPTypeName names IGMP message types (RFC 1112, 2236, 3376).
func IGMPTypeName(t uint8) string {
	switch t {
	case 0x11:
		return "query"
	case 0x12:
		return "v1-report"
	case 0x16:
		return "v2-report"
	case 0x17:
		return "leave"
	case 0x22:
		return "v3-report"
	}
	return strconv.FormatUint(uint64(t), 10)
}
