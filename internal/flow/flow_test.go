package flow

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	v4a = netip.MustParseAddr("198.18.0.1")
	v4b = netip.MustParseAddr("198.18.0.2")
	v4c = netip.MustParseAddr("198.19.255.254")
	v6a = netip.MustParseAddr("2001:2::1")
	v6b = netip.MustParseAddr("2001:2::2")
)

func tcp4(src, dst netip.Addr, sport, dport uint16) Key {
	return Key{EtherType: EtherTypeIPv4, Proto: ProtoTCP, Src: src, Dst: dst, SrcPort: sport, DstPort: dport}
}

func TestSum(t *testing.T) {
	tests := []struct {
		name   string
		perCPU []Counters
		want   Counters
	}{
		{"no slots", nil, Counters{}},
		{"one slot", []Counters{{Packets: 3, Bytes: 180}}, Counters{Packets: 3, Bytes: 180}},
		{"idle CPUs", []Counters{{}, {Packets: 2, Bytes: 120}, {}, {}}, Counters{Packets: 2, Bytes: 120}},
		{
			"every CPU",
			[]Counters{{Packets: 1, Bytes: 60}, {Packets: 10, Bytes: 15140}, {Packets: 100, Bytes: 6000}, {Packets: 1000, Bytes: 1514000}},
			Counters{Packets: 1111, Bytes: 60 + 15140 + 6000 + 1514000},
		},
		{
			// Two slots whose sum needs all 64 bits: nothing may be truncated.
			"near 2^64",
			[]Counters{{Packets: 1 << 62, Bytes: 1 << 63}, {Packets: 1 << 62, Bytes: 1<<63 - 1}},
			Counters{Packets: 1 << 63, Bytes: 1<<64 - 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sum(tt.perCPU); got != tt.want {
				t.Errorf("Sum(%v) = %+v, want %+v", tt.perCPU, got, tt.want)
			}
		})
	}
}

func TestBitrate(t *testing.T) {
	tests := []struct {
		bytes uint64
		d     time.Duration
		want  float64
	}{
		{1_250_000, 2 * time.Second, 5_000_000},
		{4255963315, 5 * time.Second, 6_809_541_304},
		{125, 500 * time.Millisecond, 2000},
		{1, 3 * time.Second, 8.0 / 3},
		{0, time.Second, 0},
		{1_250_000, 0, 0},            // no time has passed: no rate, not +Inf
		{1_250_000, -time.Second, 0}, // a clock step backwards: no rate
	}
	for _, tt := range tests {
		if got := Bitrate(tt.bytes, tt.d); got != tt.want {
			t.Errorf("Bitrate(%d, %v) = %v, want %v", tt.bytes, tt.d, got, tt.want)
		}
	}
}

func TestRankBitrate(t *testing.T) {
	table := map[Key]Counters{
		tcp4(v4a, v4b, 41686, 5201): {Packets: 1000, Bytes: 1_250_000},
		tcp4(v4b, v4a, 5201, 41686): {Packets: 500, Bytes: 32_000},
	}
	got := Rank(table, 2*time.Second)
	want := []Flow{
		{Key: tcp4(v4a, v4b, 41686, 5201), Counters: Counters{Packets: 1000, Bytes: 1_250_000}, Bitrate: 5_000_000},
		{Key: tcp4(v4b, v4a, 5201, 41686), Counters: Counters{Packets: 500, Bytes: 32_000}, Bitrate: 128_000},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Rank:\n got %+v\nwant %+v", got, want)
	}

	zero := Rank(table, 0)
	for _, f := range zero {
		if f.Bitrate != 0 {
			t.Errorf("Rank over zero duration: %v has bitrate %v, want 0", f.Key, f.Bitrate)
		}
	}
	// With every bitrate 0, packets decide.
	if len(zero) != 2 || zero[0].Packets != 1000 || zero[1].Packets != 500 {
		t.Errorf("Rank over zero duration = %+v, want the 1000-packet row first", zero)
	}

	if got := Rank(nil, time.Second); got == nil || len(got) != 0 {
		t.Errorf("Rank(nil) = %#v, want an empty, non-nil slice", got)
	}
}

