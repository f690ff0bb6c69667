// Package flowtable owns the kernel's double-buffered flow table: sizing
// it, swapping its two tables, and draining the retired one in batches,
// with the traffic that found it full and the sketch of that traffic's
// flows. A drain returns every count since the previous drain, exactly
// once. Every capture mode's table has this layout (bpf/include/account.h).
package flowtable

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// batchSize is how many flows one batch syscall moves.
const batchSize = 4096

// Table reads the kernel's flow tables (see bpf/include/account.h). The
// programs write into the table that the slot map points at; a drain puts
// the spare table into the slot, and the kernel returns from that update
// only once no program can still be writing the retired one.
//
// K is the table's key type as bpf2go generated it: bpfprog.FlowKey for
// TC and XDP, bpfprog.OwnedFlowKey for cgroup and process mode; conv
// turns one into the model's key. Every object's counters and untracked
// sketch have the same layout (bpfprog.FlowVal, bpfprog.HLL).
type Table[K comparable] struct {
	conv      func(*K) flow.Key
	slot      *ebpf.Map    // flow_tables: entry 0 is the active table
	tables    [2]*ebpf.Map // tables[active] is in the slot
	slots     [2][]slot[K] // the tables mapped into memory, in the array layout; nil otherwise
	base      int          // an array table's index's first element; those before hold its rows given out
	rowsAt    int          // an array table's first row
	nslots    int          // an array table's index slots
	active    int
	untracked *ebpf.Map
	hll       *ebpf.Map
	filtered  *ebpf.Map      // what the filter dropped, by generation; may be nil
	cache     *ebpf.Map      // flow_cache, both generations; nil without a cache
	cacheBits uint32         // the cache's size: 2^cacheBits entries per generation
	entries   int            // the most rows the table holds (--max-entries)
	gen       *ebpf.Variable // untracked_gen: the generation of untracked and hll the programs add to
	genValue  uint32
	ncpu      int // values per entry: 1 when shared, a CPU's each when per-CPU

	// Rows in the previous drain, to size the next.
	lastRows int

	// The application protocols of the previous drain's rows (see keepL7).
	labels map[flow.Key]flow.L7

	// Batch buffers, reused by every drain.
	keys     []K
	vals     []bpfprog.FlowVal
	hlls     []bpfprog.HLL
	lostVals []bpfprog.FlowVal
	// Cache buffers: a generation's slot numbers, its every slot on every
	// CPU, and zero values for every slot, to clear the used ones with.
	cacheKeys []uint32
	cacheVals []bpfprog.FlowCacheEntry
	cacheZero []bpfprog.FlowCacheEntry
	// cacheBySlot: the kernel has no batch operations on per-CPU arrays
	// (Linux 5.10), so the cache is read and cleared a slot at a time.
	cacheBySlot bool
}

// Layout is how the flow table keeps a flow's counters (array_slots and
// shared_table in bpf/include/account.h).
type Layout uint8

const (
	// Default is the layout the tool uses: Array where the kernel has
	// the BPF atomics it needs (Linux 5.12), Shared before.
	Default Layout = iota
	// Array keeps one slot per flow in an open-addressing array that
	// every CPU adds to with atomic instructions, and that Go reads
	// through a memory mapping: memory and drains that do not grow with
	// the number of CPUs, and a drain without a system call per row.
	Array
	// Shared keeps one value per flow in a hash map that every CPU adds
	// to with atomic instructions: memory and drains that do not grow with
	// the number of CPUs.
	Shared
	// PerCPU keeps a value per flow on every CPU, which only that CPU
	// writes: plain adds, but memory and drains that grow with the CPUs.
	PerCPU
)

func (l Layout) String() string {
	switch l {
	case Array:
		return "array"
	case Shared:
		return "shared"
	case PerCPU:
		return "per-CPU"
	}
	return "default"
}

// Resolve turns Default into the layout this kernel gets: Array when it
// has the BPF atomics the array table claims slots with, Shared before
// (docs/performance.md#flow-table). Other layouts stay as they are.
func Resolve(l Layout) (Layout, error) {
	if l != Default {
		return l, nil
	}
	ok, err := HaveAtomics()
	if err != nil {
		return 0, err
	}
	if ok {
		return Array, nil
	}
	return Shared, nil
}

