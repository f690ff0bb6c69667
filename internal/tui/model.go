// Package tui is the interactive, full-screen flow table (-g/--tui). It is
// split in two: a pure model (Tracker turns successive readings of the
// kernel table into current per-flow rates; Sort, Filter and the layout
// work on plain slices), and a Bubble Tea program around it that reads the
// table every refresh interval, answers keys and draws only the rows that
// fit on the screen.
package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/untrusted"
)

// Pipe is the drain pipeline (pipeline.Pipeline) as the TUI uses it: the
// TUI's tracker is one of its sinks, and the TUI asks for a drain once
// every refresh interval. A drain that another consumer asks for reaches
// the tracker too.
type Pipe interface {
	Register(pipeline.Sink)
	Drain() (flow.Snapshot, time.Time, error)
}

// Options configure the TUI.
type Options struct {
	Iface string // the watched interface, for the header
	Mode  string // the capture mode, for the header
	// Start is when counting began: the first rates are over the time
	// since then, and the header's run time counts from it.
	Start time.Time
	// Refresh is the time between readings; rates are over it.
	Refresh time.Duration
	// Expire is how long a flow may stay quiet before it leaves the table;
	// 0 keeps quiet flows.
	Expire time.Duration
	// MaxEntries is the kernel table's size: the header warns when it is
	// full.
	MaxEntries uint32
	// MaxFlows caps the flows the table keeps (0: no cap); past it, the
	// flows quiet the longest are forgotten, and the header says so.
	MaxFlows int
	// Owners adds the pid, comm and cgroup columns (flow.Key.Owner), for
	// the modes that know who owns a flow.
	Owners bool
	// GroupBy is the grouping the table starts with (--group-by), and the
	// first the a key cycles to; the zero value shows flows.
	GroupBy group.By

	In  io.Reader // keys; nil means standard input
	Out io.Writer // the terminal; nil means standard output (for NewModel: none)
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Run shows the table until the user quits or ctx ends, and restores the
// terminal. Both are a normal end: nil. Run leaves signals to the caller,
// who should end ctx on SIGINT and SIGTERM; ctrl+c on the terminal is a
// key, and quits.
func Run(ctx context.Context, pipe Pipe, o Options) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	// Signals end ctx (the caller's signal.NotifyContext). Bubble Tea's own
	// handler would race with it: when ctx ends first, the handler blocks
	// forever handing its message to an event loop that is gone, and
	// Run never returns.
	opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithAltScreen(), tea.WithOutput(o.Out), tea.WithoutSignalHandler()}
	if o.In != nil {
		opts = append(opts, tea.WithInput(o.In))
	}
	_, err := tea.NewProgram(NewModel(pipe, o), opts...).Run()
	switch {
	case errors.Is(err, tea.ErrInterrupted):
		return nil
	case errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil:
		return nil
	case err != nil:
		return fmt.Errorf("run tui: %w", err)
	}
	return nil
}

// readingMsg is one reading of the kernel table.
type readingMsg struct {
	snap flow.Snapshot
	at   time.Time
	err  error
}

// drainedMsg says that the drain the model asked for is over: its
// readings, and any other drain's since, wait in the inbox.
type drainedMsg struct{ err error }

// inbox is the TUI's pipeline sink. The pipeline folds on the goroutine
// that drains, while the tracker belongs to the event loop, so the inbox
// keeps each drain (the pipeline lets a sink keep its rows) until the
// event loop takes them and folds them into the tracker, once each.
type inbox struct {
	mu     sync.Mutex
	drains []readingMsg
}

// Fold keeps a drain for the event loop.
func (b *inbox) Fold(s *flow.Snapshot, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drains = append(b.drains, readingMsg{snap: *s, at: at})
}

// take returns the drains kept since the last take, oldest first.
func (b *inbox) take() []readingMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.drains
	b.drains = nil
	return d
}

// totals are the header's numbers as of the shown reading.
type totals struct {
	at             time.Time
	readings       int
	interval       time.Duration
	in, out, lost  Rate
	untracked      flow.Counters
	lostFlows      uint64 // about this many flows had no row in the last interval
	tableSize      int
	active         int
	tableKnownFull bool
	evicted        uint64 // flows forgotten to stay within Options.MaxFlows
}