// rankTable is built so that every tie-break of Compare decides at least
// one pair; want is its order, worked out by hand.
func rankTable() (entries []struct {
	k Key
	c Counters
}, want []Key) {
	big := uint64(1) << 60 // 2^60 and 2^60+1 bytes give the same float64 bitrate
	type e = struct {
		k Key
		c Counters
	}
	keys := []Key{
		// Where a counter decides, the key alone would give the other order.
		0:  tcp4(v4a, v4b, 1, 3),                                      // highest bitrate (2^60+1 bytes, 2 packets)
		1:  tcp4(v4a, v4b, 1, 2),                                      // same bitrate, same packets, 2^60 bytes
		2:  tcp4(v4a, v4a, 9, 9),                                      // same bitrate, 1 packet
		3:  tcp4(v4a, v4b, 80, 81),                                    // 1000 bytes, 20 packets
		4:  tcp4(v4a, v4b, 80, 80),                                    // 1000 bytes, 10 packets
		5:  tcp4(v4a, v4b, 7, 7),                                      // 500 bytes, 5 packets: the key decides from here
		6:  tcp4(v4a, v4c, 7, 7),                                      // ... Dst
		7:  {EtherType: EtherTypeIPv4, Proto: 99, Src: v4b, Dst: v4a}, // ... Src 198.18.0.2 after 198.18.0.1
		8:  {EtherType: EtherTypeIPv6, Proto: ProtoUDP, Src: v6a, Dst: v6b, SrcPort: 53, DstPort: 5353},
		9:  {EtherType: EtherTypeIPv6, Proto: ProtoUDP, Src: v6a, Dst: v6b, SrcPort: 53, DstPort: 5353, VLAN: 7},
		10: {EtherType: EtherTypeIPv6, Proto: ProtoUDP, Src: v6a, Dst: v6b, SrcPort: 53, DstPort: 5353, VLAN: 7, Flags: Fragment},
		11: {EtherType: 0x0806}, // 1 packet, 42 bytes
	}
	// Non-IP keys have invalid addresses, which sort before every valid
	// one; key 11 is last only because it has the fewest packets.
	entries = []e{
		{keys[0], Counters{Packets: 2, Bytes: big + 1}},
		{keys[1], Counters{Packets: 2, Bytes: big}},
		{keys[2], Counters{Packets: 1, Bytes: big}},
		{keys[3], Counters{Packets: 20, Bytes: 1000}},
		{keys[4], Counters{Packets: 10, Bytes: 1000}},
		{keys[5], Counters{Packets: 5, Bytes: 500}},
		{keys[6], Counters{Packets: 5, Bytes: 500}},
		{keys[7], Counters{Packets: 5, Bytes: 500}},
		{keys[8], Counters{Packets: 5, Bytes: 500}},
		{keys[9], Counters{Packets: 5, Bytes: 500}},
		{keys[10], Counters{Packets: 5, Bytes: 500}},
		{keys[11], Counters{Packets: 1, Bytes: 42}},
	}
	return entries, keys
}

