// Package flow is the pure-Go model of what the kernel counted: flow keys,
// per-CPU counter summing, ranking and rates. It knows nothing of eBPF
// maps, so everything here is tested without privileges.
package flow

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
	"unique"
)

// Flags mark rows whose meaning differs from a plain flow.
type Flags uint8

// The flag values equal the eBPF program's enum flow_flags; a test in
// internal/capture checks them against the generated bindings.
const (
	// Fragment is a non-first IP fragment: it has no L4 header, so no ports.
	Fragment Flags = 1 << 0
	// Malformed means a header was cut short or had an impossible length.
	Malformed Flags = 1 << 1
	// DeepChain means the IPv6 extension-header chain was too deep to follow.
	DeepChain Flags = 1 << 2
)

// Direction is which way a packet went through the hook. The values equal
// the eBPF programs' enum flow_dir.
type Direction uint8

// Directions.
const (
	In  Direction = 0 // received by the watched interface or cgroup
	Out Direction = 1 // sent by it
)

// NumDirections is the number of Direction values.
const NumDirections = 2

func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// EtherTypes that decide how a key is read.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeIPv6 uint16 = 0x86DD
)

// Key identifies one flow in one direction.
type Key struct {
	EtherType uint16     // 0x0800 or 0x86DD for IP; otherwise the frame's EtherType
	Proto     uint8      // IP protocol number; 0 for non-IP frames
	Src, Dst  netip.Addr // invalid (zero) for non-IP frames; ARP's sender and target IPv4 address
	// SrcPort and DstPort hold the protocol's own fields (see HasPorts,
	// IsICMP, SPI, GRE, OSPF, IGMPType and ARPOp): the ports of TCP, UDP
	// and SCTP; ICMP type and code; the high and low half of an ESP or AH
	// SPI; GRE's protocol type and flags; OSPF's type and version; IGMP's
	// type; ARP's opcode.
	SrcPort uint16
	DstPort uint16
	VLAN    uint16 // outer VLAN ID; 0 when untagged
	Flags   Flags
	Dir     Direction
	Owner   Owner // who sent or received it; set only in cgroup mode
	// Ifindex is the interface the hook counted the packet on (TC and
	// XDP); 0 in cgroup and process mode, which see no interface.
	Ifindex uint32
	// Iface names that interface when the run watches several (more than
	// one -i, or -i any), and is empty otherwise: a row shows it only
	// then. A packet forwarded between two watched interfaces counts on
	// each, as ip -s link counts it.
	Iface string
}

// Owner is the process that owns a flow's socket, in the modes that know
// it. The zero Owner means "not known", which is all that TC and XDP see.
// It is a handle to interned details (see NewOwner): one word, which keeps
// a row small when a report holds a million of them, and comparable, so
// that keys stay usable as map keys.
type Owner struct{ h unique.Handle[OwnerInfo] }

// OwnerInfo is what an Owner stands for.
type OwnerInfo struct {
	PID    uint32 // thread-group ID; 0 when unknown
	Comm   string // process name, as the kernel keeps it (at most 15 bytes)
	Cgroup string // path of the socket's cgroup v2 directory
}

// NewOwner returns the Owner of info; equal infos give equal Owners, and
// the zero OwnerInfo gives the zero Owner.
func NewOwner(info OwnerInfo) Owner {
	if info == (OwnerInfo{}) {
		return Owner{}
	}
	return Owner{unique.Make(info)}
}

// Info returns what o stands for: the zero OwnerInfo for the zero Owner.
func (o Owner) Info() OwnerInfo {
	if o.IsZero() {
		return OwnerInfo{}
	}
	return o.h.Value()
}

// IsZero reports whether nothing is known about the owner.
func (o Owner) IsZero() bool { return o == Owner{} }

// String shows what o stands for, as %+v shows an OwnerInfo.
func (o Owner) String() string { return fmt.Sprintf("%+v", o.Info()) }

// IsIP reports whether the key describes an IPv4 or IPv6 packet.
func (k Key) IsIP() bool {
	return k.EtherType == EtherTypeIPv4 || k.EtherType == EtherTypeIPv6
}

// Counters are the packets and bytes of one flow.
type Counters struct {
	Packets uint64
	Bytes   uint64
}

// Add adds o to c.
func (c *Counters) Add(o Counters) {
	c.Packets += o.Packets
	c.Bytes += o.Bytes
}

// Sum adds up the per-CPU slots of one map entry.
func Sum(perCPU []Counters) Counters {
	var total Counters
	for _, c := range perCPU {
		total.Add(c)
	}
	return total
}

// Flow is one row of a report.
type Flow struct {
	Key
	Counters
	Bitrate float64 // bits per second over the report's duration
	// L7 is the application protocol found in the flow's payload, or
	// L7Unknown / L7Unchecked when none was recognised.
	L7 L7
	// Estimated is set when some of the row's packets are estimates: with
	// --read, a GRO super-packet of a connection whose MSS the file does
	// not show, counted as one packet.
	Estimated bool
}

