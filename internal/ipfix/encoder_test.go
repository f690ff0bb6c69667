package ipfix

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// decoded is what goflow2's decoder made of a run of messages: every data
// record as its elements' raw values, keyed by element (enterprise ones
// with the high bit set), in the order they came.
type decoded struct {
	flows   []map[uint16][]byte
	options []map[uint16][]byte
	tmpls   []netflow.TemplateRecord
	otmpls  []netflow.IPFIXOptionsTemplateRecord
}

// decodeAll decodes msgs with goflow2, checking each header strictly: the
// version, the length (within max), the observation domain, and a
// sequence number that counts the data records of the messages before.
func decodeAll(t *testing.T, msgs []Message, max int, pen uint32) decoded {
	t.Helper()
	ts := netflow.CreateTemplateSystem()
	var d decoded
	var seq uint32
	for i, m := range msgs {
		if len(m.B) > max {
			t.Fatalf("message %d is %d bytes, more than %d", i, len(m.B), max)
		}
		var p netflow.IPFIXPacket
		var nf netflow.NFv9Packet
		if err := netflow.DecodeMessageVersion(bytes.NewBuffer(m.B), ts, &nf, &p); err != nil {
			t.Fatalf("message %d: goflow2 cannot decode it: %v", i, err)
		}
		if p.Version != 10 || int(p.Length) != len(m.B) || p.ObservationDomainId != 7 || p.ExportTime != 1700000000 {
			t.Fatalf("message %d header: version %d length %d (of %d) domain %d export %d", i, p.Version, p.Length, len(m.B), p.ObservationDomainId, p.ExportTime)
		}
		if p.SequenceNumber != seq {
			t.Fatalf("message %d: sequence number %d, want %d (data records before it)", i, p.SequenceNumber, seq)
		}
		n := 0
		for _, fs := range p.FlowSets {
			switch s := fs.(type) {
			case netflow.TemplateFlowSet:
				d.tmpls = append(d.tmpls, s.Records...)
			case netflow.IPFIXOptionsTemplateFlowSet:
				d.otmpls = append(d.otmpls, s.Records...)
			case netflow.DataFlowSet:
				for _, r := range s.Records {
					d.flows = append(d.flows, values(t, r.Values, pen))
					if s.Id != TemplateIPv4 && s.Id != TemplateIPv6 {
						t.Fatalf("data set of template %d", s.Id)
					}
				}
				n += len(s.Records)
			case netflow.OptionsDataFlowSet:
				for _, r := range s.Records {
					v := values(t, r.ScopesValues, pen)
					for k, x := range values(t, r.OptionsValues, pen) {
						v[k] = x
					}
					d.options = append(d.options, v)
				}
				n += len(s.Records)
			default:
				t.Fatalf("message %d: a set goflow2 could not decode: %#v", i, fs)
			}
		}
		if n != m.Records {
			t.Fatalf("message %d: goflow2 found %d data records, the encoder counted %d", i, n, m.Records)
		}
		seq += uint32(n)
	}
	return d
}

func values(t *testing.T, fs []netflow.DataField, pen uint32) map[uint16][]byte {
	t.Helper()
	v := map[uint16][]byte{}
	for _, f := range fs {
		id := f.Type
		if f.PenProvided {
			if f.Pen != pen {
				t.Fatalf("element %d has enterprise number %d, want %d", f.Type, f.Pen, pen)
			}
			id |= 0x8000
		}
		if _, dup := v[id]; dup {
			t.Fatalf("element %d twice in a record", id)
		}
		v[id] = f.Value.([]byte)
	}
	return v
}

// sendAll plays the sender: it numbers the messages as the exporter does.
func sendAll(msgs []Message) {
	var seq uint32
	for _, m := range msgs {
		m.SetHeader(time.Unix(1700000000, 0), seq)
		seq += uint32(m.Records)
	}
}

func u(b []byte) uint64 {
	var x uint64
	for _, c := range b {
		x = x<<8 | uint64(c)
	}
	return x
}