// styles are the few styles the screen uses, from one renderer so that
// colors follow the output terminal.
type styles struct {
	header, titles, warn, status, paused lipgloss.Style
}

// Model is the Bubble Tea model of the table.
type Model struct {
	pipe  Pipe
	inbox inbox
	o     Options
	tr    *Tracker
	st    styles
	keys  keyMap
	help  help.Model
	input textinput.Model

	sort     SortKey
	reverse  bool
	filter   Filter
	editing  bool
	paused   bool
	showHelp bool
	offset   int
	width    int
	height   int

	active  []*Flow // flows not expired, as of the shown reading
	rows    []*Flow // active rows that pass the filter, in no order
	visible []*Flow // the rows on screen, sorted: rows[offset:offset+body]
	frozen  []Flow  // copies that active points to while paused
	sorter  sorter
	hasL7   bool

	// hasIface is set when rows name their interface (the run watches
	// several): the table then has an iface column.
	hasIface bool

	groupBy group.By // the grouping shown; 0 shows flows
	groups  grouper  // builds the grouped rows from active
	tot     totals
	err     error // the last read error, shown until a read succeeds
}

// NewModel returns the model before its first reading, its tracker
// registered with pipe (nil: none; tests hand it readings themselves).
func NewModel(pipe Pipe, o Options) *Model {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Out == nil {
		o.Out = io.Discard // tests: no terminal, no colors
	}
	o.Iface = untrusted.Visible(o.Iface) // an interface or cgroup name

	r := lipgloss.NewRenderer(o.Out)
	m := &Model{
		pipe: pipe,
		o:    o,
		tr:   NewTracker(o.Start, o.Expire),
		keys: newKeyMap(),
		st: styles{
			header: r.NewStyle().Bold(true),
			titles: r.NewStyle().Bold(true).Reverse(true),
			warn:   r.NewStyle().Bold(true).Foreground(lipgloss.Color("9")),
			status: r.NewStyle().Faint(true),
			paused: r.NewStyle().Bold(true).Reverse(true),
		},
		help:  help.New(),
		input: textinput.New(),
	}
	// Styles from our renderer: the defaults use adaptive colors, which
	// query the terminal's background while Bubble Tea reads its input.
	m.help.Styles = help.Styles{
		ShortKey: r.NewStyle().Bold(true), ShortDesc: r.NewStyle(), ShortSeparator: r.NewStyle().Faint(true),
		Ellipsis: r.NewStyle().Faint(true),
		FullKey:  r.NewStyle().Bold(true), FullDesc: r.NewStyle(), FullSeparator: r.NewStyle().Faint(true),
	}
	m.input.Prompt = "filter: "
	m.input.PromptStyle = r.NewStyle().Bold(true)
	m.input.TextStyle = r.NewStyle()
	m.input.Cursor.Style = r.NewStyle()
	m.input.Cursor.TextStyle = r.NewStyle()
	m.input.Cursor.SetMode(cursor.CursorStatic)
	m.input.CharLimit = 256
	m.tot.at = o.Start
	m.groupBy = o.GroupBy
	m.tr.SetMaxFlows(o.MaxFlows)
	if pipe != nil {
		pipe.Register(&m.inbox)
	}
	return m
}

// Init schedules the first reading, one refresh interval after the start.
func (m *Model) Init() tea.Cmd { return m.nextReading() }

// nextReading drains the table after one refresh interval, off the event
// loop, so keys are answered while a large table is read. The drain
// reaches the tracker through the inbox, stamped by the pipeline with the
// time before the drain, whose first step ends the counting period: a
// drain that takes long (a large table) must not stretch the period that
// the rates divide by.
func (m *Model) nextReading() tea.Cmd {
	pipe := m.pipe
	return tea.Tick(m.o.Refresh, func(time.Time) tea.Msg {
		_, _, err := pipe.Drain()
		return drainedMsg{err: err}
	})
}

// Update answers a message. Whatever may have changed the page, the
// visible rows are found again.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case drainedMsg:
		m.takeInbox(msg.err)
		cmd = m.nextReading()
	case readingMsg:
		m.take(msg)
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		m.input.Width = max(msg.Width-len(m.input.Prompt)-1, 1)
	case tea.KeyMsg:
		cmd = m.key(msg)
	default:
		return m, nil
	}
	m.clamp()
	m.visible = m.sorter.window(m.rows, m.sort, m.reverse, m.offset, m.bodyHeight())
	return m, cmd
}