// Size sets the flow table of spec to entries flows. The slot
// takes only tables that match its template exactly, so the template
// gets the same size. Every object names these maps alike.
func Size(spec *ebpf.CollectionSpec, entries uint32) {
	spec.Maps[bpfprog.TCMapFlows].MaxEntries = entries
	spec.Maps[bpfprog.TCMapFlowTables].InnerMap.MaxEntries = entries
}

// SetLayout makes the flow table of spec, its slot's template and the
// programs' adds follow layout, which Resolve has settled (not Default).
// Call it after Size: an array table has Slots(entries) index slots.
func SetLayout(spec *ebpf.CollectionSpec, layout Layout) error {
	flows, tmpl := spec.Maps[bpfprog.TCMapFlows], spec.Maps[bpfprog.TCMapFlowTables].InnerMap
	var slots uint32
	switch layout {
	case Shared:
	case PerCPU:
		flows.Type, tmpl.Type = ebpf.PerCPUHash, ebpf.PerCPUHash
	case Array:
		ncpu, err := ebpf.PossibleCPU()
		if err != nil {
			return fmt.Errorf("count possible CPUs: %w", err)
		}
		rows := flows.MaxEntries
		slots = Slots(rows)
		base := uint32(1 + ncpu)
		for _, m := range []*ebpf.MapSpec{flows, tmpl} {
			m.Type, m.Flags, m.MaxEntries = ebpf.Array, unix.BPF_F_MMAPABLE, arrayElems(rows, base)
			m.ValueSize = slotSize(m.KeySize)
			m.KeySize, m.Key, m.Value = 4, nil, nil
		}
		for name, v := range map[string]uint32{bpfprog.TCVarArrayBase: base, bpfprog.TCVarArrayRows: rows} {
			if err := setVar(spec, name, v); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("set the flow table's layout: %v is not resolved", layout)
	}
	shared := uint32(1)
	if layout == PerCPU {
		shared = 0
	}
	if err := setVar(spec, bpfprog.TCVarSharedTable, shared); err != nil {
		return err
	}
	return setVar(spec, bpfprog.TCVarArraySlots, slots)
}

// setVar sets one of the layout's load-time constants, which every object
// with a flow table declares; an object without it is not one of ours.
func setVar(spec *ebpf.CollectionSpec, name string, v uint32) error {
	vs, ok := spec.Variables[name]
	if !ok {
		return fmt.Errorf("set the flow table's layout: the object has no %s", name)
	}
	if err := vs.Set(v); err != nil {
		return fmt.Errorf("set the flow table's layout: %s: %w", name, err)
	}
	return nil
}

// Maps are the loaded maps a table works on.
type Maps struct {
	Slot, Flows, Untracked, HLL *ebpf.Map
	Gen                         *ebpf.Variable // untracked_gen
	// Rows is array_rows, the most rows an array table gives out
	// (--max-entries).
	Rows *ebpf.Variable
	// Cache is the flow cache of the objects that have one (TC and XDP,
	// whose key is bpfprog.FlowKey): flow_cache, whose generation g's
	// slots are the entries from g * 2^flow_cache_bits (SizeCache).
	Cache *ebpf.Map
	// Filtered is what the filter dropped, by generation
	// (bpf/include/filter.h); nil in objects without it.
	Filtered *ebpf.Map
}

// New takes the loaded maps and creates the spare table from spec,
// the flows map's spec.
func New[K comparable](m Maps, spec *ebpf.MapSpec, conv func(*K) flow.Key) (*Table[K], error) {
	spare, err := ebpf.NewMap(spec)
	if err != nil {
		return nil, fmt.Errorf("create spare flow table: %w", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		spare.Close()
		return nil, fmt.Errorf("count possible CPUs: %w", err)
	}
	// The untracked counters and sketch are always per CPU.
	vals := 1
	if m.Flows.Type() == ebpf.PerCPUHash {
		vals = ncpu
	}
	var slots [2][]slot[K]
	var rows uint32 // an array table's (array_rows)
	if m.Flows.Type() == ebpf.Array {
		if m.Rows == nil {
			err = errors.New("no array_rows")
		} else {
			err = m.Rows.Get(&rows)
		}
		if err != nil {
			spare.Close()
			return nil, fmt.Errorf("read the array flow table's size: %w", err)
		}
		if want := arrayElems(rows, uint32(1+ncpu)); m.Flows.MaxEntries() != want {
			spare.Close()
			return nil, fmt.Errorf("the array flow table has %d elements, not %d for %d rows", m.Flows.MaxEntries(), want, rows)
		}
		for i, tb := range []*ebpf.Map{m.Flows, spare} {
			if slots[i], err = mapSlots[K](tb); err != nil {
				_ = unmapSlots(slots[0])
				spare.Close()
				return nil, err
			}
		}
	}
	t := &Table[K]{
		conv:      conv,
		slot:      m.Slot,
		tables:    [2]*ebpf.Map{m.Flows, spare},
		slots:     slots,
		untracked: m.Untracked,
		hll:       m.HLL,
		filtered:  m.Filtered,
		gen:       m.Gen,
		ncpu:      vals,
		keys:      make([]K, batchSize),
		vals:      make([]bpfprog.FlowVal, batchSize*vals),
		hlls:      make([]bpfprog.HLL, ncpu),
		lostVals:  make([]bpfprog.FlowVal, ncpu),
		cache:     m.Cache,
		entries:   int(spec.MaxEntries),
	}
	if slots[0] != nil {
		t.layArray(rows, 1+ncpu)
	}
	if m.Cache != nil {
		if _, ok := any(new(K)).(*bpfprog.FlowKey); !ok {
			t.Close()
			return nil, fmt.Errorf("a flow cache needs a table keyed by bpfprog.FlowKey, not %T", *new(K))
		}
		got := m.Cache.MaxEntries()
		bits := uint32(cacheMinBits)
		for bits < cacheMaxBits && 2<<bits != got {
			bits++
		}
		if 2<<bits != got {
			t.Close()
			return nil, fmt.Errorf("the flow cache has %d entries, not two generations of 2^%d to 2^%d", got, cacheMinBits, cacheMaxBits)
		}
		t.cacheBits = bits
		t.cacheKeys = make([]uint32, t.cacheSlots())
		t.cacheVals = make([]bpfprog.FlowCacheEntry, t.cacheSlots()*ncpu)
		t.cacheZero = make([]bpfprog.FlowCacheEntry, t.cacheSlots()*ncpu)
	}
	return t, nil
}

// Active is the table that the programs write now, for tests and
// benchmarks that fill it or read it directly.
func (t *Table[K]) Active() *ebpf.Map { return t.tables[t.active] }

// NCPU is how many values each entry has: 1 in a shared table, one per
// possible CPU in a per-CPU one.
func (t *Table[K]) NCPU() int { return t.ncpu }

// TakeActive reads and deletes the rows of the table that the programs
// write now, without swapping tables. It is for tests that run programs
// with BPF_PROG_TEST_RUN, in the calling thread, so that nothing writes
// the table meanwhile and no RCU grace period has to pass.
func (t *Table[K]) TakeActive() ([]flow.Flow, error) {
	rows, err := t.read(t.active, nil, true)
	if err != nil {
		return nil, err
	}
	// The flows in the current generation's cache, every one as a row.
	s := flow.Snapshot{Flows: rows}
	if err := t.takeCache(t.genValue, &s, nil, -1); err != nil {
		return nil, err
	}
	return s.Flows, nil
}

// Fill adds vals to the rows of keys in the table that the programs
// write now, as the programs would: for tests and benchmarks that fill a
// table without sending its traffic. vals holds a value per CPU and key
// in a per-CPU table.
func (t *Table[K]) Fill(keys []K, vals []bpfprog.FlowVal) error {
	if s := t.slots[t.active]; s != nil {
		return t.insert(s, keys, vals)
	}
	if _, err := t.Active().BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("fill flow table: %w", err)
	}
	return nil
}

// TakeRows appends the rows of the table that the programs write now to
// rows and removes them, as TakeActive does, but leaves the flow cache
// alone: for a copy of the programs loaded without a cache (--read's
// side copy, which takes one frame's row at a time and must not pay for
// reading every cache slot each time).
func (t *Table[K]) TakeRows(rows []flow.Flow) ([]flow.Flow, error) {
	return t.read(t.active, rows, true)
}

// Peek returns the rows of the table that the programs write now,
// without removing them: for tests that run programs with
// BPF_PROG_TEST_RUN in the calling thread.
func (t *Table[K]) Peek() ([]flow.Flow, error) {
	return t.read(t.active, nil, false)
}

// Close unmaps the tables and frees the spare one; the loaded maps belong
// to their objects.
func (t *Table[K]) Close() error {
	for i := range t.slots {
		if err := unmapSlots(t.slots[i]); err != nil {
			return fmt.Errorf("unmap flow table: %w", err)
		}
		t.slots[i] = nil
	}
	return t.tables[1].Close()
}

// Drain swaps the tables and returns every count since the previous
// drain, each exactly once: one row per flow, and the traffic that found
// the table full. The retired table is left empty for the next swap.
func (t *Table[K]) Drain(rows []flow.Flow) (flow.Snapshot, error) {
	// Switch the untracked generation first, so that the swap's grace
	// period covers it too.
	if err := t.gen.Set(t.genValue ^ 1); err != nil {
		return flow.Snapshot{}, fmt.Errorf("switch untracked counters: %w", err)
	}
	t.genValue ^= 1
	next := 1 - t.active
	if err := t.slot.Update(uint32(0), t.tables[next], ebpf.UpdateAny); err != nil {
		return flow.Snapshot{}, fmt.Errorf("swap flow tables: %w", err)
	}
	retired := t.active
	t.active = next
	if rows == nil {
		// Room for a quarter more rows than the previous drain had: a
		// steady table grows the slice once at most, and an idle daemon
		// with a table of millions of rows does not allocate room for all
		// of them at every scrape.
		rows = make([]flow.Flow, 0, min(t.lastRows+t.lastRows/4+64, t.entries+t.cacheRoom()))
	}
	// A read that fails part of the way has deleted what it read: those
	// rows are kept and returned with the error; the rest stays in the
	// retired table, which the next drain swaps in again and reads.
	rows, readErr := t.read(retired, rows, true)
	if readErr != nil {
		readErr = fmt.Errorf("%w (%d rows read, kept): %w", flow.ErrPartialDrain, len(rows), readErr)
	}
	s := flow.Snapshot{Flows: rows}
	var sketch flow.HLL
	if err := t.lost(&s, &sketch); err != nil {
		return flow.Snapshot{}, err
	}
	if err := t.takeFiltered(t.genValue^1, &s); err != nil {
		return flow.Snapshot{}, err
	}
	// The cache's flows that have no row take the room left in the
	// table, as they would have had their counts reached it.
	if err := t.takeCache(t.genValue^1, &s, &sketch, t.entries-len(rows)); err != nil {
		return flow.Snapshot{}, err
	}
	if s.UntrackedTotal().Packets > 0 {
		s.UntrackedFlows = sketch.Estimate()
	}
	t.lastRows = len(s.Flows)
	t.keepL7(s.Flows)
	return s, readErr
}

// takeCache adds the flow cache's generation gen to s and clears it: a
// cached flow's counts go to its row, or to a new row while room lasts
// (room < 0: no limit), or else to s's untracked counters and sketch, as
// the kernel does with a flow that finds the table full. No program
// writes that generation: it is a retired one, or the tests' current one
// between their runs.
func (t *Table[K]) takeCache(gen uint32, s *flow.Snapshot, sketch *flow.HLL, room int) error {
	if t.cache == nil {
		return nil
	}
	if err := t.readCache(gen); err != nil {
		return err
	}
	type cached struct {
		raw bpfprog.FlowKey
		c   flow.Counters
		l7  flow.L7
	}
	var pending map[flow.Key]*cached
	for i := range t.cacheVals {
		e := &t.cacheVals[i]
		if e.Packets == 0 {
			continue
		}
		if pending == nil {
			pending = make(map[flow.Key]*cached)
		}
		k := t.conv(any(&e.Key).(*K))
		p := pending[k]
		if p == nil {
			p = &cached{raw: e.Key}
			pending[k] = p
		}
		p.c.Add(flow.Counters{Packets: e.Packets, Bytes: e.Bytes})
		p.l7 = flow.MergeL7(p.l7, flow.L7(e.L7))
	}
	if pending == nil {
		return nil
	}
	if err := t.clearCache(gen); err != nil {
		return err
	}
	for i := range s.Flows {
		r := &s.Flows[i]
		if p, ok := pending[r.Key]; ok {
			r.Counters.Add(p.c)
			r.L7 = flow.MergeL7(r.L7, p.l7)
			delete(pending, r.Key)
		}
	}
	// The heaviest flows take the room first.
	left := make([]flow.Flow, 0, len(pending))
	for k, p := range pending {
		left = append(left, flow.Flow{Key: k, Counters: p.c, L7: p.l7})
	}
	slices.SortFunc(left, func(a, b flow.Flow) int { return cmp.Compare(b.Bytes, a.Bytes) })
	for _, f := range left {
		if room != 0 {
			s.Flows = append(s.Flows, f)
			room--
			continue
		}
		s.Untracked[f.Key.Dir].Add(f.Counters)
		if sketch != nil {
			sketch.Add(flow.KeyHash(*(*[12]uint32)(unsafe.Pointer(&pending[f.Key].raw))))
		}
	}
	return nil
}

// readCache reads the flow cache's generation gen into cacheVals, a value
// per CPU per slot, in one batch read per generation: slot by slot, it
// is a system call per slot, a millisecond and more per drain at 256.
// The batch reads the array in order, so generation 1's slots come with
// the second read.
// Where the kernel has no batch operations on per-CPU arrays, it reads
// slot by slot.
func (t *Table[K]) readCache(gen uint32) error {
	first, ncpu := (gen&1)*uint32(t.cacheSlots()), t.lostCPUs()
	if !t.cacheBySlot {
		var cursor ebpf.MapBatchCursor
		for range gen&1 + 1 {
			n, err := t.cache.BatchLookup(&cursor, t.cacheKeys, t.cacheVals, nil)
			if errors.Is(err, ebpf.ErrNotSupported) {
				t.cacheBySlot = true
				break
			}
			if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("read flow cache: %w", err)
			}
			if n != t.cacheSlots() {
				return fmt.Errorf("read flow cache: %d slots of a generation's %d", n, t.cacheSlots())
			}
		}
		if !t.cacheBySlot {
			return nil
		}
	}
	for i := range t.cacheSlots() {
		if err := t.cache.Lookup(first+uint32(i), t.cacheVals[i*ncpu:(i+1)*ncpu]); err != nil {
			return fmt.Errorf("read flow cache: %w", err)
		}
	}
	return nil
}

