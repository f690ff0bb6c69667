package tui

import (
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/untrusted"
)

// colID names a table column.
type colID int

const (
	colBitrate colID = iota
	colPPS
	colPackets
	colBytes
	colProto
	colSrc
	colDst
	colDir
	colL7
	colPID
	colComm
	colCgroup
	// Only grouped rows (group.go).
	colSport
	colDport
	colVLAN
	colGroupIface
	colIface // only when the run watches several interfaces
)

// column describes how a column is laid out.
type column struct {
	id    colID
	title string
	right bool // right-aligned (numbers)
	// flex columns may shrink below their content down to min, with the
	// cut text marked by an ellipsis; the others always show in full.
	flex bool
	min  int
	// drop orders which columns a narrow terminal gives up first, highest
	// first; 0 never. Columns with drop >= softDrop go before any address
	// is cut short.
	drop int
	// cutLeft cuts text at its start, keeping the end: addresses keep
	// their port.
	cutLeft bool
}

const softDrop = 6

// columns are the table's columns for the mode: pid, comm and cgroup in
// the modes that know a flow's owner, l7 when any row knows it, iface
// when rows name their interface (several interfaces watched).
func columns(owners, l7, iface bool) []column {
	cols := []column{
		{id: colBitrate, title: "bitrate", right: true},
		{id: colPPS, title: "pps", right: true, drop: 4},
		{id: colPackets, title: "packets", right: true, drop: 5},
		{id: colBytes, title: "bytes", right: true, drop: 6},
		{id: colProto, title: "proto", flex: true, min: 5},
		{id: colSrc, title: "source", flex: true, min: 12, cutLeft: true},
		{id: colDst, title: "destination", flex: true, min: 12, cutLeft: true},
		{id: colDir, title: "dir", drop: 7},
	}
	if iface {
		cols = append(cols, column{id: colIface, title: "iface", flex: true, min: 5, drop: 5})
	}
	if l7 {
		cols = append(cols, column{id: colL7, title: "l7", flex: true, min: 4, drop: 3})
	}
	if owners {
		cols = append(cols,
			column{id: colPID, title: "pid", right: true, drop: 2},
			column{id: colComm, title: "comm", flex: true, min: 6, drop: 1},
			column{id: colCgroup, title: "cgroup", flex: true, min: 8, drop: 8, cutLeft: true})
	}
	return cols
}

// cell is the text of one cell.
func cell(r *Flow, id colID) string {
	switch id {
	case colBitrate:
		return flow.FormatBitrate(r.Rate.BPS)
	case colPPS:
		return flow.FormatPPS(r.Rate.PPS)
	case colPackets:
		return strconv.FormatUint(r.Total.Packets, 10)
	case colBytes:
		return strconv.FormatUint(r.Total.Bytes, 10)
	case colProto:
		r.fillText()
		return r.proto
	case colSrc:
		r.fillText()
		return r.src
	case colDst:
		r.fillText()
		return r.dst
	case colDir:
		return r.Direction()
	case colL7:
		return r.L7
	case colPID:
		if pid := r.Key.Owner.Info().PID; pid != 0 {
			return strconv.FormatUint(uint64(pid), 10)
		}
		return ""
	case colComm:
		return untrusted.Visible(r.Key.Owner.Info().Comm)
	case colCgroup:
		return untrusted.Visible(r.Key.Owner.Info().Cgroup)
	case colIface:
		return untrusted.Visible(r.Key.Iface)
	}
	return groupCell(r, id)
}

// table is the laid-out visible part of the table.
type table struct {
	cols   []column
	widths []int
	gap    int
	titles []string   // per column
	cells  [][]string // per visible row, per column
}

