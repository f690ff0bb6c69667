package report

import (
	"encoding/json"
	"fmt"
	"io"

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
	// UntrackedFlows estimates the distinct flows in the overflow row.
	UntrackedFlows uint64 `json:"untrackedFlows,omitempty"`
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
	rows := make([]jsonRow, 0, len(r.Flows)+1)
	for i := range r.Flows {
		rows = append(rows, newJSONRow(&r.Flows[i]))
	}
	if r.Untracked.Packets > 0 {
		rows = append(rows, jsonRow{
			Bytes:          r.Untracked.Bytes,
			Packets:        r.Untracked.Packets,
			Bitrate:        flow.Bitrate(r.Untracked.Bytes, r.Duration),
			Overflow:       true,
			UntrackedFlows: r.UntrackedFlows,
		})
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(rows); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}
