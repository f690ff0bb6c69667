package harness

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/report"
)

// everyField is a report in which the encoder writes every field it has:
// protocols with fields of their own, application protocols, an owner,
// the flags, a VLAN, both directions and the overflow row.
func everyField() report.Report {
	ip4 := func(proto uint8, sport, dport uint16) flow.Key {
		return flow.Key{EtherType: flow.EtherTypeIPv4, Proto: proto, Src: netip.MustParseAddr("198.18.0.1"),
			Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: sport, DstPort: dport}
	}
	owned := ip4(flow.ProtoTCP, 41000, 443)
	owned.Owner = flow.NewOwner(flow.OwnerInfo{PID: 42, Comm: "curl", Cgroup: "/sys/fs/cgroup/test"})
	owned.VLAN, owned.Dir, owned.Iface = 7, flow.Out, "pa0"
	flagged := ip4(flow.ProtoUDP, 0, 0)
	flagged.Flags = flow.Fragment | flow.Malformed | flow.DeepChain
	arp := flow.Key{EtherType: flow.EtherTypeARP, Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: 1}
	var rows []flow.Flow
	for i, k := range []flow.Key{owned, flagged, arp, ip4(flow.ProtoESP, 1, 2), ip4(flow.ProtoGRE, 0x0800, 0x2000),
		ip4(flow.ProtoOSPF, 1, 2), ip4(flow.ProtoIGMP, 0x22, 0)} {
		rows = append(rows, flow.Flow{Key: k, Counters: flow.Counters{Packets: uint64(10 - i), Bytes: uint64(1000 - i)}, L7: flow.L7HTTP})
	}
	rows[1].Estimated = true // --read's mark
	d := time.Second
	return report.Report{Flows: flow.RankRows(rows, d), Duration: d,
		Untracked: flow.Counters{Packets: 3, Bytes: 300}, UntrackedFlows: 2, HiddenFlows: 1,
		Iface: &report.Iface{Name: "pa0", RxPackets: 1, TxPackets: 2, RxDropped: 3, TxDropped: 4}, End: time.Unix(1, 0)}
}

// TestRowMatchesEncoder keeps Row in step with internal/report's encoder:
// a report with every field decodes into Row and Interval without an
// unknown field, and Row has no field that the encoder never writes.
func TestRowMatchesEncoder(t *testing.T) {
	var js, nd bytes.Buffer
	if err := report.WriteJSON(&js, everyField()); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteNDJSON(&nd, everyField()); err != nil {
		t.Fatal(err)
	}
	var rows []Row
	dec := json.NewDecoder(bytes.NewReader(js.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("a JSON report does not decode into Row: %v\n%s", err, js.String())
	}
	var iv Interval
	dec = json.NewDecoder(bytes.NewReader(nd.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&iv); err != nil {
		t.Fatalf("an NDJSON line does not decode into Interval: %v\n%s", err, nd.String())
	}
	if len(rows) != 8 || !rows[7].Overflow || len(iv.Rows) != 7 || iv.Iface == nil || iv.Overflow.UntrackedFlows != 2 {
		t.Fatalf("decoded %d rows (overflow last: %v) and an interval of %d rows, iface %v, overflow %+v",
			len(rows), len(rows) > 0 && rows[len(rows)-1].Overflow, len(iv.Rows), iv.Iface, iv.Overflow)
	}

	var raw []map[string]any
	if err := json.Unmarshal(js.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, r := range raw {
		for k := range r {
			written[k] = true
		}
	}
	var never []string
	for f := range reflect.TypeFor[Row]().Fields() {
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); !written[tag] {
			never = append(never, tag)
		}
	}
	if len(never) > 0 {
		t.Errorf("Row has fields %v that the encoder never wrote; it wrote %v", never, slices.Sorted(maps.Keys(written)))
	}
}
