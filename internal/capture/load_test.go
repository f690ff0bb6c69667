package capture

import (
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// testLoad says how a test loads an object: the settings that the tool's
// loaders take from its flags.
type testLoad struct {
	maxEntries uint32 // rows of the flow table; 0: as many as the object declares
	noARP      bool   // --no-arp: arp_detail off, where the object has it
	frags      bool   // XDP: the multi-buffer program (frags_aware, BPF_F_XDP_HAS_FRAGS)
	layout     flowtable.Layout
	noCache    bool   // TC and XDP: count straight into the flow table (flow_cache_on off)
	fullParse  bool   // TC and XDP: the full parser only, without parse_fast (parse_fast_on off)
	cacheBits  uint32 // TC and XDP: the flow cache's size (flowtable.SizeCache); 0: the tool's for this machine
	filter     *filter.Filter
}

// entries is the flow table's size for spec.
func (o testLoad) entries(spec *ebpf.CollectionSpec) uint32 {
	if o.maxEntries == 0 {
		return spec.Maps[bpftest.FlowsMap].MaxEntries
	}
	return o.maxEntries
}

// objectSpec reads an object's spec: bpfprog.LoadTC, LoadXDP or LoadCgroup.
func objectSpec(t testing.TB, load func() (*ebpf.CollectionSpec, error)) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := load()
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	return spec
}

// loadObjects is how the tests load an object from its spec: into a new O
// (a bpf2go objects struct, or a struct of only the programs and maps a
// test needs) with o's settings, closed when the test ends. It skips the
// test without root, or where the kernel lacks a feature the object needs.
// The spec itself is left unchanged.
func loadObjects[O any, P interface {
	*O
	Close() error
}](t testing.TB, spec *ebpf.CollectionSpec, o testLoad) P {
	t.Helper()
	bpftest.RequireRoot(t)
	spec = spec.Copy()
	for name, v := range map[string]bool{bpfprog.TCVarArpDetail: !o.noARP, bpfprog.XDPVarFragsAware: o.frags, bpfprog.TCVarFlowCacheOn: !o.noCache, bpfprog.TCVarParseFastOn: !o.fullParse} {
		if vs, ok := spec.Variables[name]; ok {
			if err := vs.Set(v); err != nil {
				t.Fatalf("set %s: %v", name, err)
			}
		}
	}
	layout := testLayout(t, o.layout)
	flowtable.Size(spec, o.entries(spec))
	if err := setLayout(spec, layout); err != nil {
		t.Fatal(err)
	}
	// A build from before the cache's size was set at load time keeps
	// the size it was built with.
	if _, ok := spec.Variables[bpfprog.TCVarFlowCacheBits]; ok || o.cacheBits != 0 {
		if err := flowtable.SizeCache(spec, o.cacheBits); err != nil {
			t.Fatal(err)
		}
	}
	if err := applyFilter(spec, o.filter); err != nil {
		t.Fatal(err)
	}
	if p, ok := spec.Programs[bpfprog.XDPProgPktstatXdp]; ok && o.frags {
		p.Flags |= unix.BPF_F_XDP_HAS_FRAGS
	}
	objs := P(new(O))
	bpftest.Load(t, spec, spec.Maps[bpftest.FlowsMap].MaxEntries, objs)
	return objs
}

// testHook is a hook the parser serves.
type testHook int

const (
	tcHook  testHook = iota // pktstat_ingress and pktstat_egress
	xdpHook                 // pktstat_xdp
)

// loadHook loads kind's programs with o's settings, with their flow table:
// TC through loadObjects, XDP through loadXDPWith, the loader StartXDP
// uses. The multi-buffer XDP program (o.frags) skips the test on a kernel
// without multi-buffer XDP.
func loadHook(t testing.TB, kind testHook, o testLoad) hookUnderTest {
	t.Helper()
	bpftest.RequireRoot(t)
	if kind == tcHook {
		spec := objectSpec(t, bpfprog.LoadTC)
		objs := loadObjects[bpfprog.TCObjects](t, spec, o)
		return hookUnderTest{
			progs: []hookProg{
				{bpfprog.TCProgPktstatIngress, objs.PktstatIngress, flow.In},
				{bpfprog.TCProgPktstatEgress, objs.PktstatEgress, flow.Out},
			},
			tb:      newTestTable(t, flowtable.Maps{Slot: objs.FlowTables, Flows: objs.Flows, Untracked: objs.Untracked, HLL: objs.UntrackedHll, Gen: objs.UntrackedGen, Rows: objs.ArrayRows, Cache: objs.FlowCache, Filtered: objs.Filtered}, flowtable.KeyFromBPF),
			pass:    tcPass(),
			accepts: skbTestRunAccepts,
			tc:      objs,
		}
	}
	if o.frags {
		ok, err := ProbeXDPFrags()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Skip("kernel lacks multi-buffer XDP (bpf_xdp_get_buff_len, Linux 5.18+)")
		}
	}
	n := o.maxEntries
	if n == 0 {
		n = o.entries(objectSpec(t, bpfprog.LoadXDP))
	}
	// loadXDP is loadXDPWith without --no-arp's setting.
	x, err := loadXDPWith(xdpLoad{maxEntries: n, frags: o.frags, noARP: o.noARP, layout: testLayout(t, o.layout), noCache: o.noCache, fullParse: o.fullParse, cacheBits: o.cacheBits, filter: o.filter})
	if err != nil {
		t.Fatalf("load XDP program (multi-buffer %v): %+v", o.frags, err)
	}
	t.Cleanup(func() {
		if err := x.Close(); err != nil {
			t.Errorf("close XDP objects: %v", err)
		}
	})
	accepts := func(frame []byte) bool { return len(frame) >= 14 }
	if !o.frags {
		// A single-buffer program gets frames that fit one page, as
		// BPF_PROG_TEST_RUN and the drivers give it.
		accepts = func(frame []byte) bool { return len(frame) >= 14 && len(frame) <= 3500 }
	}
	return hookUnderTest{
		progs:   []hookProg{{bpfprog.XDPProgPktstatXdp, x.objs.PktstatXdp, flow.In}},
		tb:      x.table,
		pass:    xdpPass,
		accepts: accepts,
	}
}

