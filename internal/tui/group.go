package tui

import (
	"strconv"
	"strings"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
	"github.com/pktstat-bpf/pktstat-bpf/internal/untrusted"
)

// The live table groups its rows as --group-by groups a report's: each
// row adds up the flows of one group, their totals and their current
// rates, and shows only the fields of the grouping. The tracker still
// keeps flows, so a change of grouping (the a key) shows the new grouping
// at once, with the rates of the last refresh.

// groupCycle is the order in which the a key walks through groupings:
// none, the --group-by of the command line, then presets that answer
// "who is busy" at a glance (protocol, source and destination address,
// destination port; in the modes that know owners process name and
// cgroup; the interface where rows name theirs), each once.
func groupCycle(given group.By, owners, ifaces bool) []group.By {
	cycle := []group.By{0}
	add := func(b group.By) {
		for _, c := range cycle {
			if c == b {
				return
			}
		}
		cycle = append(cycle, b)
	}
	add(given)
	for _, f := range []group.Field{group.Proto, group.Src, group.Dst, group.DPort} {
		add(group.By(f))
	}
	if owners {
		add(group.By(group.Comm))
		add(group.By(group.Cgroup))
	}
	if ifaces {
		add(group.By(group.Iface))
	}
	return cycle
}

// severalIfaces reports whether the shown flows name their interfaces,
// which they do when the run watches several.
func (m *Model) severalIfaces() bool {
	for _, f := range m.active {
		if f.Key.Iface != "" {
			return true
		}
	}
	return false
}

// nextGroup is the grouping after b in the cycle.
func nextGroup(cycle []group.By, b group.By) group.By {
	for i, c := range cycle {
		if c == b {
			return cycle[(i+1)%len(cycle)]
		}
	}
	return cycle[0]
}

// grouper builds the grouped rows, keeping its memory from one refresh
// to the next.
type grouper struct {
	rows  []Flow
	keys  []group.Key
	index group.Index
	out   []*Flow
	l7s   map[string]flow.L7 // the tracker keeps a protocol's name
}

// build groups the flows by b and returns the groups, which stay valid
// until the next build.
func (g *grouper) build(flows []*Flow, b group.By) []*Flow {
	if g.l7s == nil {
		g.l7s = make(map[string]flow.L7)
		for _, l := range flow.L7s() {
			g.l7s[l.String()] = l
		}
	}
	m := group.NewMasker(b)
	g.index.Reset()
	g.index.Reserve(len(flows))
	clear(g.rows)
	g.rows, g.keys = g.rows[:0], g.keys[:0]
	for _, f := range flows {
		var l7 flow.L7
		if b.Has(group.App) {
			l7 = g.l7s[f.L7]
		}
		k := m.Group(&f.Key, l7)
		j, added := g.index.Slot(&k, func(j int) bool { return g.keys[j] == k })
		if added {
			g.keys = append(g.keys, k)
			// The text waits until the row is drawn or filtered (setGroupText).
			r := Flow{Key: k.Key, Out: k.Dir == flow.Out, group: b, groupL7: k.L7}
			if b.Has(group.App) {
				r.L7 = group.Text(group.App, &k.Key, k.L7)
			}
			g.rows = append(g.rows, r)
		}
		r := &g.rows[j]
		r.Total.Add(f.Total)
		r.Rate.BPS += f.Rate.BPS
		r.Rate.PPS += f.Rate.PPS
		if f.LastActive.After(r.LastActive) {
			r.LastActive = f.LastActive
		}
	}
	clear(g.out)
	g.out = g.out[:0]
	for j := range g.rows {
		g.out = append(g.out, &g.rows[j])
	}
	return g.out
}

// setGroupText fills a group's display and search text: the fields of the
// grouping, "-" where a group has no value (see group.Text).
func setGroupText(r *Flow) {
	b, l7 := r.group, r.groupL7
	text := func(f group.Field) string {
		if !b.Has(f) {
			return ""
		}
		s := group.Text(f, &r.Key, l7)
		if f.Untrusted() {
			s = untrusted.Visible(s)
		}
		return s
	}
	r.proto, r.src, r.dst = text(group.Proto), text(group.Src), text(group.Dst)
	// The row shows nothing else of the key: fillText must not fill it.
	if r.proto == "" {
		r.proto = " "
	}
	var words []string
	for _, f := range b.Fields() {
		words = append(words, text(f))
	}
	r.search = strings.ToLower(strings.Join(words, " "))
}

// groupColumns are the table's columns for grouped rows: the rates and
// counters, then a column per field of the grouping.
func groupColumns(b group.By) []column {
	cols := []column{
		{id: colBitrate, title: "bitrate", right: true},
		{id: colPPS, title: "pps", right: true, drop: 4},
		{id: colPackets, title: "packets", right: true, drop: 5},
		{id: colBytes, title: "bytes", right: true, drop: 6},
	}
	for _, f := range b.Fields() {
		switch f {
		case group.Proto:
			cols = append(cols, column{id: colProto, title: "proto", flex: true, min: 5})
		case group.App:
			cols = append(cols, column{id: colL7, title: "l7", flex: true, min: 4})
		case group.Src:
			cols = append(cols, column{id: colSrc, title: "source", flex: true, min: 12, cutLeft: true})
		case group.SPort:
			cols = append(cols, column{id: colSport, title: "sport", right: true})
		case group.Dst:
			cols = append(cols, column{id: colDst, title: "destination", flex: true, min: 12, cutLeft: true})
		case group.DPort:
			cols = append(cols, column{id: colDport, title: "dport", right: true})
		case group.VLAN:
			cols = append(cols, column{id: colVLAN, title: "vlan", right: true})
		case group.Dir:
			cols = append(cols, column{id: colDir, title: "dir"})
		case group.Iface:
			cols = append(cols, column{id: colGroupIface, title: "iface", flex: true, min: 5})
		case group.PID:
			cols = append(cols, column{id: colPID, title: "pid", right: true})
		case group.Comm:
			cols = append(cols, column{id: colComm, title: "comm", flex: true, min: 6})
		case group.Cgroup:
			cols = append(cols, column{id: colCgroup, title: "cgroup", flex: true, min: 8, cutLeft: true})
		}
	}
	return cols
}

// groupCell is the text of the columns only grouped rows have.
func groupCell(r *Flow, id colID) string {
	switch id {
	case colSport:
		return strconv.Itoa(int(r.Key.SrcPort))
	case colDport:
		return strconv.Itoa(int(r.Key.DstPort))
	case colVLAN:
		return group.Text(group.VLAN, &r.Key, 0)
	case colGroupIface:
		return untrusted.Visible(group.Text(group.Iface, &r.Key, 0))
	}
	return ""
}

// groupHeader is the header's note of the grouping, "" for none.
func groupHeader(b group.By, groups int) string {
	if b == 0 {
		return ""
	}
	return "  group " + b.String() + ": " + strconv.Itoa(groups)
}
