package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/untrusted"
)

// jsonRow uses pktstat-bpf's field names; fields after dstPort appear only
// when they apply. ICMP type and code sit in srcPort and dstPort, as there.
type jsonRow struct {
	SrcIP    string  `json:"srcIp"`
	DstIP    string  `json:"dstIp"`
	Proto    string  `json:"proto"`
	Bytes    uint64  `json:"bytes"`
	Packets  uint64  `json:"packets"`
	Bitrate  float64 `json:"bitrate"`
	SrcPort  uint16  `json:"srcPort"`
	DstPort  uint16  `json:"dstPort"`
	AppProto string  `json:"appProto,omitempty"`
	PID      uint32  `json:"pid,omitempty"`
	Comm     string  `json:"comm,omitempty"`
	Cgroup   string  `json:"cgroup,omitempty"`
	// Protocols' own fields, named as pktstat-bpf names them (igmpType is
	// ours); srcPort and dstPort hold their raw values too, as there.
	SPI         *uint32 `json:"spi,omitempty"`
	GREInner    string  `json:"greInner,omitempty"`
	GREFlags    *uint16 `json:"greFlags,omitempty"`
	ARPOp       string  `json:"arpOp,omitempty"`
	OSPFType    string  `json:"ospfType,omitempty"`
	OSPFVersion uint8   `json:"ospfVersion,omitempty"`
	IGMPType    string  `json:"igmpType,omitempty"`
	VLAN        uint16  `json:"vlan,omitempty"`
	Fragment    bool    `json:"fragment,omitempty"`
	DeepChain   bool    `json:"deepChain,omitempty"`
	Malformed   bool    `json:"malformed,omitempty"`
	Estimated   bool    `json:"estimated,omitempty"` // --read: some packets' counts are estimates
	Dir         string  `json:"dir,omitempty"`
	Iface       string  `json:"iface,omitempty"` // only when the run watches several interfaces
	Overflow    bool    `json:"overflow,omitempty"`
	// On the overflow row: the estimated flows that found the flow table
	// full, and the flows left out by --top.
	UntrackedFlows uint64 `json:"untrackedFlows,omitempty"`
	HiddenFlows    uint64 `json:"hiddenFlows,omitempty"`
}

func newJSONRow(f *flow.Flow) jsonRow {
	r := jsonRow{
		Proto:     f.ProtoName(),
		Bytes:     f.Bytes,
		Packets:   f.Packets,
		Bitrate:   f.Bitrate,
		VLAN:      f.VLAN,
		Fragment:  f.Flags&flow.Fragment != 0,
		DeepChain: f.Flags&flow.DeepChain != 0,
		Malformed: f.Flags&flow.Malformed != 0,
		Estimated: f.Estimated,
		Dir:       f.Dir.String(),
		Iface:     f.Iface,
	}
	o := f.Owner.Info()
	r.PID, r.Comm, r.Cgroup = o.PID, o.Comm, o.Cgroup
	r.AppProto = f.L7.String()
	if f.IsIP() {
		r.SrcIP, r.DstIP = f.Src.String(), f.Dst.String()
	}
	if f.HasPorts() || f.IsICMP() {
		r.SrcPort, r.DstPort = f.SrcPort, f.DstPort
	}
	if spi, ok := f.SPI(); ok {
		r.SPI = &spi
		r.SrcPort, r.DstPort = f.SrcPort, f.DstPort
	}
	if inner, flags, ok := f.GRE(); ok {
		r.GREInner, r.GREFlags = flow.GREInnerName(inner), &flags
		r.SrcPort, r.DstPort = f.SrcPort, f.DstPort
	}
	if typ, ver, ok := f.OSPF(); ok {
		r.OSPFType, r.OSPFVersion = flow.OSPFTypeName(typ), ver
		r.SrcPort, r.DstPort = f.SrcPort, f.DstPort
	}
	if typ, ok := f.IGMPType(); ok {
		r.IGMPType = flow.IGMPTypeName(typ)
		r.SrcPort = f.SrcPort
	}
	if op, ok := f.ARPOp(); ok {
		r.ARPOp = flow.ARPOpName(op)
		r.SrcIP, r.DstIP = f.Src.String(), f.Dst.String()
		r.SrcPort = f.SrcPort
	}
	return r
}