// loadHooks loads every program the parser serves with o's settings: TC
// ingress and egress, and the XDP programs: the single-buffer one (native
// mode at a standard MTU), and the multi-buffer one where the kernel has
// it (generic mode, jumbo MTUs).
func loadHooks(t testing.TB, o testLoad) []hookUnderTest {
	t.Helper()
	multiBuffer, err := ProbeXDPFrags()
	if err != nil {
		t.Fatal(err)
	}
	hooks := []hookUnderTest{loadHook(t, tcHook, o)}
	for _, frags := range []bool{false, true} {
		if frags && !multiBuffer {
			continue
		}
		o.frags = frags
		hooks = append(hooks, loadHook(t, xdpHook, o))
	}
	return hooks
}

// parserHooks is loadHooks twice: as the tool runs (parse_fast first) and
// with the full parser alone, whose programs' names say so. A parser test
// that runs every frame through both holds each way of reading a frame to
// gopacket's reading of it.
func parserHooks(t testing.TB, o testLoad) []hookUnderTest {
	t.Helper()
	hooks := loadHooks(t, o)
	o.fullParse = true
	for _, h := range loadHooks(t, o) {
		for i := range h.progs {
			h.progs[i].name += " (full parser)"
		}
		hooks = append(hooks, h)
	}
	return hooks
}

// layouts are the flow-table layouts, for tests that run in each.
var layouts = []flowtable.Layout{flowtable.Array, flowtable.Shared, flowtable.PerCPU}

// testLayout resolves l as the tool would, and skips a test that asks
// for the array table on a kernel without the BPF atomics it needs (the
// tool uses the shared hash table there, which the test's other layouts
// cover).
func testLayout(t testing.TB, l flowtable.Layout) flowtable.Layout {
	t.Helper()
	if l == flowtable.Array {
		ok, err := flowtable.HaveAtomics()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Skip("skipped: the array flow table needs BPF atomics (Linux 5.12), and this kernel has none")
		}
	}
	r, err := flowtable.Resolve(l)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// iterateFlows calls each with every entry of the flow table m and its
// values: one in a shared table, one per possible CPU in a per-CPU one.
// An array table gives each slot that holds a flow.
func iterateFlows[K any](t testing.TB, m *ebpf.Map, each func(k *K, vals []bpfprog.FlowVal)) {
	t.Helper()
	var (
		k    K
		one  bpfprog.FlowVal
		vals []bpfprog.FlowVal
	)
	if m.Type() == ebpf.Array {
		// A row: 8 bytes of state, the key, the counters.
		type slot struct {
			State uint64
			Key   K
			Val   bpfprog.FlowVal
		}
		var s slot
		// The rows follow the reservations and the index.
		ncpu, err := ebpf.PossibleCPU()
		if err != nil {
			t.Fatal(err)
		}
		first, _, err := flowtable.ArrayRows(m.MaxEntries(), ncpu)
		if err != nil {
			t.Fatal(err)
		}
		for i := first; i < m.MaxEntries(); i++ {
			if err := m.Lookup(i, &s); err != nil {
				t.Fatalf("read flow table row %d: %v", i, err)
			}
			if s.State != 0 {
				each(&s.Key, []bpfprog.FlowVal{s.Val})
			}
		}
		return
	}
	it := m.Iterate()
	if m.Type() == ebpf.PerCPUHash {
		for it.Next(&k, &vals) {
			each(&k, vals)
		}
	} else {
		for it.Next(&k, &one) {
			each(&k, []bpfprog.FlowVal{one})
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate flow table: %v", err)
	}
}

// putFlow stores key's counters in the flow table m. A per-CPU table gets
// vals on its first CPUs (vals[i] on CPU i; the last one on the last CPU
// when there are fewer), a shared one their sum.
func putFlow[K comparable](t testing.TB, tb *flowtable.Table[K], key K, vals ...bpfprog.FlowVal) {
	t.Helper()
	m := tb.Active()
	if m.Type() != ebpf.PerCPUHash {
		var sum bpfprog.FlowVal
		for _, v := range vals {
			sum.Packets += v.Packets
			sum.Bytes += v.Bytes
		}
		if err := tb.Fill([]K{key}, []bpfprog.FlowVal{sum}); err != nil {
			t.Fatal(err)
		}
		return
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	all := make([]bpfprog.FlowVal, ncpu)
	for i, v := range vals {
		c := min(i, ncpu-1)
		all[c].Packets += v.Packets
		all[c].Bytes += v.Bytes
	}
	if err := tb.Fill([]K{key}, all); err != nil {
		t.Fatal(err)
	}
}