// want is the expected values of a flow record, as the docs' element
// table states them.
func want(f flow.Flow, start, end time.Time, flags uint8, layout Layout) map[uint16][]byte {
	be16 := func(x uint16) []byte { return binary.BigEndian.AppendUint16(nil, x) }
	be32 := func(x uint32) []byte { return binary.BigEndian.AppendUint32(nil, x) }
	be64 := func(x uint64) []byte { return binary.BigEndian.AppendUint64(nil, x) }
	w := map[uint16][]byte{}
	var sport, dport, icmp uint16
	if f.Proto == 6 || f.Proto == 17 || f.Proto == 132 {
		sport, dport = f.SrcPort, f.DstPort
	}
	if f.Proto == 1 || f.Proto == 58 {
		icmp = f.SrcPort<<8 | f.DstPort
	}
	if f.Src.Is6() {
		a, b := f.Src.As16(), f.Dst.As16()
		w[IESourceIPv6Address], w[IEDestinationIPv6Address], w[IEICMPTypeCodeIPv6] = a[:], b[:], be16(icmp)
	} else {
		a, b := [4]byte{}, [4]byte{}
		if f.Src.IsValid() {
			a, b = f.Src.As4(), f.Dst.As4()
		}
		w[IESourceIPv4Address], w[IEDestinationIPv4Address], w[IEICMPTypeCodeIPv4] = a[:], b[:], be16(icmp)
	}
	w[IESourceTransportPort], w[IEDestinationTransportPort] = be16(sport), be16(dport)
	w[IEProtocolIdentifier] = []byte{f.Proto}
	w[IEOctetDeltaCount], w[IEPacketDeltaCount] = be64(f.Bytes), be64(f.Packets)
	w[IEFlowStartMilliseconds], w[IEFlowEndMilliseconds] = be64(uint64(start.UnixMilli())), be64(uint64(end.UnixMilli()))
	w[IEFlowDirection] = []byte{uint8(f.Dir)}
	w[IEVlanID], w[IEEthernetType] = be16(f.VLAN), be16(f.EtherType)
	w[PENFlowFlags|0x8000] = []byte{flags}
	if layout.Ifaces {
		in, out := f.Ifindex, uint32(0)
		if f.Dir == flow.Out {
			in, out = 0, f.Ifindex
		}
		w[IEIngressInterface], w[IEEgressInterface] = be32(in), be32(out)
		app := ""
		if f.L7.Known() {
			app = f.L7.String()
		}
		w[PENApplication|0x8000] = []byte(app)
	}
	if layout.Owners {
		i := f.Owner.Info()
		if len(i.Cgroup) > maxString {
			i.Cgroup = i.Cgroup[len(i.Cgroup)-maxString:]
		}
		w[PENProcessID|0x8000] = be32(i.PID)
		w[PENProcessName|0x8000] = []byte(i.Comm)
		w[PENCgroupPath|0x8000] = []byte(i.Cgroup)
	}
	return w
}

func testRows(n int) []flow.Flow {
	a4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }
	a6 := func(i int) netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
	}
	var rows []flow.Flow
	for i := range n {
		k := flow.Key{EtherType: flow.EtherTypeIPv4, Src: a4(i), Dst: a4(i + 1), Dir: flow.Direction(i % 2), Ifindex: uint32(3 + i%3)}
		switch i % 8 {
		case 0:
			k.Proto, k.SrcPort, k.DstPort = 6, uint16(40000+i), 443
		case 1:
			k.Proto, k.SrcPort, k.DstPort, k.VLAN = 17, uint16(i), 53, 100
		case 2:
			k.Proto, k.SrcPort, k.DstPort = 1, 8, 0 // echo request
		case 3:
			k.EtherType, k.Src, k.Dst, k.Proto, k.SrcPort, k.DstPort = flow.EtherTypeIPv6, a6(i), a6(i+1), 6, 1234, 80
		case 4:
			k.EtherType, k.Src, k.Dst, k.Proto, k.SrcPort, k.DstPort = flow.EtherTypeIPv6, a6(i), a6(i+1), 58, 129, 0
		case 5:
			k.Proto, k.Flags = 17, flow.Fragment
		case 6:
			k.EtherType, k.Src, k.Dst, k.Proto, k.Flags = flow.EtherTypeIPv6, a6(i), a6(i+1), 6, flow.Malformed|flow.DeepChain
		case 7:
			k = flow.Key{EtherType: 0x0806, Src: a4(i), Dst: a4(i + 2), DstPort: 1, Ifindex: 9} // ARP
		}
		rows = append(rows, flow.Flow{Key: k, Counters: flow.Counters{Packets: uint64(i + 1), Bytes: uint64(1<<33*(i%2) + 60*(i+1))}, L7: flow.L7(i % 5)})
	}
	return rows
}

