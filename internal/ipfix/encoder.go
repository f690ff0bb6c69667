package ipfix

import (
	"encoding/binary"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// HeaderLen is the length of an IPFIX message header.
const HeaderLen = 16

// setHeaderLen is the length of a set header.
const setHeaderLen = 4

// DefaultMaxMessage is the longest message over UDP: it stays within the
// path MTU of an Ethernet path with tunnels (1400 bytes of IPFIX, plus the
// UDP and IP headers), so that no message is fragmented.
const DefaultMaxMessage = 1400

// maxString bounds a string element, so that a record always fits in a
// message: a longer cgroup path keeps its last maxString bytes, the most
// specific part.
const maxString = 512

// Layout says which optional elements the flow templates hold.
type Layout struct {
	// Ifaces adds ingressInterface, egressInterface and the application
	// protocol: TC and XDP, which count on an interface and look at the
	// payload.
	Ifaces bool
	// Owners adds the process ID, its name and its cgroup: cgroup and
	// process mode.
	Owners bool
}

// Message is one encoded IPFIX message. Its export time and sequence
// number are set when it is sent (SetHeader): the sequence number counts
// the data records sent before it, and only the sender knows that.
type Message struct {
	B       []byte
	Records int // data records in it (flow and options records)
}

// SetHeader writes the export time and the sequence number into m.
func (m Message) SetHeader(export time.Time, seq uint32) {
	binary.BigEndian.PutUint32(m.B[4:], uint32(export.Unix()))
	binary.BigEndian.PutUint32(m.B[8:], seq)
}

// Stats are the exporter's totals since it started, sent in an options
// record after every export.
type Stats struct {
	Messages         uint64 // messages sent
	Records          uint64 // data records sent
	NotSent          uint64 // flow records dropped: the queue was full, or the collector unreachable
	UntrackedFlows   uint64 // flows estimated to have found the table full
	UntrackedPackets uint64
	UntrackedOctets  uint64
	FilteredPackets  uint64 // what the filter expression dropped
	FilteredOctets   uint64
}

// Encoder turns flow records into IPFIX messages of at most max bytes,
// which it hands to emit as each fills up. It is not safe for concurrent
// use.
type Encoder struct {
	domain uint32
	pen    uint32
	max    int
	layout Layout
	emit   func(Message)

	buf     []byte
	set     uint16 // the ID of the open set; 0 when none
	setAt   int    // where the open set's header is
	records int
	// recLen is the length of a record of each template, without its
	// variable-length elements.
	recLen [3]int
}

// NewEncoder returns an encoder for observation domain domain, whose
// enterprise-specific elements have the enterprise number pen.
func NewEncoder(domain, pen uint32, maxMessage int, layout Layout, emit func(Message)) *Encoder {
	e := &Encoder{domain: domain, pen: pen, max: maxMessage, layout: layout, emit: emit}
	for i, fs := range [][]field{flowFields(false, layout.Ifaces, layout.Owners), flowFields(true, layout.Ifaces, layout.Owners), append(append([]field{}, optionsScope...), optionsFields...)} {
		for _, f := range fs {
			if f.length == varLen {
				e.recLen[i]++ // the length byte, at least
				continue
			}
			e.recLen[i] += int(f.length)
		}
	}
	return e
}

// Templates returns a message with the templates of every set this
// encoder writes: sent first, again every template refresh over UDP, and
// at every connection over TCP.
func (e *Encoder) Templates() Message {
	b := e.header(make([]byte, 0, 256))
	at := len(b)
	b = binary.BigEndian.AppendUint16(b, setTemplate)
	b = append(b, 0, 0)
	for i, id := range []uint16{TemplateIPv4, TemplateIPv6} {
		fs := flowFields(i == 1, e.layout.Ifaces, e.layout.Owners)
		b = binary.BigEndian.AppendUint16(b, id)
		b = binary.BigEndian.AppendUint16(b, uint16(len(fs)))
		b = e.appendFields(b, fs)
	}
	binary.BigEndian.PutUint16(b[at+2:], uint16(len(b)-at))
	at = len(b)
	b = binary.BigEndian.AppendUint16(b, setOptionsTemplate)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, TemplateOptions)
	b = binary.BigEndian.AppendUint16(b, uint16(len(optionsScope)+len(optionsFields)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(optionsScope)))
	b = e.appendFields(b, optionsScope)
	b = e.appendFields(b, optionsFields)
	binary.BigEndian.PutUint16(b[at+2:], uint16(len(b)-at))
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return Message{B: b}
}

func (e *Encoder) appendFields(b []byte, fs []field) []byte {
	for _, f := range fs {
		id := f.id
		if f.enterprise {
			id |= 0x8000
		}
		b = binary.BigEndian.AppendUint16(b, id)
		b = binary.BigEndian.AppendUint16(b, f.length)
		if f.enterprise {
			b = binary.BigEndian.AppendUint32(b, e.pen)
		}
	}
	return b
}

