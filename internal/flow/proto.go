package flow

import "fmt"

// IP protocol numbers with fields of their own in a report.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
	ProtoSCTP   uint8 = 132
)

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

// HasPorts reports whether SrcPort and DstPort are transport ports.
func (k Key) HasPorts() bool {
	if !k.IsIP() || k.Flags&(Fragment|Malformed|DeepChain) != 0 {
		return false
	}
	return k.Proto == ProtoTCP || k.Proto == ProtoUDP || k.Proto == ProtoSCTP
}

// IsICMP reports whether SrcPort and DstPort hold an ICMP type and code.
func (k Key) IsICMP() bool {
	if !k.IsIP() || k.Flags&(Fragment|Malformed|DeepChain) != 0 {
		return false
	}
	return k.Proto == ProtoICMP || k.Proto == ProtoICMPv6
}