func TestEncoderDecodedByGoflow2(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout Layout
	}{
		{"tc", Layout{Ifaces: true}},
		{"owners", Layout{Owners: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := testRows(400)
			if tc.layout.Owners {
				long := "/" + strings.Repeat("a/", 400) + "svc.scope" // longer than maxString: its tail goes out
				for i := range rows {
					cg := fmt.Sprintf("/system.slice/unit%d.service", i)
					if i%7 == 0 {
						cg = long
					}
					if i%11 == 0 {
						cg = "/" + strings.Repeat("b", 300) // 3-byte length prefix
					}
					rows[i].Owner = flow.NewOwner(flow.OwnerInfo{PID: uint32(1000 + i), Comm: fmt.Sprintf("proc%d", i%13), Cgroup: cg})
				}
			}
			snap := flow.Snapshot{Flows: rows, Untracked: [2]flow.Counters{{Packets: 11, Bytes: 1111}, {Packets: 22, Bytes: 2222}}}
			start, end := time.UnixMilli(1699999940123), time.UnixMilli(1700000000456)
			var msgs []Message
			e := NewEncoder(7, 4242, DefaultMaxMessage, tc.layout, func(m Message) { msgs = append(msgs, m) })
			msgs = append(msgs, e.Templates())
			e.Flows(&snap, start, end)
			st := Stats{Messages: 1, Records: 2, NotSent: 3, UntrackedFlows: 4, UntrackedPackets: 5, UntrackedOctets: 6, FilteredPackets: 7, FilteredOctets: 8}
			e.Stats(st)
			e.Flush()
			if len(msgs) < 10 {
				t.Fatalf("only %d messages for 400 records", len(msgs))
			}
			sendAll(msgs)
			d := decodeAll(t, msgs, DefaultMaxMessage, 4242)

			// The templates, field by field.
			if len(d.tmpls) != 2 || len(d.otmpls) != 1 {
				t.Fatalf("templates: %d flow, %d options; want 2 and 1", len(d.tmpls), len(d.otmpls))
			}
			for i, tm := range d.tmpls {
				fs := flowFields(i == 1, tc.layout.Ifaces, tc.layout.Owners)
				if tm.TemplateId != []uint16{TemplateIPv4, TemplateIPv6}[i] || int(tm.FieldCount) != len(fs) || len(tm.Fields) != len(fs) {
					t.Fatalf("template %d: %+v", i, tm)
				}
				for j, f := range fs {
					g := tm.Fields[j]
					if g.Type != f.id || g.Length != f.length || g.PenProvided != f.enterprise || (f.enterprise && g.Pen != 4242) {
						t.Fatalf("template %d field %d: %+v, want %+v", tm.TemplateId, j, g, f)
					}
				}
			}
			ot := d.otmpls[0]
			if ot.TemplateId != TemplateOptions || ot.ScopeFieldCount != 1 || len(ot.Scopes) != 1 || ot.Scopes[0].Type != IEObservationDomainID || len(ot.Options) != len(optionsFields) {
				t.Fatalf("options template: %+v", ot)
			}

			// Every record, every element: IPv4 and non-IP rows first,
			// then IPv6 ones, then the overflow records.
			var wantRecs []map[uint16][]byte
			for _, v6 := range []bool{false, true} {
				for _, f := range rows {
					if f.Src.Is6() == v6 {
						wantRecs = append(wantRecs, want(f, start, end, uint8(f.Flags), tc.layout))
					}
				}
			}
			for dir, c := range snap.Untracked {
				wantRecs = append(wantRecs, want(flow.Flow{Key: flow.Key{Dir: flow.Direction(dir)}, Counters: c}, start, end, FlagOverflow, tc.layout))
			}
			if len(d.flows) != len(wantRecs) {
				t.Fatalf("%d flow records decoded, want %d", len(d.flows), len(wantRecs))
			}
			var sum flow.Counters
			for i, w := range wantRecs {
				g := d.flows[i]
				if len(g) != len(w) {
					t.Fatalf("record %d: %d elements, want %d", i, len(g), len(w))
				}
				for id, v := range w {
					if !bytes.Equal(g[id], v) {
						t.Fatalf("record %d element %#x: %x, want %x", i, id, g[id], v)
					}
				}
				sum.Add(flow.Counters{Packets: u(g[IEPacketDeltaCount]), Bytes: u(g[IEOctetDeltaCount])})
			}
			var total flow.Counters
			for _, f := range rows {
				total.Add(f.Counters)
			}
			total.Add(snap.UntrackedTotal())
			if sum != total {
				t.Fatalf("decoded totals %+v, want %+v", sum, total)
			}

			if len(d.options) != 1 {
				t.Fatalf("%d options records, want 1", len(d.options))
			}
			o := d.options[0]
			for id, v := range map[uint16]uint64{IEObservationDomainID: 7, IEExportedMessageTotalCount: 1, IEExportedFlowRecordTotalCount: 2, IENotSentFlowTotalCount: 3,
				PENUntrackedFlows | 0x8000: 4, PENUntrackedPackets | 0x8000: 5, PENUntrackedOctets | 0x8000: 6, IEIgnoredPacketTotalCount: 7, IEIgnoredOctetTotalCount: 8} {
				if u(o[id]) != v {
					t.Fatalf("options element %#x = %d, want %d", id, u(o[id]), v)
				}
			}
		})
	}
}