// takeInbox folds the drains waiting in the inbox (a drain that failed
// part of the way among them), and shows err, the failure of the drain
// the model asked for, if any.
func (m *Model) takeInbox(err error) {
	for _, r := range m.inbox.take() {
		m.take(r)
	}
	if err != nil {
		m.err = err
	}
}

// take applies a reading: the tracker always takes it, so no count is lost
// while paused; the screen shows it unless paused.
func (m *Model) take(msg readingMsg) {
	if msg.err != nil {
		m.err = msg.err
		return
	}
	m.err = nil
	m.tr.Update(msg.snap, msg.at)
	if !m.paused {
		m.publish()
	}
}

// publish shows the tracker's state: active flows and header totals.
func (m *Model) publish() {
	m.frozen = nil
	m.active = m.tr.Active(m.active[:0], m.o.Expire)
	m.hasL7, m.hasIface = false, false
	for _, f := range m.active {
		m.hasL7 = m.hasL7 || f.L7 != ""
		m.hasIface = m.hasIface || f.Key.Iface != ""
		if m.hasL7 && m.hasIface {
			break
		}
	}
	t := m.tr
	m.tot = totals{
		at: t.Last(), readings: t.Readings, interval: t.Interval,
		in: t.In, out: t.Out, lost: t.UntrackedRate, untracked: t.Untracked, lostFlows: t.UntrackedFlows,
		tableSize: t.TableSize, active: len(m.active),
		tableKnownFull: m.o.MaxEntries > 0 && t.TableSize >= int(m.o.MaxEntries),
		evicted:        t.Evicted,
	}
	m.refilter()
}

// freeze copies the shown rows, so that later readings leave them alone.
func (m *Model) freeze() {
	m.frozen = make([]Flow, len(m.active))
	for i, f := range m.active {
		m.frozen[i] = *f
		m.active[i] = &m.frozen[i]
	}
	m.refilter()
}

// refilter rebuilds the shown rows from the active ones.
func (m *Model) refilter() {
	shown := m.active
	if m.groupBy != 0 {
		shown = m.groups.build(m.active, m.groupBy)
	}
	m.rows = m.filter.Apply(append(m.rows[:0], shown...))
	clear(m.rows[len(m.rows):cap(m.rows)])
}

// key answers a key press.
func (m *Model) key(msg tea.KeyMsg) tea.Cmd {
	if m.editing {
		switch {
		case msg.String() == "ctrl+c":
			return tea.Quit
		case key.Matches(msg, m.keys.Accept):
			m.editing = false
			m.input.Blur()
			return nil
		case key.Matches(msg, m.keys.Cancel):
			m.editing = false
			m.input.Blur()
			m.input.SetValue("")
			m.setFilter("")
			return nil
		}
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		m.setFilter(m.input.Value())
		return cmd
	}
	if m.showHelp {
		switch {
		case key.Matches(msg, m.keys.Quit):
			return tea.Quit
		case key.Matches(msg, m.keys.Help), msg.String() == "esc", msg.String() == "enter":
			m.showHelp = false
		}
		return nil
	}
	k := m.keys
	page := max(m.bodyHeight(), 1)
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Up):
		m.scroll(-1)
	case key.Matches(msg, k.Down):
		m.scroll(1)
	case key.Matches(msg, k.PageUp):
		m.scroll(-page)
	case key.Matches(msg, k.PageDown):
		m.scroll(page)
	case key.Matches(msg, k.Home):
		m.offset = 0
	case key.Matches(msg, k.End):
		m.offset = len(m.rows)
	case key.Matches(msg, k.Next):
		m.setSort(m.sort.Next(), false)
	case key.Matches(msg, k.Prev):
		m.setSort(m.sort.Prev(), false)
	case key.Matches(msg, k.Reverse):
		m.setSort(m.sort, !m.reverse)
	case key.Matches(msg, k.Filter):
		m.editing = true
		m.input.CursorEnd()
		return m.input.Focus()
	case key.Matches(msg, k.Clear):
		m.input.SetValue("")
		m.setFilter("")
	case key.Matches(msg, k.Pause):
		m.paused = !m.paused
		if m.paused {
			m.freeze()
		} else {
			m.publish()
		}
	case key.Matches(msg, k.Help):
		m.showHelp = true
	case key.Matches(msg, k.Group):
		m.groupBy = nextGroup(groupCycle(m.o.GroupBy, m.o.Owners, m.severalIfaces()), m.groupBy)
		m.offset = 0
		m.refilter()
	default:
		for s := range numSortKeys {
			if key.Matches(msg, k.SortBy[s]) {
				m.setSort(s, false)
			}
		}
	}
	return nil
}