// header appends a message header whose length, export time and sequence
// number are filled in later.
func (e *Encoder) header(b []byte) []byte {
	b = append(b, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(b, e.domain)
}

// Flows encodes one record per row of s, and one overflow record per
// direction with untracked traffic, all covering start to end. Rows of
// IPv4 flows and of non-IP frames go in the IPv4 template, the others in
// the IPv6 one.
func (e *Encoder) Flows(s *flow.Snapshot, start, end time.Time) {
	startMS, endMS := uint64(start.UnixMilli()), uint64(end.UnixMilli())
	for i := range s.Flows {
		if f := &s.Flows[i]; !f.Src.Is6() {
			e.flow(f, startMS, endMS)
		}
	}
	for i := range s.Flows {
		if f := &s.Flows[i]; f.Src.Is6() {
			e.flow(f, startMS, endMS)
		}
	}
	for dir, u := range s.Untracked {
		if u.Packets == 0 && u.Bytes == 0 {
			continue
		}
		f := flow.Flow{Key: flow.Key{Dir: flow.Direction(dir)}, Counters: u}
		e.record(&f, startMS, endMS, FlagOverflow)
	}
}

func (e *Encoder) flow(f *flow.Flow, startMS, endMS uint64) {
	e.record(f, startMS, endMS, uint8(f.Flags))
}

// record appends one flow record.
func (e *Encoder) record(f *flow.Flow, startMS, endMS uint64, flags uint8) {
	tmpl, n := TemplateIPv4, e.recLen[0]
	if f.Src.Is6() {
		tmpl, n = TemplateIPv6, e.recLen[1]
	}
	var info flow.OwnerInfo
	var app string
	if e.layout.Owners {
		info = f.Owner.Info()
		if len(info.Cgroup) > maxString {
			info.Cgroup = info.Cgroup[len(info.Cgroup)-maxString:]
		}
		n += stringLen(info.Comm) + stringLen(info.Cgroup) - 2
	}
	if e.layout.Ifaces {
		if f.L7.Known() {
			app = f.L7.String()
		}
		n += stringLen(app) - 1
	}
	b := e.open(tmpl, n)
	if tmpl == TemplateIPv6 {
		a, d := f.Src.As16(), f.Dst.As16()
		b = append(b, a[:]...)
		b = append(b, d[:]...)
	} else {
		var a, d [4]byte
		if f.Src.Is4() {
			a = f.Src.As4()
		}
		if f.Dst.Is4() {
			d = f.Dst.As4()
		}
		b = append(b, a[:]...)
		b = append(b, d[:]...)
	}
	var sport, dport, icmp uint16
	switch {
	case f.HasPorts():
		sport, dport = f.SrcPort, f.DstPort
	case f.IsICMP():
		icmp = f.SrcPort<<8 | f.DstPort&0xff
	}
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, f.Proto)
	b = binary.BigEndian.AppendUint16(b, icmp)
	b = binary.BigEndian.AppendUint64(b, f.Bytes)
	b = binary.BigEndian.AppendUint64(b, f.Packets)
	b = binary.BigEndian.AppendUint64(b, startMS)
	b = binary.BigEndian.AppendUint64(b, endMS)
	b = append(b, uint8(f.Dir)) // flowDirection: 0 ingress, 1 egress, as flow.Direction
	b = binary.BigEndian.AppendUint16(b, f.VLAN)
	b = binary.BigEndian.AppendUint16(b, f.EtherType)
	b = append(b, flags)
	if e.layout.Ifaces {
		var in, out uint32
		if f.Dir == flow.In {
			in = f.Ifindex
		} else {
			out = f.Ifindex
		}
		b = binary.BigEndian.AppendUint32(b, in)
		b = binary.BigEndian.AppendUint32(b, out)
		b = appendString(b, app)
	}
	if e.layout.Owners {
		b = binary.BigEndian.AppendUint32(b, info.PID)
		b = appendString(b, info.Comm)
		b = appendString(b, info.Cgroup)
	}
	e.buf = b
	e.records++
}

// Stats encodes an options record with st.
func (e *Encoder) Stats(st Stats) {
	b := e.open(TemplateOptions, e.recLen[2])
	b = binary.BigEndian.AppendUint32(b, e.domain)
	for _, v := range []uint64{st.Messages, st.Records, st.NotSent, st.UntrackedFlows, st.UntrackedPackets, st.UntrackedOctets, st.FilteredPackets, st.FilteredOctets} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	e.buf = b
	e.records++
}

// open returns the message buffer ready for a record of n bytes of
// template tmpl: in the open set if it is tmpl's and the record fits,
// else in a new set, in a new message if need be.
func (e *Encoder) open(tmpl uint16, n int) []byte {
	if e.buf != nil && e.set == tmpl && len(e.buf)+n <= e.max {
		return e.buf
	}
	if e.buf != nil && len(e.buf)+setHeaderLen+n > e.max {
		e.Flush()
	}
	if e.buf == nil {
		e.buf = e.header(make([]byte, 0, e.max))
	}
	e.closeSet()
	e.set, e.setAt = tmpl, len(e.buf)
	e.buf = binary.BigEndian.AppendUint16(e.buf, tmpl)
	return append(e.buf, 0, 0)
}

// closeSet writes the open set's length.
func (e *Encoder) closeSet() {
	if e.set != 0 {
		binary.BigEndian.PutUint16(e.buf[e.setAt+2:], uint16(len(e.buf)-e.setAt))
		e.set = 0
	}
}

// Flush emits the message under way, if it holds any record.
func (e *Encoder) Flush() {
	if e.buf == nil {
		return
	}
	e.closeSet()
	binary.BigEndian.PutUint16(e.buf[2:], uint16(len(e.buf)))
	m := Message{B: e.buf, Records: e.records}
	e.buf, e.records = nil, 0
	e.emit(m)
}

// stringLen is the length of s as a variable-length element.
func stringLen(s string) int {
	if len(s) < 255 {
		return 1 + len(s)
	}
	return 3 + len(s)
}

// appendString appends s as a variable-length element (RFC 7011 7).
func appendString(b []byte, s string) []byte {
	if len(s) < 255 {
		b = append(b, uint8(len(s)))
	} else {
		b = append(b, 255)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	}
	return append(b, s...)
}