// clearCache zeroes the slots of generation gen that cacheVals holds
// counts in, every CPU's value: in one batch update, or slot by slot where
// readCache found no batch operations.
func (t *Table[K]) clearCache(gen uint32) error {
	first, ncpu := (gen&1)*uint32(t.cacheSlots()), t.lostCPUs()
	used := t.cacheKeys[:0]
	for i := range t.cacheSlots() {
		for _, e := range t.cacheVals[i*ncpu : (i+1)*ncpu] {
			if e.Packets != 0 {
				used = append(used, first+uint32(i))
				break
			}
		}
	}
	if !t.cacheBySlot {
		if _, err := t.cache.BatchUpdate(used, t.cacheZero[:len(used)*ncpu], nil); err != nil {
			return fmt.Errorf("clear flow cache: %w", err)
		}
		return nil
	}
	for _, slot := range used {
		if err := t.cache.Update(slot, t.cacheZero[:ncpu], ebpf.UpdateExist); err != nil {
			return fmt.Errorf("clear flow cache: %w", err)
		}
	}
	return nil
}

// cacheSlots is how many entries the flow cache has per CPU and
// generation.
func (t *Table[K]) cacheSlots() int { return 1 << t.cacheBits }

// CacheBits is the flow cache's size, as log2 of its entries per CPU and
// generation (SizeCache); 0 without a cache.
func (t *Table[K]) CacheBits() uint32 { return t.cacheBits }

