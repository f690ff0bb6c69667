package offline

import (
	"encoding/binary"
	"net/netip"
)

// frameInfo is what the replay needs to know of a frame besides its flow
// key, which only the eBPF programs decide: its MAC addresses and source
// IP (for --direction-by-mac and --direction-by-net), and for TCP the
// lengths that a GRO super-packet's segment count depends on. It is read
// from outer headers only (at most two VLAN tags, no IPv6 extension
// headers): a frame it cannot read is simply not TCP to the segment count,
// and ingress to the direction options.
type frameInfo struct {
	dstMAC, srcMAC [6]byte
	src, dst       netip.Addr
	ipLen          int // the IP packet's length: header and payload
	proto          uint8
	tcp            bool
	sport, dport   uint16 // TCP, UDP and SCTP; 0 for others and fragments
	hdrLen         int    // Ethernet (with tags), IP and TCP headers
	tcpLen         int    // the TCP header, with options
	payload        int    // TCP payload by the IP header's lengths
	syn            bool
	mss            uint16 // the SYN's MSS option; 0 without
}

const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherVLAN = 0x8100
	etherQinQ = 0x88a8
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

// readFrame reads what frameInfo holds from the captured bytes b, whose
// IP header says how long the packet was even when b is cut short.
func readFrame(b []byte) (fi frameInfo, ok bool) {
	if len(b) < 14 {
		return fi, false
	}
	copy(fi.dstMAC[:], b[0:6])
	copy(fi.srcMAC[:], b[6:12])
	et, off := binary.BigEndian.Uint16(b[12:14]), 14
	for range 2 {
		if et != etherVLAN && et != etherQinQ || len(b) < off+4 {
			break
		}
		et, off = binary.BigEndian.Uint16(b[off+2:off+4]), off+4
	}
	var proto uint8
	var l4 int
	switch et {
	case etherIPv4:
		if len(b) < off+20 || b[off]>>4 != 4 {
			return fi, false
		}
		ihl := int(b[off]&0xf) * 4
		fi.src = netip.AddrFrom4([4]byte(b[off+12 : off+16]))
		fi.dst = netip.AddrFrom4([4]byte(b[off+16 : off+20]))
		fi.ipLen = int(binary.BigEndian.Uint16(b[off+2 : off+4]))
		proto = b[off+9]
		if binary.BigEndian.Uint16(b[off+6:off+8])&0x3fff != 0 {
			fi.proto = proto
			return fi, true // a fragment: no TCP header to count by
		}
		l4 = off + ihl
	case etherIPv6:
		if len(b) < off+40 || b[off]>>4 != 6 {
			return fi, false
		}
		fi.src = netip.AddrFrom16([16]byte(b[off+8 : off+24]))
		fi.dst = netip.AddrFrom16([16]byte(b[off+24 : off+40]))
		fi.ipLen = 40 + int(binary.BigEndian.Uint16(b[off+4:off+6]))
		proto = b[off+6]
		l4 = off + 40
	default:
		return fi, false
	}
	fi.proto = proto
	if (proto == protoUDP || proto == protoSCTP) && len(b) >= l4+4 {
		// The ports only spread the flows over the workers (shard).
		fi.sport = binary.BigEndian.Uint16(b[l4 : l4+2])
		fi.dport = binary.BigEndian.Uint16(b[l4+2 : l4+4])
		return fi, true
	}
	if proto != protoTCP || len(b) < l4+20 {
		return fi, true
	}
	doff := int(b[l4+12]>>4) * 4
	fi.tcp = true
	fi.sport = binary.BigEndian.Uint16(b[l4 : l4+2])
	fi.dport = binary.BigEndian.Uint16(b[l4+2 : l4+4])
	fi.hdrLen = l4 + doff
	fi.tcpLen = doff
	fi.payload = fi.ipLen - (l4 - off) - doff
	fi.syn = b[l4+13]&0x02 != 0
	if fi.syn && len(b) >= l4+doff {
		fi.mss = mssOption(b[l4+20 : l4+doff])
	}
	return fi, true
}

// mssOption finds the MSS option (kind 2) in TCP options.
func mssOption(o []byte) uint16 {
	for len(o) > 0 {
		switch o[0] {
		case 0: // end of options
			return 0
		case 1: // no-op
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			return 0
		}
		if o[0] == 2 && o[1] == 4 {
			return binary.BigEndian.Uint16(o[2:4])
		}
		o = o[o[1]:]
	}
	return 0
}
