package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// jsonRow uses pktstat-bpf's field names; fields after dstPort appear only
// when they apply. ICMP type and code sit in srcPort and dstPort, as there.
type jsonRow struct {
	SrcIP     string  `json:"srcIp"`
	DstIP     string  `json:"dstIp"`
	Proto     string  `json:"proto"`
	Bytes     uint64  `json:"bytes"`
	Packets   uint64  `json:"packets"`
	Bitrate   float64 `json:"bitrate"`
	SrcPort   uint16  `json:"srcPort"`
	DstPort   uint16  `json:"dstPort"`
	PID       uint32  `json:"pid,omitempty"`
	Comm      string  `json:"comm,omitempty"`
	Cgroup    string  `json:"cgroup,omitempty"`
	VLAN      uint16  `json:"vlan,omitempty"`
	Fragment  bool    `json:"fragment,omitempty"`
	DeepChain bool    `json:"deepChain,omitempty"`
	Malformed bool    `json:"malformed,omitempty"`
	Dir       string  `json:"dir,omitempty"`
	Overflow  bool    `json:"overflow,omitempty"`
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
		PID:       f.Owner.PID,
		Comm:      f.Owner.Comm,
		Cgroup:    f.Owner.Cgroup,
		Dir:       f.Dir.String(),
	}
	if f.IsIP() {
		r.SrcIP, r.DstIP = f.Src.String(), f.Dst.String()
	}
	if f.HasPorts() || f.IsICMP() {
		r.SrcPort, r.DstPort = f.SrcPort, f.DstPort
	}
	return r
}

// WriteJSON writes the report as one JSON array, an object per row. Traffic
// without a row of its own comes last, in a row with "overflow": true.
func WriteJSON(w io.Writer, r Report) error {
	if err := json.NewEncoder(w).Encode(jsonRows(&r, true)); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// jsonRows converts the rows, and with overflow the overflow row too.
func jsonRows(r *Report, overflow bool) []jsonRow {
	rows := make([]jsonRow, 0, len(r.Flows)+1)
	for i := range r.Flows {
		rows = append(rows, newJSONRow(&r.Flows[i]))
	}
	if o := r.Overflow(); overflow && o.Packets > 0 {
		rows = append(rows, jsonRow{
			Bytes:          o.Bytes,
			Packets:        o.Packets,
			Bitrate:        flow.Bitrate(o.Bytes, r.Duration),
			Overflow:       true,
			UntrackedFlows: r.UntrackedFlows,
			HiddenFlows:    r.HiddenFlows,
		})
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
	Rows     []jsonRow    `json:"rows"`
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
		Rows:     jsonRows(&r, false),
	}
	if i := r.Iface; i != nil {
		line.Iface = &jsonIface{Name: i.Name, RxPackets: i.RxPackets, TxPackets: i.TxPackets, RxDropped: i.RxDropped, TxDropped: i.TxDropped}
	}
	if err := json.NewEncoder(w).Encode(line); err != nil {
		return fmt.Errorf("write NDJSON report: %w", err)
	}
	return nil
}