// Bitrate returns the rate in bits per second of bytes sent over d.
func Bitrate(bytes uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds()
}

// Rank turns a table of counters into report rows over the duration d,
// sorted as every report sorts them (see Compare).
func Rank(table map[Key]Counters, d time.Duration) []Flow {
	rows := make([]Flow, 0, len(table))
	for k, c := range table {
		rows = append(rows, Flow{Key: k, Counters: c})
	}
	return RankRows(rows, d)
}

// RankRows sets each row's rate over the duration d and sorts the rows in
// place, as Rank does. The keys must be distinct.
func RankRows(rows []Flow, d time.Duration) []Flow {
	for i := range rows {
		rows[i].Bitrate = Bitrate(rows[i].Bytes, d)
	}
	sortRows(rows)
	return rows
}

// sortRows sorts rows in Compare's order. A row is large, and a
// comparison sort moves each row and calls a comparison about log n times,
// so it sorts a compact index instead: a radix sort by bitrate and then
// packets (non-negative numbers whose bits order like their values), and a
// comparison sort only within runs equal in both, where the bytes and the
// keys decide: large tables have many ties, since every single-packet
// flow of one size has the same bitrate. Then it moves every row once, to
// its place, following the permutation's cycles.
func sortRows(rows []Flow) {
	type entry struct {
		rate, packets uint64 // complemented: ascending order is descending rate, then packets
		at            int    // the row's index; -1 once it is in its place
	}
	idx := make([]entry, len(rows))
	for i := range rows {
		idx[i] = entry{^math.Float64bits(rows[i].Bitrate), ^rows[i].Packets, i}
	}
	// Least significant first: the packets' bytes, then the rate's,
	// skipping bytes that every entry shares.
	tmp := make([]entry, len(idx))
	for pass := range 16 {
		shift := uint(pass%8) * 8
		digit := func(e *entry) byte {
			if pass < 8 {
				return byte(e.packets >> shift)
			}
			return byte(e.rate >> shift)
		}
		var count [257]int
		for i := range idx {
			count[int(digit(&idx[i]))+1]++
		}
		if slices.Contains(count[1:], len(idx)) {
			continue
		}
		for b := 1; b < len(count); b++ {
			count[b] += count[b-1]
		}
		for i := range idx {
			b := digit(&idx[i])
			tmp[count[b]] = idx[i]
			count[b]++
		}
		idx, tmp = tmp, idx
	}
	tmp = nil
	for lo := 0; lo < len(idx); {
		hi := lo + 1
		for hi < len(idx) && idx[hi].rate == idx[lo].rate && idx[hi].packets == idx[lo].packets {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(idx[lo:hi], func(a, b entry) int {
				ra, rb := &rows[a.at], &rows[b.at]
				if c := cmp.Compare(rb.Bytes, ra.Bytes); c != 0 {
					return c
				}
				return CompareKeys(ra.Key, rb.Key)
			})
		}
		lo = hi
	}
	// Place p takes the row at idx[p].at.
	for p := range idx {
		if idx[p].at < 0 {
			continue
		}
		held := rows[p]
		q := p
		for {
			from := idx[q].at
			idx[q].at = -1
			if from == p {
				rows[q] = held
				break
			}
			rows[q] = rows[from]
			q = from
		}
	}
}

// Compare orders rows by bitrate, then packets, then bytes, all descending,
// and then by the key, so that a report is the same from run to run.
//
// Compare and CompareKeys spell out one early return a field rather than
// folding the fields with cmp.Or, which would compare every field of every
// pair a sort visits although the first one mostly decides.
func Compare(a, b Flow) int {
	if c := cmp.Compare(b.Bitrate, a.Bitrate); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
		return c
	}
	return CompareKeys(a.Key, b.Key)
}

// CompareKeys is a total order on keys: by source, destination, protocol,
// ports, VLAN, flags, direction and owner.
func CompareKeys(a, b Key) int {
	if c := a.Src.Compare(b.Src); c != 0 {
		return c
	}
	if c := a.Dst.Compare(b.Dst); c != 0 {
		return c
	}
	if c := cmp.Compare(a.EtherType, b.EtherType); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Proto, b.Proto); c != 0 {
		return c
	}
	if c := cmp.Compare(a.SrcPort, b.SrcPort); c != 0 {
		return c
	}
	if c := cmp.Compare(a.DstPort, b.DstPort); c != 0 {
		return c
	}
	if c := cmp.Compare(a.VLAN, b.VLAN); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Flags, b.Flags); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Dir, b.Dir); c != 0 {
		return c
	}
	return compareOwners(a.Owner, b.Owner)
}

func compareOwners(ao, bo Owner) int {
	if ao == bo {
		return 0
	}
	a, b := ao.Info(), bo.Info()
	if c := cmp.Compare(a.PID, b.PID); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Comm, b.Comm); c != 0 {
		return c
	}
	return cmp.Compare(a.Cgroup, b.Cgroup)
}
