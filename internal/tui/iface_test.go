package tui

import (
	"strings"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// TestLayoutIfaceColumn: rows of a run that watches several interfaces
// get an iface column after dir, which names each row's interface.
func TestLayoutIfaceColumn(t *testing.T) {
	a := &Flow{Key: udp(ipB, ipA, 40000, 9001), Rate: Rate{BPS: 227_200, PPS: 200}, Total: flow.Counters{Packets: 1200, Bytes: 170_400}}
	a.Key.Iface = "veth-a"
	b := &Flow{Key: udp(ipB, ipA, 40000, 9001), Rate: Rate{BPS: 227_200, PPS: 200}, Total: flow.Counters{Packets: 1200, Bytes: 170_400}}
	b.Key.Iface = "veth-b"
	title, lines := render(columns(false, false, true), []*Flow{a, b}, 200)
	if want := "   bitrate▼    pps  packets   bytes  proto  source            destination      dir  iface"; strings.TrimRight(title, " ") != want {
		t.Errorf("title:\n got %q\nwant %q", title, want)
	}
	for i, name := range []string{"veth-a", "veth-b"} {
		want := "227.20 Kbps  200.0     1200  170400  UDP    198.18.0.2:40000  198.18.0.1:9001  in   " + name
		if i >= len(lines) || strings.TrimRight(lines[i], " ") != want {
			t.Errorf("row %d:\n got %q\nwant %q", i, lines, want)
		}
	}
}
