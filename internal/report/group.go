package report

import (
	"net/netip"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
	"github.com/pktstat-bpf/pktstat-bpf/internal/untrusted"
)

// Grouped rows (--group-by) show their counters and the fields of the
// grouping, nothing else: the other fields were added up over.

// groupPlainName is the plain report's name of a grouping field: the names
// ungrouped rows use where they have the field (l7), the field's own where
// they do not (sport, dport).
func groupPlainName(f group.Field) string {
	if f == group.App {
		return "l7"
	}
	return f.String()
}

// appendGroupRow writes a grouped row in the plain format, for example
//
//	bitrate: 1.20 Kbps, packets: 10, bytes: 1500, proto: UDP, dport: 53
func appendGroupRow(b []byte, f *flow.Flow, by group.By) []byte {
	b = appendCounters(b, f)
	for _, field := range by.Fields() {
		b = append(b, ", "...)
		b = append(b, groupPlainName(field)...)
		b = append(b, ": "...)
		v := group.Text(field, &f.Key, f.L7)
		if field.Untrusted() {
			v = untrusted.Field(v)
		}
		b = append(b, v...)
	}
	return append(b, '\n')
}

// jsonGroupRow is a grouped row in JSON: the counters, and only the
// fields of the grouping, under the names ungrouped rows give them (the
// ports under srcPort and dstPort), present even when empty or 0.
type jsonGroupRow struct {
	SrcIP    *string `json:"srcIp,omitempty"`
	DstIP    *string `json:"dstIp,omitempty"`
	Proto    *string `json:"proto,omitempty"`
	Bytes    uint64  `json:"bytes"`
	Packets  uint64  `json:"packets"`
	Bitrate  float64 `json:"bitrate"`
	SrcPort  *uint16 `json:"srcPort,omitempty"`
	DstPort  *uint16 `json:"dstPort,omitempty"`
	AppProto *string `json:"appProto,omitempty"`
	PID      *uint32 `json:"pid,omitempty"`
	Comm     *string `json:"comm,omitempty"`
	Cgroup   *string `json:"cgroup,omitempty"`
	VLAN     *uint16 `json:"vlan,omitempty"`
	Dir      *string `json:"dir,omitempty"`
	Iface    *string `json:"iface,omitempty"`
	Overflow bool    `json:"overflow,omitempty"`
	// On the overflow row, as on an ungrouped report's.
	UntrackedFlows uint64 `json:"untrackedFlows,omitempty"`
	HiddenFlows    uint64 `json:"hiddenFlows,omitempty"`
}

func ptr[T any](v T) *T { return &v }

func newJSONGroupRow(f *flow.Flow, by group.By) jsonGroupRow {
	r := jsonGroupRow{Bytes: f.Bytes, Packets: f.Packets, Bitrate: f.Bitrate}
	addr := func(a netip.Addr) *string {
		if !a.IsValid() {
			return ptr("")
		}
		return ptr(a.String())
	}
	o := f.Owner.Info()
	for _, field := range by.Fields() {
		switch field {
		case group.Src:
			r.SrcIP = addr(f.Src)
		case group.Dst:
			r.DstIP = addr(f.Dst)
		case group.SPort:
			r.SrcPort = ptr(f.SrcPort)
		case group.DPort:
			r.DstPort = ptr(f.DstPort)
		case group.Proto:
			r.Proto = ptr(f.ProtoName())
		case group.App:
			r.AppProto = ptr(f.L7.String())
		case group.PID:
			r.PID = ptr(o.PID)
		case group.Comm:
			r.Comm = ptr(o.Comm)
		case group.Cgroup:
			r.Cgroup = ptr(o.Cgroup)
		case group.VLAN:
			r.VLAN = ptr(f.VLAN)
		case group.Dir:
			r.Dir = ptr(f.Dir.String())
		case group.Iface:
			r.Iface = ptr(group.Text(group.Iface, &f.Key, f.L7))
		}
	}
	return r
}

// jsonRowAt is row i of r as JSON writes it: a jsonRow, or a jsonGroupRow
// when r is grouped.
func jsonRowAt(r *Report, i int) any {
	if r.GroupBy != 0 {
		row := newJSONGroupRow(&r.Flows[i], r.GroupBy)
		return &row
	}
	row := newJSONRow(&r.Flows[i])
	return &row
}

// overflowJSON is the overflow row as JSON writes it, if there is one; a
// grouped report's has the counters and what they stand for, without the
// empty fields of an ungrouped one.
func overflowJSON(r *Report) (any, bool) {
	o, ok := overflowRow(r)
	if r.GroupBy != 0 {
		return &jsonGroupRow{Bytes: o.Bytes, Packets: o.Packets, Bitrate: o.Bitrate, Overflow: true,
			UntrackedFlows: o.UntrackedFlows, HiddenFlows: o.HiddenFlows}, ok
	}
	return &o, ok
}

// jsonGroupRows converts the grouped rows, without the overflow row.
func jsonGroupRows(r *Report) []jsonGroupRow {
	rows := make([]jsonGroupRow, 0, len(r.Flows))
	for i := range r.Flows {
		rows = append(rows, newJSONGroupRow(&r.Flows[i], r.GroupBy))
	}
	return rows
}

// hiddenUnit is what --top leaves out: flows, or groups of them.
func hiddenUnit(r *Report) string {
	if r.GroupBy != 0 {
		return "groups"
	}
	return "flows"
}
