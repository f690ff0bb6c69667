package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// severalReport is a report of a run that watches two interfaces: the same
// flow, forwarded from one to the other, has a row on each.
func severalReport() Report {
	k := func(iface string, idx uint32, dir flow.Direction) flow.Key {
		return flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoUDP, Src: a1, Dst: a2, SrcPort: 1000, DstPort: 53,
			Dir: dir, Ifindex: idx, Iface: iface}
	}
	d := 2 * time.Second
	return Report{
		Flows: flow.RankRows([]flow.Flow{
			{Key: k("veth-a", 7, flow.In), Counters: flow.Counters{Packets: 10, Bytes: 1000}},
			{Key: k("veth-b", 9, flow.Out), Counters: flow.Counters{Packets: 10, Bytes: 1000}},
		}, d),
		Duration: d,
		Ifaces: []Iface{
			{Name: "veth-a", RxPackets: 10, TxPackets: 1},
			{Name: "veth-b", RxPackets: 2, TxPackets: 10, TxDropped: 3},
		},
		End: time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC),
	}
}

// TestWritePlainSeveralIfaces: each row names its interface, and the
// summary lists every interface's own counters.
func TestWritePlainSeveralIfaces(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePlain(&buf, severalReport()); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"bitrate: 4.00 Kbps, packets: 10, bytes: 1000, proto: UDP, src: 198.18.0.1:1000, dst: 198.18.0.2:53, iface: veth-a",
		"bitrate: 4.00 Kbps, packets: 10, bytes: 1000, proto: UDP, src: 198.18.0.1:1000, dst: 198.18.0.2:53, iface: veth-b",
		"summary: packets: 20, bytes: 2000, rows: 2, flows beyond --top: 0, flows not tracked (flow table full): about 0" +
			"; veth-a counted rx packets: 10, tx packets: 1, rx dropped: 0, tx dropped: 0" +
			"; veth-b counted rx packets: 2, tx packets: 10, rx dropped: 0, tx dropped: 3",
		"",
	}, "\n")
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// TestWriteJSONSeveralIfaces: each JSON row has "iface"; a row of a run
// on one interface has none (the golden files hold those).
func TestWriteJSONSeveralIfaces(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, severalReport()); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	var got []any
	for _, r := range rows {
		got = append(got, r["iface"])
	}
	if want := []any{"veth-a", "veth-b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("iface of the rows = %v, want %v", got, want)
	}
}

// TestWriteNDJSONSeveralIfaces: the interval object lists each
// interface's counters under "ifaces" and has no "iface"; with no
// interface up yet (-i any), the list is there and empty.
func TestWriteNDJSONSeveralIfaces(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNDJSON(&buf, severalReport()); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if _, ok := line["iface"]; ok {
		t.Error(`the line has "iface" beside "ifaces"`)
	}
	want := []any{
		map[string]any{"name": "veth-a", "rxPackets": 10.0, "txPackets": 1.0, "rxDropped": 0.0, "txDropped": 0.0},
		map[string]any{"name": "veth-b", "rxPackets": 2.0, "txPackets": 10.0, "rxDropped": 0.0, "txDropped": 3.0},
	}
	if !reflect.DeepEqual(line["ifaces"], want) {
		t.Errorf("ifaces = %v, want %v", line["ifaces"], want)
	}
	rows, _ := line["rows"].([]any)
	if len(rows) != 2 || rows[0].(map[string]any)["iface"] != "veth-a" {
		t.Errorf("rows = %v, want two, the first on veth-a", line["rows"])
	}

	r := severalReport()
	r.Ifaces = []Iface{}
	buf.Reset()
	if err := WriteNDJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"ifaces":[]`) {
		t.Errorf("no interface yet: %s, want an empty ifaces list", buf.String())
	}
}
