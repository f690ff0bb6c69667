// Package group adds report rows up into aggregates (--group-by): one row
// per distinct value of the chosen fields, its packets and bytes the sums
// of the rows in it, every other field cleared. It runs in user space on
// the rows of a drain (after the owners are named), before ranking and
// --top, so the kernel's flow table and the exact totals are unchanged.
package group

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Field is one field rows can be grouped by.
type Field uint16

// The fields, in the order of --group-by's help and of By.String.
const (
	Src       Field = 1 << iota // source address
	Dst                         // destination address
	SPort                       // source port (TCP, UDP, SCTP; 0 for the rest)
	DPort                       // destination port (as SPort)
	Proto                       // protocol, as rows name it (IPv4 and IPv6 together)
	Dir                         // direction: in or out
	Iface                       // the interface that saw the traffic
	VLAN                        // outer VLAN ID
	App                         // application protocol (l7)
	PID                         // owner's process ID
	Comm                        // owner's process name
	Cgroup                      // owner's cgroup
	numFields = iota
)

var fieldNames = [numFields]string{"src", "dst", "sport", "dport", "proto", "dir", "iface", "vlan", "app", "pid", "comm", "cgroup"}

// ShowOrder is the order in which a grouped row shows its fields: as an
// ungrouped row does (protocol, l7, addresses, VLAN, direction), then the
// interface and the owner.
var ShowOrder = [numFields]Field{Proto, App, Src, SPort, Dst, DPort, VLAN, Dir, Iface, PID, Comm, Cgroup}

func (f Field) String() string {
	for i := range numFields {
		if f == 1<<i {
			return fieldNames[i]
		}
	}
	return "field(" + strconv.Itoa(int(f)) + ")"
}

// Untrusted reports whether the field's values are names that processes
// or users chose (comm, cgroup, iface), which outputs must escape.
func (f Field) Untrusted() bool { return f == Comm || f == Cgroup || f == Iface }

// By is the set of fields rows are grouped by; the zero By groups nothing
// and leaves every row as it is.
type By uint16

// Owners is the set of owner fields, known only in cgroup and process mode.
const Owners = By(PID | Comm | Cgroup)

// Parse reads a comma-separated list of field names. An unknown or empty
// name is an error that names it; a field listed twice counts once.
func Parse(s string) (By, error) {
	var b By
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		f, ok := fieldNamed(name)
		if !ok {
			if name == "" {
				return 0, fmt.Errorf("empty field in %q: must be a comma-separated list of %s", s, strings.Join(fieldNames[:], ", "))
			}
			return 0, fmt.Errorf("unknown field %q: must be one of %s", name, strings.Join(fieldNames[:], ", "))
		}
		b |= By(f)
	}
	return b, nil
}

func fieldNamed(name string) (Field, bool) {
	for i, n := range fieldNames {
		if strings.EqualFold(n, name) {
			return 1 << i, true
		}
	}
	return 0, false
}

// Has reports whether f is one of b's fields.
func (b By) Has(f Field) bool { return b&By(f) != 0 }

// Fields lists b's fields in ShowOrder.
func (b By) Fields() []Field {
	var out []Field
	for _, f := range ShowOrder {
		if b.Has(f) {
			out = append(out, f)
		}
	}
	return out
}

// Names lists the names of b's fields, in --group-by's order.
func (b By) Names() []string {
	var out []string
	for i := range numFields {
		if b.Has(1 << i) {
			out = append(out, fieldNames[i])
		}
	}
	return out
}

// String is b as --group-by takes it ("src,dport"), or "" for none.
func (b By) String() string { return strings.Join(b.Names(), ",") }

// Key is a group: a row's key and application protocol with every field
// outside the grouping cleared. It is comparable, so it keys a map.
type Key struct {
	flow.Key
	L7 flow.L7
}

// Masker turns rows' keys into their groups. It remembers the owners it
// has cut down, since an owner is interned and making one costs a hash of
// its strings; one Masker serves one goroutine.
type Masker struct {
	by     By
	owners map[flow.Owner]flow.Owner
}

// NewMasker returns a Masker for b.
func NewMasker(b By) *Masker {
	return &Masker{by: b, owners: make(map[flow.Owner]flow.Owner)}
}

// Group returns the group of the row with key k and application protocol
// l7:
//   - proto keeps the protocol as rows name it: an IP protocol over IPv4
//     and over IPv6 is one group (its EtherType is set to IPv4), other
//     EtherTypes are groups of their own;
//   - sport and dport keep the ports of TCP, UDP and SCTP and are 0 for
//     every other row (ICMP's type and code are not ports);
//   - iface keeps the interface's index and name;
//   - app keeps a recognised protocol, and puts the rest in one group;
//   - pid, comm and cgroup keep their part of the owner.
func (m *Masker) Group(k *flow.Key, l7 flow.L7) Key {
	var g Key
	m.GroupTo(&g, k, l7)
	return g
}

