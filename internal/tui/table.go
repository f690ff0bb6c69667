package tui

import (
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/untrusted"
)

// SortKey is the column the table is sorted by.
type SortKey int

// Sort keys, in the order the cycle key walks through them. The digits
// 0-4 select the first five as in pktstat-bpf's TUI; 5 selects pps.
const (
	SortBitrate SortKey = iota
	SortPackets
	SortBytes
	SortSource
	SortDestination
	SortPPS
	numSortKeys
)

func (s SortKey) String() string {
	switch s {
	case SortBitrate:
		return "bitrate"
	case SortPackets:
		return "packets"
	case SortBytes:
		return "bytes"
	case SortSource:
		return "source"
	case SortDestination:
		return "destination"
	case SortPPS:
		return "pps"
	}
	return "sort(" + strconv.Itoa(int(s)) + ")"
}

// Next is the sort key after s in the cycle.
func (s SortKey) Next() SortKey { return (s + 1) % numSortKeys }

// Prev is the sort key before s in the cycle.
func (s SortKey) Prev() SortKey { return (s + numSortKeys - 1) % numSortKeys }

// descending reports whether s puts the biggest first when not reversed:
// the numbers do, the addresses sort ascending.
func (s SortKey) descending() bool { return s != SortSource && s != SortDestination }

// compareAddrPort orders by address, then port.
func compareAddrPort(a netip.Addr, ap uint16, b netip.Addr, bp uint16) int {
	if c := a.Compare(b); c != 0 {
		return c
	}
	return cmp.Compare(ap, bp)
}

// comparator returns the order of s: ties are broken by the other counters
// and finally by the key, so rows never swap places between refreshes
// unless their numbers did. reverse flips the whole order.
//
// The bitrate and packet-rate orders are the same code with the two rates
// swapped; they stay plain field compares, not one function taking the
// fields as arguments, as they run on every refresh's sort of the table.
func comparator(s SortKey, reverse bool) func(a, b *Flow) int {
	var c func(a, b *Flow) int
	switch s {
	case SortBitrate:
		c = func(a, b *Flow) int {
			if r := cmp.Compare(b.Rate.BPS, a.Rate.BPS); r != 0 {
				return r
			}
			if r := cmp.Compare(b.Rate.PPS, a.Rate.PPS); r != 0 {
				return r
			}
			return byTotals(a, b)
		}
	case SortPPS:
		c = func(a, b *Flow) int {
			if r := cmp.Compare(b.Rate.PPS, a.Rate.PPS); r != 0 {
				return r
			}
			if r := cmp.Compare(b.Rate.BPS, a.Rate.BPS); r != 0 {
				return r
			}
			return byTotals(a, b)
		}
	case SortPackets:
		c = byTotals
	case SortBytes:
		c = func(a, b *Flow) int {
			if r := cmp.Compare(b.Total.Bytes, a.Total.Bytes); r != 0 {
				return r
			}
			if r := cmp.Compare(b.Total.Packets, a.Total.Packets); r != 0 {
				return r
			}
			return flow.CompareKeys(a.Key, b.Key)
		}
	case SortSource:
		c = func(a, b *Flow) int {
			if r := compareAddrPort(a.Key.Src, a.Key.SrcPort, b.Key.Src, b.Key.SrcPort); r != 0 {
				return r
			}
			return flow.CompareKeys(a.Key, b.Key)
		}
	case SortDestination:
		c = func(a, b *Flow) int {
			if r := compareAddrPort(a.Key.Dst, a.Key.DstPort, b.Key.Dst, b.Key.DstPort); r != 0 {
				return r
			}
			return flow.CompareKeys(a.Key, b.Key)
		}
	default:
		c = func(a, b *Flow) int { return flow.CompareKeys(a.Key, b.Key) }
	}
	if reverse {
		return func(a, b *Flow) int { return c(b, a) }
	}
	return c
}

// byTotals orders by packets, then bytes, both descending, then by key.
func byTotals(a, b *Flow) int {
	if r := cmp.Compare(b.Total.Packets, a.Total.Packets); r != 0 {
		return r
	}
	if r := cmp.Compare(b.Total.Bytes, a.Total.Bytes); r != 0 {
		return r
	}
	return flow.CompareKeys(a.Key, b.Key)
}