// layoutTable lays out cols for rows (only the visible ones) in width
// cells. title adds a mark to the sort column's title.
func layoutTable(cols []column, rows []*Flow, width int, sortCol colID, mark string) table {
	t := table{cols: cols, gap: 2}
	t.titles = make([]string, len(cols))
	for i, c := range cols {
		t.titles[i] = c.title
		if c.id == sortCol {
			t.titles[i] += mark
		}
	}
	t.cells = make([][]string, len(rows))
	for j, r := range rows {
		t.cells[j] = make([]string, len(cols))
		for i, c := range cols {
			t.cells[j][i] = cell(r, c.id)
		}
	}
	natural := make([]int, len(cols))
	for i := range cols {
		w := ansi.StringWidth(t.titles[i])
		for j := range rows {
			w = max(w, ansi.StringWidth(t.cells[j][i]))
		}
		natural[i] = w
	}
	keep := make([]bool, len(cols))
	for i := range keep {
		keep[i] = true
	}
	total := func(widths []int) int {
		n, sum := 0, 0
		for i, w := range widths {
			if keep[i] {
				n++
				sum += w
			}
		}
		return sum + max(n-1, 0)*t.gap
	}
	// dropOne drops the kept column with the highest drop rank at least
	// floor, and reports whether there was one.
	dropOne := func(floor int) bool {
		best := -1
		for i, c := range cols {
			if keep[i] && c.drop >= floor && c.drop > 0 && (best < 0 || c.drop > cols[best].drop) {
				best = i
			}
		}
		if best < 0 {
			return false
		}
		keep[best] = false
		return true
	}
	widths := append([]int(nil), natural...)
	if total(widths) > width {
		t.gap = 1
	}
	for total(widths) > width && dropOne(softDrop) {
	}
	// A column dropped early may fit again once a wider one is gone.
	for i := range cols {
		if keep[i] {
			continue
		}
		keep[i] = true
		if total(widths) > width {
			keep[i] = false
		}
	}
	// floor is how far a flex column may shrink: its minimum, or, while
	// soft, an address no narrower than a whole IPv4 address and port, so
	// that a name or a path is cut before an address that could be
	// misread once cut.
	floor := func(i int, soft bool) int {
		c := cols[i]
		if soft && c.cutLeft && c.id != colCgroup {
			return max(c.min, min(natural[i], len("255.255.255.255:65535")))
		}
		return c.min
	}
	shrink := func(soft bool) {
		// Take a cell at a time from the widest flex column still above
		// its floor.
		for total(widths) > width {
			best := -1
			for i, c := range cols {
				if keep[i] && c.flex && widths[i] > floor(i, soft) && (best < 0 || widths[i] > widths[best]) {
					best = i
				}
			}
			if best < 0 {
				return
			}
			widths[best]--
		}
	}
	shrink(true)
	shrink(false)
	for total(widths) > width && dropOne(1) {
		shrink(true)
		shrink(false)
	}
	for i := range cols {
		if keep[i] {
			t.widths = append(t.widths, widths[i])
		}
	}
	// Compact the kept columns.
	k := 0
	for i := range cols {
		if !keep[i] {
			continue
		}
		t.cols[k] = cols[i]
		t.titles[k] = t.titles[i]
		for j := range t.cells {
			t.cells[j][k] = t.cells[j][i]
		}
		k++
	}
	t.cols, t.titles = t.cols[:k], t.titles[:k]
	for j := range t.cells {
		t.cells[j] = t.cells[j][:k]
	}
	return t
}

// line renders one row of texts, each padded or cut to its column.
func (t *table) line(b *strings.Builder, texts []string) {
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(strings.Repeat(" ", t.gap))
		}
		b.WriteString(fit(texts[i], t.widths[i], c.right, c.cutLeft))
	}
}

// fit pads s to exactly w cells, or cuts it with an ellipsis.
func fit(s string, w int, right, cutLeft bool) string {
	sw := ansi.StringWidth(s)
	if sw > w {
		if w <= 0 {
			return ""
		}
		if cutLeft {
			return ansi.TruncateLeft(s, sw-w+1, "…")
		}
		return ansi.Truncate(s, w, "…")
	}
	pad := strings.Repeat(" ", w-sw)
	if right {
		return pad + s
	}
	return s + pad
}