// GroupTo is Group writing into g, which saves copying a group where many
// are made.
func (m *Masker) GroupTo(g *Key, k *flow.Key, l7 flow.L7) {
	b := m.by
	*g = Key{}
	if b.Has(Proto) {
		if k.IsIP() {
			g.EtherType, g.Proto = flow.EtherTypeIPv4, k.Proto
		} else {
			g.EtherType = k.EtherType
		}
	}
	if b.Has(Src) {
		g.Src = k.Src
	}
	if b.Has(Dst) {
		g.Dst = k.Dst
	}
	if b&By(SPort|DPort) != 0 && k.HasPorts() {
		if b.Has(SPort) {
			g.SrcPort = k.SrcPort
		}
		if b.Has(DPort) {
			g.DstPort = k.DstPort
		}
	}
	if b.Has(Dir) {
		g.Dir = k.Dir
	}
	if b.Has(VLAN) {
		g.VLAN = k.VLAN
	}
	if b.Has(Iface) {
		g.Ifindex, g.Iface = k.Ifindex, k.Iface
	}
	if b.Has(App) && l7.Known() {
		g.L7 = l7
	}
	g.Owner = m.owner(k.Owner)
}

// owner cuts o down to the owner fields of the grouping.
func (m *Masker) owner(o flow.Owner) flow.Owner {
	switch m.by & Owners {
	case 0:
		return flow.Owner{}
	case Owners:
		return o
	}
	if o.IsZero() {
		return o
	}
	if g, ok := m.owners[o]; ok {
		return g
	}
	info := o.Info()
	if !m.by.Has(PID) {
		info.PID = 0
	}
	if !m.by.Has(Comm) {
		info.Comm = ""
	}
	if !m.by.Has(Cgroup) {
		info.Cgroup = ""
	}
	g := flow.NewOwner(info)
	m.owners[o] = g
	return g
}

// Rows adds rows up by b: one row per group, in the order each group first
// appears, with the sums of its rows' packets and bytes and no rate
// (flow.RankRows and flow.Top set it). It writes the groups over rows,
// whose memory it reuses (the n-th group goes where at least n rows were
// already read), and returns them as rows[:n]. With the zero By it returns
// rows as they are.
func Rows(rows []flow.Flow, b By) []flow.Flow {
	if b == 0 {
		return rows
	}
	m := NewMasker(b)
	var x Index
	x.Reserve(len(rows))
	// Rows go in batches: first every group and hash of the batch, and a
	// read of each hash's slot, so that the CPU fetches the batch's slots
	// from memory at once rather than one miss at a time; then the slots,
	// now in cache, are probed. With a group per row, the misses are most
	// of the cost.
	const batch = 16
	var (
		gs [batch]Key
		hs [batch]uint64
		cs [batch]flow.Counters
		es [batch]bool // flow.Flow.Estimated
	)
	n := 0
	for base := 0; base < len(rows); base += batch {
		k := min(batch, len(rows)-base)
		for i := range k {
			r := &rows[base+i]
			m.GroupTo(&gs[i], &r.Key, r.L7)
			hs[i] = x.hash(&gs[i])
			cs[i] = r.Counters
			es[i] = r.Estimated
		}
		if x.Len() > 1<<14 {
			// Fewer groups' slots stay in the caches anyway.
			x.touch(hs[:k])
		}
		for i := range k {
			g := &gs[i]
			j, added := x.slot(g, hs[i], func(j int) bool { return rows[j].Key == g.Key && rows[j].L7 == g.L7 })
			if !added {
				rows[j].Counters.Add(cs[i])
				rows[j].Estimated = rows[j].Estimated || es[i]
				continue
			}
			rows[n] = flow.Flow{Key: g.Key, L7: g.L7, Counters: cs[i], Estimated: es[i]}
			n++
		}
	}
	return rows[:n]
}

// Text is the value of field f of the grouped row k as the plain report
// and the live table show it, "-" where nothing is known: an address a
// row has none of (non-IP frames), no recognised application protocol, an
// untagged frame, an owner not known. Untrusted fields are returned raw,
// for the caller to escape as its output needs.
func Text(f Field, k *flow.Key, l7 flow.L7) string {
	const none = "-"
	switch f {
	case Src, Dst:
		a := k.Src
		if f == Dst {
			a = k.Dst
		}
		if !a.IsValid() {
			return none
		}
		return a.String()
	case SPort:
		return strconv.Itoa(int(k.SrcPort))
	case DPort:
		return strconv.Itoa(int(k.DstPort))
	case Proto:
		return k.ProtoName()
	case Dir:
		return k.Dir.String()
	case Iface:
		// Rows name their interface only when a run watches several; with
		// one, its index stands for it (there is one group).
		switch {
		case k.Iface != "":
			return k.Iface
		case k.Ifindex != 0:
			return strconv.FormatUint(uint64(k.Ifindex), 10)
		}
		return none
	case VLAN:
		if k.VLAN == 0 {
			return none
		}
		return strconv.Itoa(int(k.VLAN))
	case App:
		if !l7.Known() {
			return none
		}
		return l7.String()
	case PID:
		if pid := k.Owner.Info().PID; pid != 0 {
			return strconv.FormatUint(uint64(pid), 10)
		}
		return none
	case Comm:
		if c := k.Owner.Info().Comm; c != "" {
			return c
		}
		return none
	case Cgroup:
		if c := k.Owner.Info().Cgroup; c != "" {
			return c
		}
		return none
	}
	return none
}