// WriteJSON writes the report as one JSON array, an object per row. Traffic
// without a row of its own comes last, in a row with "overflow": true. Rows
// are encoded one at a time, so a report of a million flows never sits in
// memory as one JSON document.
func WriteJSON(w io.Writer, r Report) error {
	bw := bufio.NewWriter(w)
	bw.WriteByte('[')
	// One buffer for every row: the encoder ends each value with a newline,
	// which the array does not want.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	n := 0
	write := func(row any) error {
		buf.Reset()
		if err := enc.Encode(row); err != nil {
			return err
		}
		if n > 0 {
			bw.WriteByte(',')
		}
		n++
		_, err := bw.Write(untrusted.EscapeJSON(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))))
		return err
	}
	for i := range r.Flows {
		if err := write(jsonRowAt(&r, i)); err != nil {
			return fmt.Errorf("write JSON report: %w", err)
		}
	}
	if row, ok := overflowJSON(&r); ok {
		if err := write(row); err != nil {
			return fmt.Errorf("write JSON report: %w", err)
		}
	}
	if f := r.Filtered; f != nil {
		// The last object, of its own shape: only with a filter.
		if err := write(jsonFiltered{jsonCounters{Packets: f.Packets, Bytes: f.Bytes}}); err != nil {
			return fmt.Errorf("write JSON report: %w", err)
		}
	}
	bw.WriteString("]\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// overflowRow is the row of the traffic without a row of its own, if any.
func overflowRow(r *Report) (jsonRow, bool) {
	o := r.Overflow()
	return jsonRow{
		Bytes:          o.Bytes,
		Packets:        o.Packets,
		Bitrate:        flow.Bitrate(o.Bytes, r.Duration),
		Overflow:       true,
		UntrackedFlows: r.UntrackedFlows,
		HiddenFlows:    r.HiddenFlows,
	}, o.Packets > 0
}

// jsonRows converts the rows, without the overflow row.
func jsonRows(r *Report) any {
	if r.GroupBy != 0 {
		return jsonGroupRows(r)
	}
	rows := make([]jsonRow, 0, len(r.Flows))
	for i := range r.Flows {
		rows = append(rows, newJSONRow(&r.Flows[i]))
	}
	return rows
}

// jsonInterval is one line of the NDJSON stream.
type jsonInterval struct {
	Time     time.Time    `json:"time"`
	Interval float64      `json:"interval"` // seconds
	Totals   jsonCounters `json:"totals"`
	Overflow jsonOverflow `json:"overflow"`
	Iface    *jsonIface   `json:"iface,omitempty"`
	Ifaces   *[]jsonIface `json:"ifaces,omitempty"`  // replaces Iface when the run watches several interfaces
	GroupBy  []string     `json:"groupBy,omitempty"` // the --group-by fields, when given
	Rows     any          `json:"rows"`              // []jsonRow, or []jsonGroupRow with GroupBy

	// Filtered is what the filter expression dropped; only with a filter.
	Filtered *jsonCounters `json:"filtered,omitempty"`
}

type jsonCounters struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

type jsonOverflow struct {
	Packets        uint64 `json:"packets"`
	Bytes          uint64 `json:"bytes"`
	UntrackedFlows uint64 `json:"untrackedFlows"`
	HiddenFlows    uint64 `json:"hiddenFlows"`
}

type jsonIface struct {
	Name      string `json:"name"`
	RxPackets uint64 `json:"rxPackets"`
	TxPackets uint64 `json:"txPackets"`
	RxDropped uint64 `json:"rxDropped"`
	TxDropped uint64 `json:"txDropped"`
}

// WriteNDJSON writes one interval's report as one line of JSON: its end
// time, its length in seconds, the totals, the overflow, the interface's
// counters and the rows.
func WriteNDJSON(w io.Writer, r Report) error {
	t, o := r.Totals(), r.Overflow()
	line := jsonInterval{
		Time:     r.End.UTC(),
		Interval: r.Duration.Seconds(),
		Totals:   jsonCounters{Packets: t.Packets, Bytes: t.Bytes},
		Overflow: jsonOverflow{Packets: o.Packets, Bytes: o.Bytes, UntrackedFlows: r.UntrackedFlows, HiddenFlows: r.HiddenFlows},
		Rows:     jsonRows(&r),
		GroupBy:  r.GroupBy.Names(),
	}
	if f := r.Filtered; f != nil {
		line.Filtered = &jsonCounters{Packets: f.Packets, Bytes: f.Bytes}
	}
	if i := r.Iface; i != nil {
		line.Iface = &jsonIface{Name: i.Name, RxPackets: i.RxPackets, TxPackets: i.TxPackets, RxDropped: i.RxDropped, TxDropped: i.TxDropped}
	}
	if r.Ifaces != nil {
		list := make([]jsonIface, len(r.Ifaces))
		for n, i := range r.Ifaces {
			list[n] = jsonIface(i)
		}
		line.Ifaces = &list
	}
	doc, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("write NDJSON report: %w", err)
	}
	if _, err := w.Write(append(untrusted.EscapeJSON(doc), '\n')); err != nil {
		return fmt.Errorf("write NDJSON report: %w", err)
	}
	return nil
}

// jsonFiltered is the JSON report's last object when a filter is in use:
// what the filter dropped.
type jsonFiltered struct {
	Filtered jsonCounters `json:"filtered"`
}