// cacheRoom is how many rows the flow cache can add to a drain.
func (t *Table[K]) cacheRoom() int { return len(t.cacheVals) }

// lostCPUs is how many values a per-CPU map's entry has.
func (t *Table[K]) lostCPUs() int { return len(t.lostVals) }

// keepL7 settles the application protocol of each row. A drain leaves the
// kernel with an empty table, so a flow's next packets land in a fresh
// entry whose first payload is the middle of a stream, where detection
// finds nothing (or, rarely, something else): a flow keeps the protocol it
// had in the previous drain. Then a row without one takes its reverse
// flow's (flow.ShareL7). A flow absent from a whole drain is forgotten.
func (t *Table[K]) keepL7(rows []flow.Flow) {
	if len(t.labels) > 0 {
		for i := range rows {
			if l, ok := t.labels[rows[i].Key]; ok {
				rows[i].L7 = l
			}
		}
	}
	flow.ShareL7(rows)
	clear(t.labels)
	for i := range rows {
		if rows[i].L7.Known() {
			if t.labels == nil {
				t.labels = make(map[flow.Key]flow.L7)
			}
			t.labels[rows[i].Key] = rows[i].L7
		}
	}
}

// read appends a row for every flow in table i, and empties it when
// take is set. Nothing may write the table meanwhile.
func (t *Table[K]) read(i int, rows []flow.Flow, take bool) ([]flow.Flow, error) {
	if s := t.slots[i]; s != nil {
		if rows == nil {
			rows = make([]flow.Flow, 0, min(t.lastRows+t.lastRows/4+64, t.entries+t.cacheRoom()))
		}
		return t.scan(s, rows, take), nil
	}
	return t.collect(t.tables[i], rows, take)
}

