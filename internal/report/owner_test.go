package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// ownerReport is a cgroup-mode report: rows with a full owner, rows with
// parts of it missing, and a flow that two processes share (one row each).
func ownerReport() Report {
	k := func(proto uint8, src, dst string, sport, dport uint16, o flow.Owner) flow.Key {
		key := flow.Key{EtherType: flow.EtherTypeIPv4, Proto: proto, SrcPort: sport, DstPort: dport, Owner: o}
		if strings.Contains(src, ":") {
			key.EtherType = flow.EtherTypeIPv6
		}
		key.Src, key.Dst = netip.MustParseAddr(src), netip.MustParseAddr(dst)
		return key
	}
	nginx := flow.NewOwner(flow.OwnerInfo{PID: 812, Comm: "nginx", Cgroup: "/sys/fs/cgroup/system.slice/nginx.service"})
	worker := flow.NewOwner(flow.OwnerInfo{PID: 813, Comm: "nginx", Cgroup: "/sys/fs/cgroup/system.slice/nginx.service"})
	table := map[flow.Key]flow.Counters{
		k(flow.ProtoTCP, "198.18.0.1", "198.18.0.2", 443, 51000, nginx):                                            {Packets: 140, Bytes: 207_580},
		k(flow.ProtoTCP, "198.18.0.2", "198.18.0.1", 51000, 443, nginx):                                            {Packets: 71, Bytes: 3_692},
		k(flow.ProtoUDP, "2001:2::1", "2001:2::2", 53000, 53, worker):                                              {Packets: 2, Bytes: 200},
		k(flow.ProtoUDP, "2001:2::1", "2001:2::2", 53000, 53, nginx):                                               {Packets: 2, Bytes: 200},
		k(flow.ProtoICMP, "198.18.0.1", "198.18.0.2", 8, 0, flow.NewOwner(flow.OwnerInfo{PID: 900, Comm: "ping"})): {Packets: 1, Bytes: 84},
		// A socket whose owner could not be read: only its cgroup is known.
		k(flow.ProtoTCP, "198.18.0.1", "198.18.0.3", 22, 40000, flow.NewOwner(flow.OwnerInfo{Cgroup: "/sys/fs/cgroup/unified"})): {Packets: 1, Bytes: 52},
	}
	d := 2 * time.Second
	return Report{Flows: flow.Rank(table, d), Duration: d}
}

func TestWritePlainOwnerRows(t *testing.T) {
	buf := writeGolden(t, WritePlain, ownerReport(), "owner.plain.golden")
	want := []string{
		"bitrate: 830.32 Kbps, packets: 140, bytes: 207580, proto: TCP, src: 198.18.0.1:443, dst: 198.18.0.2:51000, pid: 812, comm: nginx, cgroup: /sys/fs/cgroup/system.slice/nginx.service",
		"bitrate: 14.77 Kbps, packets: 71, bytes: 3692, proto: TCP, src: 198.18.0.2:51000, dst: 198.18.0.1:443, pid: 812, comm: nginx, cgroup: /sys/fs/cgroup/system.slice/nginx.service",
		// The same flow from two processes: two rows, lower PID first.
		"bitrate: 800.00 bps, packets: 2, bytes: 200, proto: UDP, src: [2001:2::1]:53000, dst: [2001:2::2]:53, pid: 812, comm: nginx, cgroup: /sys/fs/cgroup/system.slice/nginx.service",
		"bitrate: 800.00 bps, packets: 2, bytes: 200, proto: UDP, src: [2001:2::1]:53000, dst: [2001:2::2]:53, pid: 813, comm: nginx, cgroup: /sys/fs/cgroup/system.slice/nginx.service",
		"bitrate: 336.00 bps, packets: 1, bytes: 84, proto: ICMPv4, src: 198.18.0.1, dst: 198.18.0.2, type: 8, code: 0, pid: 900, comm: ping",
		"bitrate: 208.00 bps, packets: 1, bytes: 52, proto: TCP, src: 198.18.0.1:22, dst: 198.18.0.3:40000, cgroup: /sys/fs/cgroup/unified",
		"summary: packets: 217, bytes: 211808, rows: 6, flows beyond --top: 0, flows not tracked (flow table full): about 0",
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("WritePlain wrote %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], want[i])
		}
	}
}

func TestWriteJSONOwnerFields(t *testing.T) {
	buf := writeGolden(t, WriteJSON, ownerReport(), "owner.json.golden")
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil {
		t.Fatalf("report is not a JSON array of objects: %v", err)
	}
	want := []struct {
		pid          float64 // 0: the field must be absent
		comm, cgroup string  // "": the field must be absent
	}{
		{812, "nginx", "/sys/fs/cgroup/system.slice/nginx.service"},
		{812, "nginx", "/sys/fs/cgroup/system.slice/nginx.service"},
		{812, "nginx", "/sys/fs/cgroup/system.slice/nginx.service"},
		{813, "nginx", "/sys/fs/cgroup/system.slice/nginx.service"},
		{900, "ping", ""},
		{0, "", "/sys/fs/cgroup/unified"},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		r := rows[i]
		check := func(field string, set bool, value any) {
			got, ok := r[field]
			switch {
			case set && !ok:
				t.Errorf("row %d: %q missing, want %v", i, field, value)
			case set && got != value:
				t.Errorf("row %d: %q = %v, want %v", i, field, got, value)
			case !set && ok:
				t.Errorf("row %d: %q = %v, want it absent (not known)", i, field, got)
			}
		}
		check("pid", w.pid != 0, w.pid)
		check("comm", w.comm != "", w.comm)
		check("cgroup", w.cgroup != "", w.cgroup)
	}
}

// TestOwnerlessRowsUnchanged checks that rows without an owner, all that TC
// and XDP produce, render exactly as before the owner fields existed.
func TestOwnerlessRowsUnchanged(t *testing.T) {
	var plain, js bytes.Buffer
	if err := WritePlain(&plain, sampleReport()); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, sampleReport()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"pid", "comm", "cgroup"} {
		if strings.Contains(plain.String(), s+":") {
			t.Errorf("plain report without owners mentions %q:\n%s", s, plain.String())
		}
		if strings.Contains(js.String(), `"`+s+`"`) {
			t.Errorf("JSON report without owners has a %q field:\n%s", s, js.String())
		}
	}
}