// Sort sorts rows by s; reverse flips the order.
func Sort(rows []*Flow, s SortKey, reverse bool) {
	var st sorter
	st.sort(rows, s, reverse)
}

// sortItem is a row with its sort key packed into three words, so that
// sorting compares adjacent memory instead of following a pointer to each
// row; only rows whose packed keys tie are compared in full.
type sortItem struct {
	a, b, c uint64
	f       *Flow
}

// sorter sorts rows, keeping its buffer from one refresh to the next.
type sorter struct{ items []sortItem }

func (st *sorter) sort(rows []*Flow, s SortKey, reverse bool) {
	items := st.items[:0]
	for _, f := range rows {
		items = append(items, pack(f, s, reverse))
	}
	order := itemOrder(s, reverse)
	slices.SortFunc(items, order)
	for i := range items {
		rows[i] = items[i].f
		items[i].f = nil
	}
	st.items = items
}

// itemOrder compares packed items, and in full where they tie.
func itemOrder(s SortKey, reverse bool) func(x, y sortItem) int {
	full := comparator(s, reverse)
	return func(x, y sortItem) int {
		if x.a != y.a {
			return cmp.Compare(x.a, y.a)
		}
		if x.b != y.b {
			return cmp.Compare(x.b, y.b)
		}
		if x.c != y.c {
			return cmp.Compare(x.c, y.c)
		}
		return full(x.f, y.f)
	}
}

// window returns rows[offset:offset+n] as they would be after Sort, without
// sorting them all: the screen shows a page, and finding the first k of n
// rows with a bounded heap costs about n comparisons, not n log n. Pages
// in the second half are found from the end. rows is left as it was.
func (st *sorter) window(rows []*Flow, s SortKey, reverse bool, offset, n int) []*Flow {
	end := min(offset+n, len(rows))
	if offset < 0 || offset >= end {
		return nil
	}
	order := itemOrder(s, reverse)
	fromEnd := len(rows)-offset < end
	k := end
	if fromEnd {
		// Keep the last len-offset rows: the heap's top is the smallest.
		k = len(rows) - offset
		rev := order
		order = func(x, y sortItem) int { return rev(y, x) }
	}
	// A heap whose top is the greatest of the k least items seen so far.
	h := st.items[:0]
	for _, f := range rows {
		it := pack(f, s, reverse)
		if len(h) < k {
			h = append(h, it)
			siftUp(h, len(h)-1, order)
			continue
		}
		if order(it, h[0]) < 0 {
			h[0] = it
			siftDown(h, 0, order)
		}
	}
	buf := h
	slices.SortFunc(h, order)
	if fromEnd {
		slices.Reverse(h)
		h = h[:end-offset]
	} else {
		h = h[offset:end]
	}
	out := make([]*Flow, len(h))
	for i := range h {
		out[i] = h[i].f
	}
	clear(buf)
	st.items = buf[:0]
	return out
}