// collect reads every entry of the hash table m in batches, one row per
// flow (the sum of its CPUs' values in a per-CPU table), and deletes it
// when take is set. Nothing writes m any more, so the batch lookup sees
// each entry exactly once.
func (t *Table[K]) collect(m *ebpf.Map, rows []flow.Flow, take bool) ([]flow.Flow, error) {
	batch := m.BatchLookup
	if take {
		batch = m.BatchLookupAndDelete
	}
	var cursor ebpf.MapBatchCursor
	for {
		if cap(rows)-len(rows) < len(t.keys) {
			// Double, rather than append's quarter more at this size: a
			// first drain of a million rows then copies a million rows,
			// not four.
			rows = slices.Grow(rows, max(len(t.keys), min(len(rows), t.entries+t.cacheRoom()-len(rows))))
		}
		n, err := batch(&cursor, t.keys, t.vals, nil)
		for i := 0; i < n; i++ {
			var (
				c  flow.Counters
				l7 flow.L7
			)
			for _, v := range t.vals[i*t.ncpu : (i+1)*t.ncpu] {
				c.Packets += v.Packets
				c.Bytes += v.Bytes
				l7 = flow.MergeL7(l7, flow.L7(v.L7))
			}
			rows = append(rows, flow.Flow{Key: t.conv(&t.keys[i]), Counters: c, L7: l7})
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("read flow table: %w", err)
		}
	}
}

