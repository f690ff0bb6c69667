package group

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

func ipKey(et uint16, proto uint8, src, dst string, sport, dport uint16) flow.Key {
	return flow.Key{EtherType: et, Proto: proto, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport}
}

// testRows are rows of every kind grouping treats differently: IPv4 and
// IPv6 of one protocol, ports, ICMP (type and code in the port fields), a
// fragment (no ports), ARP, both directions, a VLAN, recognised and
// unrecognised application protocols, and owners that share some fields.
func testRows() []flow.Flow {
	curl := flow.NewOwner(flow.OwnerInfo{PID: 10, Comm: "curl", Cgroup: "/a"})
	curl2 := flow.NewOwner(flow.OwnerInfo{PID: 11, Comm: "curl", Cgroup: "/b"})
	dig := flow.NewOwner(flow.OwnerInfo{PID: 12, Comm: "dig", Cgroup: "/a"})
	row := func(k flow.Key, p, b uint64, l7 flow.L7) flow.Flow {
		return flow.Flow{Key: k, Counters: flow.Counters{Packets: p, Bytes: b}, L7: l7}
	}
	udp1 := ipKey(flow.EtherTypeIPv4, flow.ProtoUDP, "198.18.0.1", "198.18.0.2", 40000, 53)
	udp1.Owner = dig
	udp2 := ipKey(flow.EtherTypeIPv4, flow.ProtoUDP, "198.18.0.1", "198.18.0.3", 40001, 5000)
	udp2.Dir = flow.Out
	udp6 := ipKey(flow.EtherTypeIPv6, flow.ProtoUDP, "2001:2::1", "2001:2::2", 40002, 53)
	tcp := ipKey(flow.EtherTypeIPv4, flow.ProtoTCP, "198.18.0.1", "198.18.0.2", 41000, 443)
	tcp.Owner = curl
	tcp.VLAN = 100
	tcpBack := ipKey(flow.EtherTypeIPv4, flow.ProtoTCP, "198.18.0.2", "198.18.0.1", 443, 41000)
	tcpBack.Owner = curl2
	tcpBack.Dir = flow.Out
	icmp := ipKey(flow.EtherTypeIPv4, flow.ProtoICMP, "198.18.0.1", "198.18.0.2", 8, 0)
	frag := ipKey(flow.EtherTypeIPv4, flow.ProtoUDP, "198.18.0.1", "198.18.0.2", 0x4500, 53)
	frag.Flags = flow.Fragment
	arp := flow.Key{EtherType: flow.EtherTypeARP, Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: 1}
	return []flow.Flow{
		row(udp1, 1, 100, flow.L7DNS),
		row(udp2, 2, 200, flow.L7Unknown),
		row(udp6, 4, 400, flow.L7DNS),
		row(tcp, 8, 800, flow.L7TLS),
		row(tcpBack, 16, 1600, flow.L7TLS),
		row(icmp, 32, 3200, flow.L7Unchecked),
		row(frag, 64, 6400, flow.L7Unchecked),
		row(arp, 128, 12800, flow.L7Unchecked),
	}
}

// sums returns each group's counters under its Text for the fields of b.
func sums(t *testing.T, rows []flow.Flow, b By) map[string]flow.Counters {
	t.Helper()
	out := make(map[string]flow.Counters)
	for i := range rows {
		var parts []string
		for _, f := range b.Fields() {
			parts = append(parts, f.String()+"="+Text(f, &rows[i].Key, rows[i].L7))
		}
		name := strings.Join(parts, " ")
		if _, dup := out[name]; dup {
			t.Fatalf("group %q appears twice", name)
		}
		out[name] = rows[i].Counters
	}
	return out
}

func TestRowsSums(t *testing.T) {
	c := func(p uint64) flow.Counters { return flow.Counters{Packets: p, Bytes: 100 * p} }
	tests := []struct {
		by   string
		want map[string]flow.Counters
	}{
		{"proto", map[string]flow.Counters{
			"proto=UDP": c(1 + 2 + 4 + 64), "proto=TCP": c(8 + 16), "proto=ICMPv4": c(32), "proto=ARP": c(128)}},
		// Rows without ports (ICMP, the fragment, ARP) are port 0.
		{"dport", map[string]flow.Counters{
			"dport=53": c(1 + 4), "dport=5000": c(2), "dport=443": c(8), "dport=41000": c(16), "dport=0": c(32 + 64 + 128)}},
		{"proto,dport", map[string]flow.Counters{
			"proto=UDP dport=53": c(1 + 4), "proto=UDP dport=5000": c(2), "proto=UDP dport=0": c(64),
			"proto=TCP dport=443": c(8), "proto=TCP dport=41000": c(16), "proto=ICMPv4 dport=0": c(32), "proto=ARP dport=0": c(128)}},
		{"src", map[string]flow.Counters{
			"src=198.18.0.1": c(1 + 2 + 8 + 32 + 64 + 128), "src=198.18.0.2": c(16), "src=2001:2::1": c(4)}},
		{"dst,sport", map[string]flow.Counters{
			"sport=40000 dst=198.18.0.2": c(1), "sport=40001 dst=198.18.0.3": c(2), "sport=40002 dst=2001:2::2": c(4),
			"sport=41000 dst=198.18.0.2": c(8), "sport=443 dst=198.18.0.1": c(16), "sport=0 dst=198.18.0.2": c(32 + 64 + 128)}},
		{"dir", map[string]flow.Counters{"dir=in": c(1 + 4 + 8 + 32 + 64 + 128), "dir=out": c(2 + 16)}},
		{"vlan", map[string]flow.Counters{"vlan=-": c(255 - 8), "vlan=100": c(8)}},
		{"app", map[string]flow.Counters{"app=DNS": c(1 + 4), "app=TLS": c(8 + 16), "app=-": c(2 + 32 + 64 + 128)}},
		{"pid", map[string]flow.Counters{"pid=10": c(8), "pid=11": c(16), "pid=12": c(1), "pid=-": c(2 + 4 + 32 + 64 + 128)}},
		{"comm", map[string]flow.Counters{"comm=curl": c(8 + 16), "comm=dig": c(1), "comm=-": c(2 + 4 + 32 + 64 + 128)}},
		{"cgroup", map[string]flow.Counters{"cgroup=/a": c(1 + 8), "cgroup=/b": c(16), "cgroup=-": c(2 + 4 + 32 + 64 + 128)}},
		{"comm,cgroup", map[string]flow.Counters{"comm=curl cgroup=/a": c(8), "comm=curl cgroup=/b": c(16), "comm=dig cgroup=/a": c(1),
			"comm=- cgroup=-": c(2 + 4 + 32 + 64 + 128)}},
	}
	for _, tt := range tests {
		t.Run(tt.by, func(t *testing.T) {
			b, err := Parse(tt.by)
			if err != nil {
				t.Fatal(err)
			}
			in := testRows()
			got := sums(t, Rows(in, b), b)
			if len(got) != len(tt.want) {
				t.Errorf("%d groups, want %d: %v", len(got), len(tt.want), got)
			}
			for name, w := range tt.want {
				if got[name] != w {
					t.Errorf("group %q: %+v, want %+v", name, got[name], w)
				}
			}
		})
	}
}

