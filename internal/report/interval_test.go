package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// topReport is a report cut by --top 2 from 5 rows, with traffic that also
// found the flow table full, and the interface's counters.
func topReport() Report {
	k := func(port uint16) flow.Key {
		return flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoUDP, Src: a1, Dst: a2, SrcPort: port, DstPort: 53}
	}
	d := 2 * time.Second
	return Report{
		Flows: flow.RankRows([]flow.Flow{
			{Key: k(1000), Counters: flow.Counters{Packets: 10, Bytes: 1000}},
			{Key: k(1001), Counters: flow.Counters{Packets: 20, Bytes: 3000}, Bitrate: 0},
		}, d),
		Duration:       d,
		Hidden:         flow.Counters{Packets: 3, Bytes: 300},
		HiddenFlows:    3,
		Untracked:      flow.Counters{Packets: 5, Bytes: 500},
		UntrackedFlows: 4,
		Iface:          &Iface{Name: "veth0", RxPackets: 30, TxPackets: 8, RxDropped: 1},
		End:            time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC),
	}
}

func TestWritePlainTopAndIface(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePlain(&buf, topReport()); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"bitrate: 12.00 Kbps, packets: 20, bytes: 3000, proto: UDP, src: 198.18.0.1:1001, dst: 198.18.0.2:53",
		"bitrate: 4.00 Kbps, packets: 10, bytes: 1000, proto: UDP, src: 198.18.0.1:1000, dst: 198.18.0.2:53",
		// 3+5 packets, 300+500 bytes: the rows --top left out and the untracked traffic.
		"bitrate: 3.20 Kbps, packets: 8, bytes: 800, overflow: 3 flows beyond --top, and about 4 flows not tracked individually (flow table full; raise --max-entries)",
		"summary: packets: 38, bytes: 4800, rows: 2, flows beyond --top: 3, flows not tracked (flow table full): about 4; veth0 counted rx packets: 30, tx packets: 8, rx dropped: 1, tx dropped: 0",
		"",
	}, "\n")
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestWriteJSONOverflowWithTop(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, topReport()); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 2 and the overflow row", len(rows))
	}
	o := rows[2]
	if o["overflow"] != true || o["packets"] != 8.0 || o["bytes"] != 800.0 || o["hiddenFlows"] != 3.0 || o["untrackedFlows"] != 4.0 {
		t.Errorf("overflow row = %v, want 8 packets, 800 bytes, hiddenFlows 3, untrackedFlows 4", o)
	}
}

func TestWriteNDJSON(t *testing.T) {
	var buf bytes.Buffer
	r := topReport()
	for range 2 {
		if err := WriteNDJSON(&buf, r); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines for 2 intervals:\n%s", len(lines), buf.String())
	}
	var got struct {
		Time     time.Time `json:"time"`
		Interval float64   `json:"interval"`
		Totals   struct{ Packets, Bytes uint64 }
		Overflow struct {
			Packets, Bytes              uint64
			UntrackedFlows, HiddenFlows uint64
		}
		Iface struct {
			Name                                       string
			RxPackets, TxPackets, RxDropped, TxDropped uint64
		}
		Rows []map[string]any
	}
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(r.End) || got.Interval != 2 {
		t.Errorf("time %v, interval %v; want %v, 2", got.Time, got.Interval, r.End)
	}
	if got.Totals.Packets != 38 || got.Totals.Bytes != 4800 {
		t.Errorf("totals %+v, want 38 packets, 4800 bytes", got.Totals)
	}
	if got.Overflow.Packets != 8 || got.Overflow.Bytes != 800 || got.Overflow.HiddenFlows != 3 || got.Overflow.UntrackedFlows != 4 {
		t.Errorf("overflow %+v", got.Overflow)
	}
	if got.Iface.Name != "veth0" || got.Iface.RxPackets != 30 || got.Iface.TxPackets != 8 || got.Iface.RxDropped != 1 {
		t.Errorf("iface %+v", got.Iface)
	}
	if len(got.Rows) != 2 || got.Rows[0]["srcPort"] != 1001.0 || got.Rows[0]["overflow"] != nil {
		t.Errorf("rows %v, want the two flows, fastest first, and no overflow row", got.Rows)
	}
}