// siftUp and siftDown keep h a max-heap under order.
func siftUp(h []sortItem, i int, order func(x, y sortItem) int) {
	for i > 0 {
		p := (i - 1) / 2
		if order(h[p], h[i]) >= 0 {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func siftDown(h []sortItem, i int, order func(x, y sortItem) int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		big := l
		if r := l + 1; r < len(h) && order(h[r], h[l]) > 0 {
			big = r
		}
		if order(h[i], h[big]) >= 0 {
			return
		}
		h[i], h[big] = h[big], h[i]
		i = big
	}
}

// pack encodes the leading fields of comparator(s, reverse) as three words
// that sort ascending in the same order. Rates are never negative, and the
// bits of non-negative floats sort as the floats do; descending keys are
// bit-inverted.
func pack(f *Flow, s SortKey, reverse bool) sortItem {
	it := sortItem{f: f}
	switch s {
	case SortBitrate:
		it.a, it.b, it.c = math.Float64bits(f.Rate.BPS), math.Float64bits(f.Rate.PPS), f.Total.Packets
	case SortPPS:
		it.a, it.b, it.c = math.Float64bits(f.Rate.PPS), math.Float64bits(f.Rate.BPS), f.Total.Packets
	case SortPackets:
		it.a, it.b = f.Total.Packets, f.Total.Bytes
	case SortBytes:
		it.a, it.b = f.Total.Bytes, f.Total.Packets
	case SortSource:
		it.a, it.b, it.c = packAddrPort(f.Key.Src, f.Key.SrcPort)
	case SortDestination:
		it.a, it.b, it.c = packAddrPort(f.Key.Dst, f.Key.DstPort)
	}
	if s.descending() != reverse {
		it.a, it.b, it.c = ^it.a, ^it.b, ^it.c
	}
	return it
}

// packAddrPort encodes an address and port in netip.Addr.Compare's order:
// the family (invalid, IPv4, IPv6) in the top two bits, then the 128-bit
// address, then the port.
func packAddrPort(a netip.Addr, port uint16) (x, y, z uint64) {
	var fam uint64
	switch {
	case a.Is4():
		fam = 1
	case a.Is6():
		fam = 2
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	return fam<<62 | hi>>2, hi<<62 | lo>>2, (lo&3)<<16 | uint64(port)
}

// Filter is a parsed filter: the row must contain every term, ignoring case.
type Filter struct{ terms []string }

// ParseFilter splits q into terms at white space.
func ParseFilter(q string) Filter {
	return Filter{terms: strings.Fields(strings.ToLower(q))}
}

// Empty reports whether the filter keeps every row.
func (f Filter) Empty() bool { return len(f.terms) == 0 }

// Match reports whether the row's text holds every term. The text is what
// the row shows apart from its numbers: protocol, addresses and ports as
// displayed ("198.18.0.1:9001", "[2001:2::1]:443"), direction ("in",
// "out"), and pid, comm, cgroup and l7 when known.
func (f Filter) Match(r *Flow) bool {
	if len(f.terms) == 0 {
		return true
	}
	s := r.searchText()
	for _, t := range f.terms {
		if !strings.Contains(s, t) {
			return false
		}
	}
	return true
}

// Apply keeps the rows that match, in place, and returns them.
func (f Filter) Apply(rows []*Flow) []*Flow {
	if f.Empty() {
		return rows
	}
	out := rows[:0]
	for _, r := range rows {
		if f.Match(r) {
			out = append(out, r)
		}
	}
	clear(rows[len(out):])
	return out
}

func (r *Flow) searchText() string {
	if r.search == "" && r.group != 0 {
		setGroupText(r)
	}
	if r.search == "" {
		r.fillText()
		var b strings.Builder
		o := r.Key.Owner.Info()
		for _, s := range []string{r.proto, r.src, r.dst, r.Direction(), untrusted.Visible(o.Comm), untrusted.Visible(o.Cgroup), r.L7} {
			b.WriteString(s)
			b.WriteByte(' ')
		}
		if o.PID != 0 {
			b.WriteString(strconv.FormatUint(uint64(o.PID), 10))
		}
		r.search = strings.ToLower(b.String())
	}
	return r.search
}

// Direction is "out" for traffic this host sent, "in" for the rest.
func (r *Flow) Direction() string {
	if r.Out {
		return "out"
	}
	return "in"
}

// fillText builds the display text of the key once.
func (r *Flow) fillText() {
	if r.proto != "" {
		return
	}
	if r.group != 0 {
		setGroupText(r)
		return
	}
	k := r.Key
	p := k.ProtoName()
	if k.IsICMP() {
		p += " " + strconv.Itoa(int(k.SrcPort)) + "/" + strconv.Itoa(int(k.DstPort))
	}
	if k.VLAN != 0 {
		p += " vlan " + strconv.Itoa(int(k.VLAN))
	}
	if k.Flags&flow.Fragment != 0 {
		p += " frag"
	}
	if k.Flags&flow.DeepChain != 0 {
		p += " deep"
	}
	if k.Flags&flow.Malformed != 0 {
		p += " malformed"
	}
	r.proto = p
	switch {
	case k.HasPorts():
		r.src = netip.AddrPortFrom(k.Src, k.SrcPort).String()
		r.dst = netip.AddrPortFrom(k.Dst, k.DstPort).String()
	case k.IsIP():
		r.src, r.dst = k.Src.String(), k.Dst.String()
	default:
		r.src, r.dst = "-", "-"
	}
}
