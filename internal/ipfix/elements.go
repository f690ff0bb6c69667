// Package ipfix exports flow records as IPFIX (RFC 7011) messages to a
// collector over UDP or TCP: the encoder of the templates and records
// (encoder.go), and the exporter that sends them off the drain's path
// (exporter.go). No maintained Go IPFIX library is on the module proxy, so
// the encoder is this package's own; its tests decode every message with
// goflow2's independent decoder.
package ipfix

// DefaultPEN is the private enterprise number of the enterprise-specific
// elements when --ipfix-pen is not given: 32473, which IANA reserves for
// examples in documentation (RFC 5612). It is registered to no one, so
// it cannot clash with a vendor's elements, and no collector knows it.
const DefaultPEN = 32473

// Template IDs. Data set IDs are template IDs, so they must be 256 or more.
const (
	TemplateIPv4    uint16 = 256 // flows with IPv4 addresses, non-IP frames and the overflow record
	TemplateIPv6    uint16 = 257 // flows with IPv6 addresses
	TemplateOptions uint16 = 258 // the exporter's own statistics
)

// Set IDs of template sets (RFC 7011 3.3.2).
const (
	setTemplate        uint16 = 2
	setOptionsTemplate uint16 = 3
)

// varLen is the field length of a variable-length element (RFC 7011 7).
const varLen uint16 = 0xffff

// IANA information elements (https://www.iana.org/assignments/ipfix).
const (
	IEOctetDeltaCount              uint16 = 1
	IEPacketDeltaCount             uint16 = 2
	IEProtocolIdentifier           uint16 = 4
	IESourceTransportPort          uint16 = 7
	IESourceIPv4Address            uint16 = 8
	IEIngressInterface             uint16 = 10
	IEDestinationTransportPort     uint16 = 11
	IEDestinationIPv4Address       uint16 = 12
	IEEgressInterface              uint16 = 14
	IESourceIPv6Address            uint16 = 27
	IEDestinationIPv6Address       uint16 = 28
	IEICMPTypeCodeIPv4             uint16 = 32
	IEExportedMessageTotalCount    uint16 = 41
	IEExportedFlowRecordTotalCount uint16 = 42
	IEVlanID                       uint16 = 58
	IEFlowDirection                uint16 = 61
	IEICMPTypeCodeIPv6             uint16 = 139
	IEObservationDomainID          uint16 = 149
	IEFlowStartMilliseconds        uint16 = 152
	IEFlowEndMilliseconds          uint16 = 153
	IEIgnoredPacketTotalCount      uint16 = 164
	IEIgnoredOctetTotalCount       uint16 = 165
	IENotSentFlowTotalCount        uint16 = 166
	IEEthernetType                 uint16 = 256
)

// Enterprise-specific elements, under the private enterprise number of
// --ipfix-pen, for what has no IANA element.
const (
	PENProcessID        uint16 = 1 // unsigned32: the owner's PID (-c, -k)
	PENProcessName      uint16 = 2 // string: the owner's comm (-c, -k)
	PENApplication      uint16 = 3 // string: the application protocol found in the payload (TC, XDP)
	PENFlowFlags        uint16 = 4 // unsigned8: the Flag* bits
	PENCgroupPath       uint16 = 5 // string: the owner's cgroup v2 path (-c, -k)
	PENUntrackedFlows   uint16 = 6 // unsigned64, options: estimated flows that found the flow table full
	PENUntrackedPackets uint16 = 7 // unsigned64, options: packets of those flows (in the overflow records)
	PENUntrackedOctets  uint16 = 8 // unsigned64, options: their bytes
)

// Bits of the PENFlowFlags element. The low three equal flow.Flags.
const (
	FlagFragment  uint8 = 1 << 0 // a non-first IP fragment: no ports
	FlagMalformed uint8 = 1 << 1 // a header cut short or with an impossible length
	FlagDeepChain uint8 = 1 << 2 // an IPv6 extension-header chain too deep to follow
	// FlagOverflow marks the overflow record: traffic counted while the
	// flow table was full, without addresses or ports.
	FlagOverflow uint8 = 1 << 7
)

// field is one element of a template: its ID, its length (varLen for
// variable length) and whether it is enterprise-specific.
type field struct {
	id         uint16
	length     uint16
	enterprise bool
}

// flowFields returns the fields of the flow template of one address
// family, in the order the encoder writes them. ifaces adds the
// interfaces and the application protocol (TC and XDP); owners adds the
// owner (cgroup and process mode).
func flowFields(v6, ifaces, owners bool) []field {
	src, dst, icmp, alen := IESourceIPv4Address, IEDestinationIPv4Address, IEICMPTypeCodeIPv4, uint16(4)
	if v6 {
		src, dst, icmp, alen = IESourceIPv6Address, IEDestinationIPv6Address, IEICMPTypeCodeIPv6, 16
	}
	f := []field{
		{id: src, length: alen},
		{id: dst, length: alen},
		{id: IESourceTransportPort, length: 2},
		{id: IEDestinationTransportPort, length: 2},
		{id: IEProtocolIdentifier, length: 1},
		{id: icmp, length: 2},
		{id: IEOctetDeltaCount, length: 8},
		{id: IEPacketDeltaCount, length: 8},
		{id: IEFlowStartMilliseconds, length: 8},
		{id: IEFlowEndMilliseconds, length: 8},
		{id: IEFlowDirection, length: 1},
		{id: IEVlanID, length: 2},
		{id: IEEthernetType, length: 2},
		{id: PENFlowFlags, length: 1, enterprise: true},
	}
	if ifaces {
		f = append(f,
			field{id: IEIngressInterface, length: 4},
			field{id: IEEgressInterface, length: 4},
			field{id: PENApplication, length: varLen, enterprise: true})
	}
	if owners {
		f = append(f,
			field{id: PENProcessID, length: 4, enterprise: true},
			field{id: PENProcessName, length: varLen, enterprise: true},
			field{id: PENCgroupPath, length: varLen, enterprise: true})
	}
	return f
}

// optionsScope and optionsFields are the options template: the
// observation domain, then the exporter's totals since it started.
var (
	optionsScope  = []field{{id: IEObservationDomainID, length: 4}}
	optionsFields = []field{
		{id: IEExportedMessageTotalCount, length: 8},
		{id: IEExportedFlowRecordTotalCount, length: 8},
		{id: IENotSentFlowTotalCount, length: 8},
		{id: PENUntrackedFlows, length: 8, enterprise: true},
		{id: PENUntrackedPackets, length: 8, enterprise: true},
		{id: PENUntrackedOctets, length: 8, enterprise: true},
		{id: IEIgnoredPacketTotalCount, length: 8},
		{id: IEIgnoredOctetTotalCount, length: 8},
	}
)