func TestRankOrder(t *testing.T) {
	entries, want := rankTable()
	if Bitrate(1<<60+1, time.Second) != Bitrate(1<<60, time.Second) {
		t.Fatal("test premise: 2^60 and 2^60+1 bytes should give the same float64 bitrate")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		// Insert in a different order every round; Go also randomizes
		// map iteration, so Rank sees the rows in many orders.
		table := make(map[Key]Counters, len(entries))
		for _, i := range rng.Perm(len(entries)) {
			table[entries[i].k] = entries[i].c
		}
		rows := Rank(table, time.Second)
		got := make([]Key, len(rows))
		for i, r := range rows {
			got[i] = r.Key
			if c := table[r.Key]; r.Counters != c {
				t.Fatalf("round %d: row %v has counters %+v, want %+v", round, r.Key, r.Counters, c)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: Rank order:\n got %v\nwant %v", round, got, want)
		}
	}
}

func TestCompare(t *testing.T) {
	k1, k2 := tcp4(v4a, v4b, 1, 2), tcp4(v4a, v4b, 1, 3)
	tests := []struct {
		name string
		a, b Flow
		want int
	}{
		{"higher bitrate first", Flow{Key: k2, Counters: Counters{1, 1}, Bitrate: 2}, Flow{Key: k1, Counters: Counters{9, 9}, Bitrate: 1}, -1},
		{"lower bitrate last", Flow{Key: k1, Bitrate: 1}, Flow{Key: k2, Bitrate: 2}, 1},
		{"more packets first", Flow{Key: k2, Counters: Counters{Packets: 5, Bytes: 1}}, Flow{Key: k1, Counters: Counters{Packets: 4, Bytes: 9}}, -1},
		{"more bytes first", Flow{Key: k2, Counters: Counters{Packets: 4, Bytes: 10}}, Flow{Key: k1, Counters: Counters{Packets: 4, Bytes: 9}}, -1},
		{"then the key", Flow{Key: k1, Counters: Counters{4, 9}}, Flow{Key: k2, Counters: Counters{4, 9}}, -1},
		{"then the key, reversed", Flow{Key: k2, Counters: Counters{4, 9}}, Flow{Key: k1, Counters: Counters{4, 9}}, 1},
		{"equal", Flow{Key: k1, Counters: Counters{4, 9}, Bitrate: 3}, Flow{Key: k1, Counters: Counters{4, 9}, Bitrate: 3}, 0},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: Compare = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// orderedKeys are distinct keys in CompareKeys order: each differs from
// the one before in exactly the field that decides.
func orderedKeys() []Key {
	base := Key{EtherType: EtherTypeIPv4, Proto: ProtoTCP, Src: v4a, Dst: v4b, SrcPort: 10, DstPort: 20, VLAN: 5, Flags: 0}
	with := func(f func(*Key)) Key { k := base; f(&k); return k }
	return []Key{
		{EtherType: 0x0000}, // invalid addresses sort first
		{EtherType: 0x0806}, // then EtherType
		{EtherType: 0x88b5},
		with(func(k *Key) { k.Dst = v4a }), // Src equal, smaller Dst
		with(func(k *Key) { k.Proto = ProtoICMP }),
		with(func(k *Key) { k.SrcPort = 9; k.DstPort = 99 }),   // SrcPort before DstPort
		with(func(k *Key) { k.DstPort = 19; k.VLAN = 9 }),      // DstPort before VLAN
		with(func(k *Key) { k.VLAN = 4; k.Flags = Malformed }), // VLAN before Flags
		base,
		with(func(k *Key) { k.Flags = Fragment }),
		with(func(k *Key) { k.Flags = Malformed }),
		with(func(k *Key) { k.Flags = Fragment | Malformed | DeepChain }),
		with(func(k *Key) { k.Dst = v4c; k.SrcPort = 0 }),                            // Dst before ports
		with(func(k *Key) { k.Src = v4b; k.Dst = v4a; k.Proto = 99 }),                // Src before Dst
		with(func(k *Key) { k.Src = v4b; k.Dst = v4a; k.EtherType = EtherTypeIPv6 }), // EtherType before Proto
		{EtherType: EtherTypeIPv6, Proto: ProtoUDP, Src: v6a, Dst: v6b},              // IPv4 sorts before IPv6
		{EtherType: EtherTypeIPv6, Proto: ProtoUDP, Src: v6b, Dst: v6a},
	}
}

func TestCompareKeysOrder(t *testing.T) {
	want := orderedKeys()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		got := slices.Clone(want)
		rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(got, CompareKeys)
		if !slices.Equal(got, want) {
			t.Fatalf("sorted keys:\n got %v\nwant %v", got, want)
		}
	}
}

func TestCompareKeysTotalOrder(t *testing.T) {
	keys := orderedKeys()
	sign := func(c int) int { return min(max(c, -1), 1) }
	for i, a := range keys {
		for j, b := range keys {
			c := CompareKeys(a, b)
			if (c == 0) != (a == b) {
				t.Errorf("CompareKeys(%v, %v) = %d, but keys equal = %v", a, b, c, a == b)
			}
			if sign(c) != -sign(CompareKeys(b, a)) {
				t.Errorf("CompareKeys not antisymmetric for %v, %v", a, b)
			}
			if want := sign(i - j); sign(c) != want {
				t.Errorf("CompareKeys(keys[%d], keys[%d]) = %d, want sign %d", i, j, c, want)
			}
			for _, k := range keys {
				if c <= 0 && CompareKeys(b, k) <= 0 && CompareKeys(a, k) > 0 {
					t.Errorf("CompareKeys not transitive: %v <= %v <= %v but %v > %v", a, b, k, a, k)
				}
			}
		}
	}
}

func TestOwner(t *testing.T) {
	nginx := OwnerInfo{PID: 812, Comm: "nginx", Cgroup: "/system.slice/nginx.service"}
	if o := NewOwner(OwnerInfo{}); !o.IsZero() || o != (Owner{}) || o.Info() != (OwnerInfo{}) {
		t.Errorf("NewOwner of nothing = %+v, info %+v; want the zero Owner", o, o.Info())
	}
	a, b := NewOwner(nginx), NewOwner(OwnerInfo{PID: 812, Comm: "ngin" + "x", Cgroup: nginx.Cgroup})
	if a != b || a.IsZero() || a.Info() != nginx {
		t.Errorf("two Owners of %+v: equal %v, zero %v, info %+v", nginx, a == b, a.IsZero(), a.Info())
	}
	// Keys that differ only in the owner are distinct and ordered by PID,
	// then comm, then cgroup, the unknown owner first.
	infos := []OwnerInfo{{}, {Cgroup: "/"}, {PID: 7, Comm: "a"}, {PID: 7, Comm: "b"}, {PID: 7, Comm: "b", Cgroup: "/x"}, {PID: 8}}
	var keys []Key
	for _, o := range infos {
		k := tcp4(v4a, v4b, 1, 2)
		k.Owner = NewOwner(o)
		keys = append(keys, k)
	}
	got := slices.Clone(keys)
	slices.Reverse(got)
	slices.SortFunc(got, CompareKeys)
	if !slices.Equal(got, keys) {
		t.Errorf("keys sorted by owner:\n got %v\nwant %v", got, keys)
	}
}