// lost fills in the traffic that found the table full since the previous
// drain: the counters, in s, and the sketch, merged into sketch, of the
// generation that drain just switched away from, which no program writes
// any more. It reads them, then clears them for their next turn.
func (t *Table[K]) lost(s *flow.Snapshot, sketch *flow.HLL) error {
	retired := t.genValue ^ 1
	for dir := range s.Untracked {
		total, err := t.takeCounters(t.untracked, retired*flow.NumDirections+uint32(dir), "untracked")
		if err != nil {
			return err
		}
		s.Untracked[dir] = total
	}
	if s.UntrackedTotal().Packets == 0 {
		// Nothing untracked in this generation, so its sketch is empty.
		return nil
	}
	if err := t.hll.Lookup(retired, &t.hlls); err != nil {
		return fmt.Errorf("read untracked flow sketch: %w", err)
	}
	for i := range t.hlls {
		sketch.Merge((*flow.HLL)(&t.hlls[i].Reg))
		t.hlls[i] = bpfprog.HLL{}
	}
	if err := t.hll.Update(retired, t.hlls, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("reset untracked flow sketch: %w", err)
	}
	return nil
}

// takeFiltered adds what the filter dropped in generation gen to s and
// clears it, as lost does with the untracked counters.
func (t *Table[K]) takeFiltered(gen uint32, s *flow.Snapshot) error {
	if t.filtered == nil {
		return nil
	}
	total, err := t.takeCounters(t.filtered, gen, "filtered")
	s.Filtered.Add(total)
	return err
}

// takeCounters reads entry key of the per-CPU counters m, adds up its
// CPUs' values and clears them; what names m in errors.
func (t *Table[K]) takeCounters(m *ebpf.Map, key uint32, what string) (flow.Counters, error) {
	var total flow.Counters
	if err := m.Lookup(key, &t.lostVals); err != nil {
		return total, fmt.Errorf("read %s counters: %w", what, err)
	}
	for i, v := range t.lostVals {
		total.Add(flow.Counters{Packets: v.Packets, Bytes: v.Bytes})
		t.lostVals[i] = bpfprog.FlowVal{}
	}
	if total.Packets > 0 {
		if err := m.Update(key, t.lostVals, ebpf.UpdateExist); err != nil {
			return flow.Counters{}, fmt.Errorf("reset %s counters: %w", what, err)
		}
	}
	return total, nil
}

// TakeActiveFiltered reads and clears what the filter dropped in the
// generation the programs add to now: TakeActive's counterpart, for tests
// that run programs with BPF_PROG_TEST_RUN.
func (t *Table[K]) TakeActiveFiltered() (flow.Counters, error) {
	var s flow.Snapshot
	err := t.takeFiltered(t.genValue, &s)
	return s.Filtered, err
}
