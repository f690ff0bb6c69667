package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap holds every key the table answers to.
type keyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding
	SortBy                                [numSortKeys]key.Binding
	SortKeys                              key.Binding // only for the help line
	Next, Prev, Reverse                   key.Binding
	Filter, Clear, Pause, Help, Quit      key.Binding
	Group                                 key.Binding // the next grouping
	// In the filter editor.
	Accept, Cancel key.Binding
}

func newKeyMap() keyMap {
	k := keyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		Home:     key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("home", "top")),
		End:      key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("end", "bottom")),
		SortKeys: key.NewBinding(key.WithKeys("0", "1", "2", "3", "4", "5"), key.WithHelp("0-5", "sort")),
		Next:     key.NewBinding(key.WithKeys("s", "tab"), key.WithHelp("s", "next sort")),
		Prev:     key.NewBinding(key.WithKeys("S", "shift+tab"), key.WithHelp("S", "prev sort")),
		Reverse:  key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reverse")),
		Filter:   key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Clear:    key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
		Pause:    key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "pause")),
		Help:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Group:    key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "group")),
		Quit:     key.NewBinding(key.WithKeys("q", "x", "ctrl+c"), key.WithHelp("q", "quit")),
		Accept:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")),
		Cancel:   key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
	}
	for s := range numSortKeys {
		d := string(rune('0' + s))
		k.SortBy[s] = key.NewBinding(key.WithKeys(d), key.WithHelp(d, "sort by "+s.String()))
	}
	return k
}

// short is the help line, most useful first: it is cut at the width.
func (k keyMap) short() []key.Binding {
	return []key.Binding{k.Quit, k.SortKeys, k.Reverse, k.Filter, k.Pause, k.Help, k.Group, k.Next, k.Up, k.Down, k.PageDown, k.End}
}

// editing is the help line while the filter is typed.
func (k keyMap) editing() []key.Binding {
	return []key.Binding{k.Accept, k.Cancel, key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit"))}
}