func (m *Model) setSort(s SortKey, reverse bool) {
	m.sort, m.reverse = s, reverse
}

func (m *Model) setFilter(q string) {
	m.filter = ParseFilter(q)
	m.offset = 0
	m.refilter()
}

func (m *Model) scroll(n int) {
	m.offset = max(m.offset+n, 0)
}

// clamp keeps the offset where the last page is full.
func (m *Model) clamp() {
	m.offset = min(m.offset, len(m.rows)-m.bodyHeight())
	m.offset = max(m.offset, 0)
}

// The screen, top to bottom: two header lines, a warning line when there
// is something to warn about, the column titles, the rows, a status line
// and the help line.
const (
	headerLines = 2
	footerLines = 2
)

func (m *Model) warning() string {
	var parts []string
	if m.err != nil {
		parts = append(parts, "read failed: "+m.err.Error())
	}
	u, full := m.tot.untracked, m.tot.tableKnownFull
	lost := ""
	if u.Packets > 0 {
		lost = fmt.Sprintf("%d packets (%s) in no row", u.Packets, flow.FormatBytes(u.Bytes))
		if m.tot.lost.BPS > 0 {
			lost += fmt.Sprintf(", %s now from about %d flows", flow.FormatBitrate(m.tot.lost.BPS), m.tot.lostFlows)
		}
	}
	// The advice comes before the numbers, so a narrow screen cuts those.
	switch {
	case full && lost != "":
		parts = append(parts, fmt.Sprintf("flow table full (%d/%d), raise --max-entries: %s", m.tot.tableSize, m.o.MaxEntries, lost))
	case full:
		parts = append(parts, fmt.Sprintf("flow table full (%d/%d), raise --max-entries: new flows get no row", m.tot.tableSize, m.o.MaxEntries))
	case lost != "":
		parts = append(parts, "the flow table was full, raise --max-entries: "+lost)
	}
	if m.tot.evicted > 0 {
		parts = append(parts, fmt.Sprintf("%d quiet flows forgotten to keep at most %d", m.tot.evicted, m.o.MaxFlows))
	}
	if len(parts) == 0 {
		return ""
	}
	return "! " + strings.Join(parts, " · ")
}

// bodyHeight is the number of table rows that fit.
func (m *Model) bodyHeight() int {
	h := m.height - headerLines - footerLines - 1
	if m.warning() != "" {
		h--
	}
	return max(h, 0)
}

func (m *Model) sortColumn() colID {
	switch m.sort {
	case SortPPS:
		return colPPS
	case SortPackets:
		return colPackets
	case SortBytes:
		return colBytes
	case SortSource:
		return colSrc
	case SortDestination:
		return colDst
	}
	return colBitrate
}