// Grouping by every field of the key that a row has keeps each row apart,
// and the zero By returns the rows untouched.
func TestRowsIdentity(t *testing.T) {
	in := testRows()
	if got := Rows(in, 0); &got[0] != &in[0] || len(got) != len(in) {
		t.Errorf("the zero By copied or changed the rows")
	}
	b, err := Parse("src,dst,sport,dport,proto,dir,vlan,app,pid,comm,cgroup")
	if err != nil {
		t.Fatal(err)
	}
	got := Rows(in, b)
	if len(got) != len(in) {
		t.Fatalf("%d groups of %d distinct rows", len(got), len(in))
	}
	var total flow.Counters
	for _, r := range got {
		total.Add(r.Counters)
	}
	if total != (flow.Counters{Packets: 255, Bytes: 25500}) {
		t.Errorf("total %+v, want 255 packets, 25500 bytes", total)
	}
	// Flags are no field: the fragment's group has none.
	for _, r := range got {
		if r.Flags != 0 {
			t.Errorf("group %+v kept flags", r.Key)
		}
	}
}

func TestParse(t *testing.T) {
	b, err := Parse("dport, PROTO,dport")
	if err != nil || b != By(DPort|Proto) {
		t.Fatalf("Parse: %v, %v", b, err)
	}
	if s := b.String(); s != "dport,proto" {
		t.Errorf("String %q, want dport,proto", s)
	}
	if f := b.Fields(); len(f) != 2 || f[0] != Proto || f[1] != DPort {
		t.Errorf("Fields %v, want proto, dport", f)
	}
	for _, bad := range []struct{ in, names string }{
		{"port", `"port"`},
		{"src,,dst", "empty field"},
		{"", "empty field"},
		{"proto,bogus", `"bogus"`},
	} {
		_, err := Parse(bad.in)
		if err == nil || !strings.Contains(err.Error(), bad.names) {
			t.Errorf("Parse(%q): %v, want an error naming %s", bad.in, err, bad.names)
		}
	}
	all, err := Parse(strings.Join(fieldNames[:], ","))
	if err != nil || all.String() != strings.Join(fieldNames[:], ",") {
		t.Errorf("every field: %v, %v", all, err)
	}
}

// TestRowsIface groups by interface: rows of a run that watches several
// carry the name, a run's single interface only its index.
func TestRowsIface(t *testing.T) {
	k := func(ifindex uint32, name string, dport uint16) flow.Key {
		key := ipKey(flow.EtherTypeIPv4, flow.ProtoUDP, "198.18.0.1", "198.18.0.2", 1000, dport)
		key.Ifindex, key.Iface = ifindex, name
		return key
	}
	rows := []flow.Flow{
		{Key: k(3, "pa0", 53), Counters: flow.Counters{Packets: 1, Bytes: 10}},
		{Key: k(3, "pa0", 54), Counters: flow.Counters{Packets: 2, Bytes: 20}},
		{Key: k(4, "pb0", 53), Counters: flow.Counters{Packets: 4, Bytes: 40}},
		{Key: k(5, "", 53), Counters: flow.Counters{Packets: 8, Bytes: 80}},
		{Key: k(0, "", 53), Counters: flow.Counters{Packets: 16, Bytes: 160}},
	}
	b := By(Iface)
	got := sums(t, Rows(rows, b), b)
	want := map[string]flow.Counters{
		"iface=pa0": {Packets: 3, Bytes: 30}, "iface=pb0": {Packets: 4, Bytes: 40},
		"iface=5": {Packets: 8, Bytes: 80}, "iface=-": {Packets: 16, Bytes: 160},
	}
	if len(got) != len(want) {
		t.Errorf("groups %v, want %v", got, want)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("group %q: %+v, want %+v", name, got[name], w)
		}
	}
}
