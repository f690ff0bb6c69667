package flow

// L7 is the application protocol the eBPF programs recognised in a flow's
// payload (bpf/include/l7.h), whatever port it ran on.
type L7 uint8

// The values equal the eBPF programs' enum l7_proto; a test in
// internal/capture checks them against the generated bindings. L7Unknown
// and L7Unchecked both mean "no protocol" to a report.
const (
	L7Unchecked L7 = 0 // no payload seen yet
	L7Unknown   L7 = 1 // payload seen, nothing recognised
	L7HTTP      L7 = 2
	L7HTTP2     L7 = 3
	L7TLS       L7 = 4
	L7DTLS      L7 = 5
	L7QUIC      L7 = 6
	L7SSH       L7 = 7
	L7RDP       L7 = 8
	L7Postgres  L7 = 9
	L7MQTT      L7 = 10
	L7WireGuard L7 = 11
	L7Memcached L7 = 12
	L7DNS       L7 = 13
	numL7          = 14
)

var l7Names = [numL7]string{
	L7HTTP:      "HTTP",
	L7HTTP2:     "HTTP2",
	L7TLS:       "TLS",
	L7DTLS:      "DTLS",
	L7QUIC:      "QUIC",
	L7SSH:       "SSH",
	L7RDP:       "RDP",
	L7Postgres:  "PostgreSQL",
	L7MQTT:      "MQTT",
	L7WireGuard: "WireGuard",
	L7Memcached: "memcached",
	L7DNS:       "DNS",
}

// Known reports whether l is a recognised protocol.
func (l L7) Known() bool { return l > L7Unknown && l < numL7 }

// String is the protocol's name in reports (pktstat-bpf's appProto), or ""
// when none was recognised.
func (l L7) String() string {
	if !l.Known() {
		return ""
	}
	return l7Names[l]
}

// L7s lists every recognised protocol.
func L7s() []L7 {
	out := make([]L7, 0, numL7-2)
	for l := L7HTTP; l < numL7; l++ {
		out = append(out, l)
	}
	return out
}

// MergeL7 combines the per-CPU verdicts on one flow: every CPU that counted
// a packet with payload ran detection once, so a CPU that saw only the
// middle of a stream says L7Unknown where the CPU that saw its start named
// the protocol. The first recognised protocol wins.
func MergeL7(a, b L7) L7 {
	if a.Known() {
		return a
	}
	if b.Known() {
		return b
	}
	return max(a, b)
}

// tuple is a key without its direction: what a flow and the flow of its
// replies have in common, once swapped.
type tuple struct {
	etherType, vlan  uint16
	proto            uint8
	src, dst         [16]byte
	srcPort, dstPort uint16
	owner            Owner
}

func tupleOf(k *Key) tuple {
	return tuple{etherType: k.EtherType, vlan: k.VLAN, proto: k.Proto,
		src: k.Src.As16(), dst: k.Dst.As16(), srcPort: k.SrcPort, dstPort: k.DstPort, owner: k.Owner}
}

func (t tuple) reversed() tuple {
	t.src, t.dst = t.dst, t.src
	t.srcPort, t.dstPort = t.dstPort, t.srcPort
	return t
}

// ShareL7 gives every TCP or UDP row without a recognised protocol the
// protocol of its reverse flow (addresses and ports swapped, any
// direction), so that both directions of a connection carry the label even
// where only one side's first message can be recognised (a PostgreSQL
// server answers an SSL request with one byte). Rows are changed in place.
func ShareL7(rows []Flow) {
	labels := map[tuple]L7{}
	for i := range rows {
		if r := &rows[i]; r.L7.Known() && r.HasPorts() {
			labels[tupleOf(&r.Key)] = r.L7
		}
	}
	if len(labels) == 0 {
		return
	}
	for i := range rows {
		r := &rows[i]
		if r.L7.Known() || !r.HasPorts() {
			continue
		}
		if l, ok := labels[tupleOf(&r.Key).reversed()]; ok {
			r.L7 = l
		}
	}
}