// View draws the screen. Only the rows that fit are laid out and drawn.
func (m *Model) View() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	if m.showHelp {
		return m.helpView()
	}
	var b strings.Builder
	lines := 0
	put := func(s string) {
		if lines > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
		lines++
	}
	clip := func(s string) string { return ansi.Truncate(s, m.width, "…") }

	up := m.tot.at.Sub(m.o.Start).Round(time.Second)
	table := strconv.Itoa(m.tot.tableSize)
	if m.o.MaxEntries > 0 {
		table += "/" + strconv.FormatUint(uint64(m.o.MaxEntries), 10)
	}
	// The numbers first: a narrow terminal cuts the end, where a cgroup's
	// path can be long.
	head := fmt.Sprintf("mode %s  up %s  flows %d shown, table %s%s  iface %s",
		m.o.Mode, clock(up), m.tot.active, table, groupHeader(m.groupBy, len(m.rows)), m.o.Iface)
	if ansi.StringWidth(head)+len("pktstat-bpf  ") <= m.width {
		head = "pktstat-bpf  " + head
	}
	put(m.st.header.Render(clip(head)))
	put(clip(fmt.Sprintf("in %s %s pps   out %s %s pps   (last %s)",
		flow.FormatBitrate(m.tot.in.BPS), flow.FormatPPS(m.tot.in.PPS),
		flow.FormatBitrate(m.tot.out.BPS), flow.FormatPPS(m.tot.out.PPS),
		m.tot.interval.Round(time.Millisecond))))
	if w := m.warning(); w != "" {
		put(m.st.warn.Render(clip(w)))
	}

	body := m.bodyHeight()
	end := min(m.offset+body, len(m.rows))
	visible := m.visible
	mark := "▼"
	if m.sort.descending() == m.reverse {
		mark = "▲"
	}
	cols := columns(m.o.Owners, m.hasL7, m.hasIface)
	if m.groupBy != 0 {
		cols = groupColumns(m.groupBy)
	}
	t := layoutTable(cols, visible, m.width, m.sortColumn(), mark)
	var lb strings.Builder
	t.line(&lb, t.titles)
	put(m.st.titles.Render(clip(lb.String())))
	for j := range t.cells {
		lb.Reset()
		t.line(&lb, t.cells[j])
		put(clip(lb.String()))
	}
	drawn := len(t.cells)
	if m.tot.readings == 0 && body > 0 {
		put(fmt.Sprintf("waiting for the first reading (every %s)…", m.o.Refresh))
		drawn++
	}
	for ; drawn < body; drawn++ {
		put("")
	}

	if m.editing {
		put(m.input.View())
		put(m.help.ShortHelpView(m.keys.editing()))
		return b.String()
	}
	status := fmt.Sprintf("sort %s %s", m.sort, mark)
	if len(m.rows) > 0 {
		status += fmt.Sprintf(" · rows %d-%d of %d", m.offset+1, end, len(m.rows))
	} else {
		status += " · no rows"
	}
	if !m.filter.Empty() {
		status += fmt.Sprintf(" · filter %q", m.input.Value())
	}
	if m.paused {
		put(m.st.paused.Render("PAUSED") + " " + m.st.status.Render(clip(status)))
	} else {
		put(m.st.status.Render(clip(status)))
	}
	put(m.help.ShortHelpView(m.keys.short()))
	return b.String()
}

// clock renders a duration as h:mm:ss.
func clock(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// helpView is the full help page of the ? key.
func (m *Model) helpView() string {
	expire := "Quiet flows stay in the table (--expire 0)."
	if m.o.Expire > 0 {
		expire = fmt.Sprintf("A flow quiet for %s leaves the table until it sends again.", m.o.Expire)
	}
	text := fmt.Sprintf(`pktstat-bpf: live flows on %[1]s (%[2]s)

Keys
  ↑ ↓  j k       scroll a row           pgup pgdn  scroll a page
  home end  g G  first / last rows      space      pause the screen
  0 1 2 3 4 5    sort by bitrate, packets, bytes, source, destination, pps
  s S  tab       next / previous sort   r          reverse the order
  /              filter: keep rows whose text holds every word typed
                 (protocol, address:port as shown, in/out, pid, comm,
                 cgroup, l7); enter keeps it, esc clears it
  a              group rows: none, --group-by, proto, src, dst, dport
                 (and comm, cgroup where owners are known; iface where
                 rows name their interface)
  q x  ctrl+c    quit                   ?  esc     close this help

Columns
  bitrate, pps   rate over the last refresh (%[3]s), from what the kernel
                 counted in it: a flow that went quiet shows 0
  packets, bytes counted since the start; pausing loses none of them
  dir            "out": sent through %[1]s (egress); "in": received
                 (ingress), as the hook saw it
Header: in and out add up the rows by dir; "table": kernel table rows
used since the last refresh, of its size.
%[4]s`,
		m.o.Iface, m.o.Mode, m.o.Refresh, expire)
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, m.width, "…")
	}
	return strings.Join(lines[:min(len(lines), m.height)], "\n")
}
