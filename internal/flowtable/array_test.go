package flowtable

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// testKey is the key of UDP flow n from 198.18.0.0/15.
func testKey(n uint32) bpfprog.FlowKey {
	k := bpfprog.FlowKey{EthProto: 0x0800, Proto: 17, Dport: 53, Sport: uint16(n)}
	binary.BigEndian.PutUint32(k.Saddr[:4], 0xC6120000|n>>16)
	copy(k.Daddr[:4], []byte{198, 18, 255, 1})
	return k
}

// arrayTable is an array table of rows rows in Go memory, with base
// elements of reservations before its index, as the kernel lays one out.
func arrayTable(rows uint32, base int) (*Table[bpfprog.FlowKey], []slot[bpfprog.FlowKey]) {
	t := &Table[bpfprog.FlowKey]{conv: KeyFromBPF}
	t.layArray(rows, base)
	return t, make([]slot[bpfprog.FlowKey], arrayElems(rows, uint32(base)))
}

// TestArrayScanMergesDuplicates: two CPUs that bring a new flow at once
// may each claim a slot for it, the second further on the key's probe
// path, with a row each; a scan gives one row with both rows' counts,
// skips a row taken and not used, and frees every index slot, row and
// the rows given out, whether it clears the index whole or slot by slot.
func TestArrayScanMergesDuplicates(t *testing.T) {
	// 40 flows in 64 rows free the index whole; in 1024, slot by slot.
	for _, size := range []uint32{64, 1024} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testScanMergesDuplicates(t, size) })
	}
}

func testScanMergesDuplicates(t *testing.T, size uint32) {
	tb, all := arrayTable(size, 3)
	keys := make([]bpfprog.FlowKey, 40)
	vals := make([]bpfprog.FlowVal, len(keys))
	for i := range keys {
		keys[i] = testKey(uint32(i))
		vals[i] = bpfprog.FlowVal{Packets: uint64(i + 1), Bytes: uint64(100 * (i + 1))}
	}
	if err := tb.insert(all, keys, vals); err != nil {
		t.Fatal(err)
	}
	if got := all[0].State; got != uint64(len(keys)) {
		t.Fatalf("rows given out: %d, want %d", got, len(keys))
	}
	// A row that a CPU took and did not use: zero, skipped.
	all[0].State++
	// A second copy of key 7, in a row of its own that the next free
	// index slot on its probe path names.
	tag := tagOf(&keys[7])
	pos, copies := home(tag, tb.nslots), 0
	for p := 0; p < probes && copies < 2; p++ {
		pos = probe(pos, p, tb.nslots)
		s := tb.index(all, pos)
		switch {
		case *s == 0:
			row := all[0].State
			all[0].State++
			// Crowded: its CPU passed the first copy's slot before it was ready.
			all[tb.rowsAt+int(row)] = slot[bpfprog.FlowKey]{State: rowCrowded | uint64(pos)<<32 | uint64(tag), Key: keys[7], Val: bpfprog.FlowVal{Packets: 1000, Bytes: 5000}}
			*s = row<<32 | uint64(tag) | slotReady
			copies = 2
		case all[tb.rowsAt+link(*s)].Key == keys[7]:
			copies = 1
		}
	}
	if copies != 2 {
		t.Fatal("no free slot for a second copy of key 7")
	}
	rows := tb.scan(all, nil, true)
	if len(rows) != len(keys) {
		t.Fatalf("%d rows, want %d", len(rows), len(keys))
	}
	got := map[flow.Key]flow.Counters{}
	for _, r := range rows {
		got[r.Key] = r.Counters
	}
	for i, k := range keys {
		want := flow.Counters{Packets: vals[i].Packets, Bytes: vals[i].Bytes}
		if i == 7 {
			want.Add(flow.Counters{Packets: 1000, Bytes: 5000})
		}
		if c := got[KeyFromBPF(&k)]; c != want {
			t.Errorf("key %d: %+v, want %+v", i, c, want)
		}
	}
	for i := range all {
		if all[i].State != 0 {
			t.Fatalf("element %d not freed: state %#x", i, all[i].State)
		}
	}
	for pos := range tb.nslots {
		if s := *tb.index(all, pos); s != 0 {
			t.Fatalf("index slot %d not freed: %#x", pos, s)
		}
	}
}

// TestArrayInsertFindsItsKeys: a table filled to its rows finds every key
// again (a second insert adds to its slot, takes no row) and refuses a new
// one once every row is taken; the slots of a table of 2^n rows are
// 2^(n+1), which the probe path of every key covers within 32 probes at
// that fill for the sizes here.
func TestArrayInsertFindsItsKeys(t *testing.T) {
	for _, rows := range []uint32{1, 4, 1000, 131072} {
		tb, all := arrayTable(rows, 3)
		keys := make([]bpfprog.FlowKey, rows)
		vals := make([]bpfprog.FlowVal, rows)
		for i := range keys {
			keys[i] = testKey(uint32(i))
			vals[i] = bpfprog.FlowVal{Packets: 1, Bytes: 60}
		}
		if err := tb.insert(all, keys, vals); err != nil {
			t.Fatalf("%d rows: %v", rows, err)
		}
		if err := tb.insert(all, keys, vals); err != nil {
			t.Fatalf("%d rows, again: %v", rows, err)
		}
		extra := testKey(rows)
		if err := tb.insert(all, []bpfprog.FlowKey{extra}, vals[:1]); err == nil {
			t.Fatalf("%d rows: a new key got a slot in a full table", rows)
		}
		got := tb.scan(all, nil, false)
		if len(got) != int(rows) {
			t.Fatalf("%d rows: scan gave %d", rows, len(got))
		}
		for _, r := range got {
			if r.Counters != (flow.Counters{Packets: 2, Bytes: 120}) {
				t.Fatalf("%d rows: %v has %+v, want 2 packets of 60 bytes", rows, r.Key, r.Counters)
			}
		}
	}
}

// TestSlots: a power of 2 at or above five-fourths of the rows.
func TestSlots(t *testing.T) {
	for rows, want := range map[uint32]uint32{1: 1, 4: 8, 64: 128, 131072: 262144, 1 << 20: 1 << 21, 100000: 131072} {
		if got := Slots(rows); got != want {
			t.Errorf("Slots(%d) = %d, want %d", rows, got, want)
		}
	}
}

// TestHaveAtomics: the probe finds BPF atomics exactly on kernels from
// 5.12, where compare-and-exchange arrived.
func TestHaveAtomics(t *testing.T) {
	bpftest.RequireRoot(t)
	release, err := kernel.Release()
	if err != nil {
		t.Fatal(err)
	}
	got, err := HaveAtomics()
	if err != nil {
		t.Fatal(err)
	}
	if want := !kernel.Before(release, 5, 12); got != want {
		t.Errorf("HaveAtomics() = %v on Linux %s, want %v", got, release, want)
	}
}

// TestSetLayoutNeedsItsConstants: SetLayout writes the layout into the
// object's load-time constants, and an object that lacks one (another
// program's, or an older build's) is refused with its name, for every
// layout, rather than loaded with a layout its code does not follow.
func TestSetLayoutNeedsItsConstants(t *testing.T) {
	for _, name := range []string{bpfprog.TCVarSharedTable, bpfprog.TCVarArraySlots, bpfprog.TCVarArrayBase} {
		for _, layout := range []Layout{Shared, PerCPU, Array} {
			spec, err := bpfprog.LoadTC()
			if err != nil {
				t.Fatal(err)
			}
			delete(spec.Variables, name)
			err = SetLayout(spec, layout)
			needs := name != bpfprog.TCVarArrayBase || layout == Array
			switch {
			case needs && (err == nil || !strings.Contains(err.Error(), name)):
				t.Errorf("%v without %s: err = %v, want one naming it", layout, name, err)
			case !needs && err != nil:
				t.Errorf("%v without %s (which it does not use): %v", layout, name, err)
			}
		}
	}
}

// TestArrayRows: ArrayRows finds the first row and the row count of every
// table that SetLayout lays out, from its element count alone.
func TestArrayRows(t *testing.T) {
	for _, rows := range []uint32{1, 2, 7, 8, 64, 1000, 8192, 100000, 131072, 1 << 20} {
		for _, ncpu := range []int{1, 2, 64, 4096} {
			first, got, err := ArrayRows(arrayElems(rows, uint32(1+ncpu)), ncpu)
			if err != nil {
				t.Fatalf("%d rows, %d CPUs: %v", rows, ncpu, err)
			}
			if want := uint32(1+ncpu) + indexElems(Slots(rows)); first != want || got != rows {
				t.Errorf("%d rows, %d CPUs: first %d and %d rows, want %d and %d", rows, ncpu, first, got, want, rows)
			}
		}
	}
}
