package capture

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/offline"
)

// ReplayOptions configure a replay of a capture file (--read).
type ReplayOptions struct {
	// XDP runs the frames through the XDP program (-x) instead of TC's.
	XDP        bool
	MaxEntries uint32
	NoARP      bool
	Filter     *filter.Filter
	Log        *slog.Logger
	// Workers run frames in parallel, each flow on one worker; 0 runs
	// one per CPU.
	Workers int
}

// Replay counts the frames of a capture file with the same programs as a
// live capture, run with BPF_PROG_TEST_RUN and attached nowhere: it
// touches no interface, qdisc or namespace. It drains like any capture.
//
// A frame that the test run cannot take whole (cut by the file's snap
// length, larger than one page, or a GRO super-packet that stands for
// several wire segments) runs, cut to what it holds, through a second
// copy of the programs with neither flow cache nor filter; that copy's
// one row names the frame's key, and the frame's wire packets and bytes
// (offline.Frame) are added to that row in Go, after the filter's Go
// evaluator (the reference its compiled code is tested against) has
// kept it.
type Replay struct {
	session[bpfprog.FlowKey]
	in, out   *ebpf.Program // out is nil with XDP: it sees ingress only
	side      sideProgs
	filter    *filter.Filter
	describe  string
	workers   []chan *replayBatch
	pending   []*replayBatch // the batch being filled, per worker
	wg        sync.WaitGroup
	batchPool sync.Pool

	mu       sync.Mutex // guards what follows, and the side programs
	extra    map[flow.Key]*extraRow
	maxExtra int // rows extra may hold: --max-entries, as the table
	// untracked is what found extra full, by direction.
	untracked [flow.NumDirections]flow.Counters
	filtered  flow.Counters
	// Skipped counts the egress frames that XDP, ingress only, does not
	// see; Marked counts the frames of each mark.
	skipped flow.Counters
	marked  map[offline.Mark]uint64
	err     error
}

// sideProgs is the second copy of the programs, for frames counted in Go.
type sideProgs struct {
	in, out *ebpf.Program
	// The side copy's flow table, which each frame's row is taken from
	// (in the array layout, through memory: no system call).
	table *flowtable.Table[bpfprog.FlowKey]
	close func() error
	rows  []flow.Flow // the frame's row, in a buffer kept from frame to frame
}

type extraRow struct {
	c   flow.Counters
	l7  flow.L7
	est bool // a GRO super-packet counted as one: flow.Flow.Estimated
}

// replayBatch is frames on their way to a worker; data holds their bytes
// (the reader reuses its buffer).
type replayBatch struct {
	frames []offline.Frame
	data   []byte
}

const replayBatchSize = 256

// maxTestRunFrame is the largest frame BPF_PROG_TEST_RUN takes for an
// skb or a single-buffer XDP program: one page, less the head and tail
// room the kernel keeps.
const maxTestRunFrame = 3500

// StartReplay loads the programs for a replay. Nothing is attached.
func StartReplay(o ReplayOptions) (*Replay, error) {
	if err := checkMemory(o.MaxEntries); err != nil {
		return nil, err
	}
	r := &Replay{filter: o.Filter, extra: map[flow.Key]*extraRow{}, maxExtra: int(o.MaxEntries), marked: map[offline.Mark]uint64{}}
	var err error
	if o.XDP {
		err = r.loadXDP(o)
	} else {
		err = r.loadTC(o)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	// cilium/ebpf probes BPF_PROG_RUN on the first run by loading a
	// program of its own: that must happen now, while loading is
	// allowed, not after the privileges are dropped. The side copy's
	// table is emptied again after it.
	if err := r.runSide(&offline.Frame{Data: make([]byte, 14)}); err != nil {
		r.Close()
		return nil, err
	}
	clear(r.extra)
	n := o.Workers
	if n <= 0 {
		n = runtime.NumCPU()
	}
	r.workers = make([]chan *replayBatch, n)
	r.pending = make([]*replayBatch, n)
	for i := range r.workers {
		ch := make(chan *replayBatch, 4)
		r.workers[i] = ch
		go r.work(ch)
	}
	return r, nil
}

func (r *Replay) loadTC(o ReplayOptions) error {
	tc := TCOptions{MaxEntries: o.MaxEntries, NoARP: o.NoARP, Filter: o.Filter, Log: o.Log}
	t, err := loadTC(tc)
	if err != nil {
		return err
	}
	r.session = t.session
	r.in, r.out = t.objs.PktstatIngress, t.objs.PktstatEgress
	r.describe = "read/tc"
	tc.Filter, tc.MaxEntries = nil, sideEntries
	tc.specHook = noFlowCache(bpfprog.TCVarFlowCacheOn)
	s, err := loadTC(tc)
	if err != nil {
		return err
	}
	r.side = sideProgs{in: s.objs.PktstatIngress, out: s.objs.PktstatEgress, table: s.table, close: s.Close}
	return nil
}

func (r *Replay) loadXDP(o ReplayOptions) error {
	frags, err := ProbeXDPFrags()
	if err != nil {
		return err
	}
	layout, err := defaultLayout()
	if err != nil {
		return err
	}
	x, err := loadXDPWith(xdpLoad{maxEntries: o.MaxEntries, frags: frags, noARP: o.NoARP, layout: layout, log: o.Log, filter: o.Filter})
	if err != nil {
		return err
	}
	r.session = x.session
	r.in = x.objs.PktstatXdp
	r.describe = "read/xdp"
	s, err := loadXDPWith(xdpLoad{maxEntries: sideEntries, frags: frags, noARP: o.NoARP, noCache: true, log: o.Log})
	if err != nil {
		return err
	}
	r.side = sideProgs{in: s.objs.PktstatXdp, table: s.table, close: s.Close}
	return nil
}

// sideEntries is the side copy's table: it holds one row at a time.
const sideEntries = 16

// noFlowCache turns the flow cache off before the object loads, so that
// each run's row is in the table when the run returns.
func noFlowCache(name string) func(*ebpf.CollectionSpec) {
	return func(spec *ebpf.CollectionSpec) {
		if v, ok := spec.Variables[name]; ok {
			_ = v.Set(false)
		}
	}
}

// Describe names the mode.
func (r *Replay) Describe() string { return r.describe }

// Feed queues one frame; its bytes are copied. Frames of one connection
// run in the order they are fed.
func (r *Replay) Feed(f offline.Frame) {
	w := int(f.Shard % uint32(len(r.workers)))
	b := r.pending[w]
	if b == nil {
		b, _ = r.batchPool.Get().(*replayBatch)
		if b == nil {
			b = &replayBatch{}
		}
		r.pending[w] = b
	}
	n := min(len(f.Data), maxTestRunFrame)
	start := len(b.data)
	b.data = append(b.data, f.Data[:n]...)
	f.Data = b.data[start : start+n : start+n]
	b.frames = append(b.frames, f)
	if len(b.frames) == replayBatchSize {
		r.send(w)
	}
}

func (r *Replay) send(w int) {
	b := r.pending[w]
	if b == nil {
		return
	}
	r.pending[w] = nil
	r.wg.Add(1)
	r.workers[w] <- b
}

// Flush waits until every frame fed so far is counted.
func (r *Replay) Flush() error {
	for w := range r.pending {
		r.send(w)
	}
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.err
	r.err = nil
	return err
}

func (r *Replay) work(ch <-chan *replayBatch) {
	for b := range ch {
		for i := range b.frames {
			if err := r.run(&b.frames[i]); err != nil {
				r.mu.Lock()
				r.err = errors.Join(r.err, err)
				r.mu.Unlock()
				break
			}
		}
		// The batch's buffers are reused: its frames' bytes alias data.
		clear(b.frames)
		b.frames, b.data = b.frames[:0], b.data[:0]
		r.batchPool.Put(b)
		r.wg.Done()
	}
}

// run counts one frame.
func (r *Replay) run(f *offline.Frame) error {
	prog := r.in
	if f.Out {
		prog = r.out
	}
	if prog == nil {
		r.mu.Lock()
		r.skipped.Add(flow.Counters{Packets: f.Segs, Bytes: f.Bytes})
		r.mu.Unlock()
		return nil
	}
	if f.Segs == 1 && f.Marks == 0 && uint64(len(f.Data)) == f.Bytes && testRunTakes(f.Data) {
		if _, err := prog.Run(&ebpf.RunOptions{Data: f.Data}); err != nil {
			return fmt.Errorf("run %s on a frame: %w", prog, err)
		}
		return nil
	}
	return r.runSide(f)
}

// runSide counts a frame that its program cannot count whole: its key
// from the side copy, its counts from the frame.
func (r *Replay) runSide(f *offline.Frame) error {
	data := padForTestRun(f.Data)
	r.mu.Lock()
	defer r.mu.Unlock()
	prog := r.side.in
	if f.Out {
		prog = r.side.out
	}
	if _, err := prog.Run(&ebpf.RunOptions{Data: data}); err != nil {
		return fmt.Errorf("run %s on a frame: %w", prog, err)
	}
	rows, err := r.side.table.TakeRows(r.side.rows[:0])
	if err != nil {
		return fmt.Errorf("read the side flow table: %w", err)
	}
	r.side.rows = rows
	if len(rows) != 1 {
		return fmt.Errorf("a frame run through the side copy of the programs left %d rows, not one", len(rows))
	}
	k, l7 := rows[0].Key, rows[0].L7
	c := flow.Counters{Packets: f.Segs, Bytes: f.Bytes}
	if f.Marks&offline.MarkTruncated != 0 && k.Flags&flow.Malformed == 0 {
		// The parser had every byte it needed: the cut is harmless.
		f.Marks &^= offline.MarkTruncated
	}
	for m := offline.MarkTruncated; m <= offline.MarkSegmentsGuessed; m <<= 1 {
		if f.Marks&m != 0 {
			r.marked[m]++
		}
	}
	if r.filter != nil && !r.filter.Match(filterKey(k)) {
		r.filtered.Add(c)
		return nil
	}
	e := r.extra[k]
	if e == nil && len(r.extra) >= r.maxExtra {
		// Memory stays bounded by the flow table, whatever the file.
		r.untracked[k.Dir].Add(c)
		return nil
	}
	if e == nil {
		e = &extraRow{}
		r.extra[k] = e
	}
	e.c.Add(c)
	e.l7 = flow.MergeL7(e.l7, l7)
	e.est = e.est || f.Marks&offline.MarkSegmentsGuessed != 0
	return nil
}

// testRunTakes says whether BPF_PROG_TEST_RUN runs an skb program on the
// frame as it is: at most a page, and not shorter than the IP header its
// EtherType announces (the kernel refuses those with EINVAL). XDP takes
// them too; one rule serves both.
func testRunTakes(b []byte) bool {
	if len(b) < 14 || len(b) > maxTestRunFrame {
		return false
	}
	return len(b) >= minTestRunFrame(b)
}

func minTestRunFrame(b []byte) int {
	switch uint16(b[12])<<8 | uint16(b[13]) {
	case flow.EtherTypeIPv4:
		return 14 + 20
	case flow.EtherTypeIPv6:
		return 14 + 40
	}
	return 14
}

// padForTestRun pads a cut frame with zeros to what the test run takes.
// The padding lies after the captured bytes; an IP header that needed
// them is cut, and the parser marks its key malformed either way.
func padForTestRun(b []byte) []byte {
	if len(b) < 14 {
		return append(append([]byte(nil), b...), make([]byte, 14-len(b))...)
	}
	if n := minTestRunFrame(b); len(b) < n {
		return append(append([]byte(nil), b...), make([]byte, n-len(b))...)
	}
	return b
}

// filterKey is the part of k that a filter reads.
func filterKey(k flow.Key) *filter.Key {
	fk := &filter.Key{SrcPort: k.SrcPort, DstPort: k.DstPort, EtherType: k.EtherType, VLAN: k.VLAN, Proto: k.Proto,
		Fragment: k.Flags&flow.Fragment != 0}
	if k.Src.IsValid() {
		s := k.Src.AsSlice()
		copy(fk.Src[:], s)
	}
	if k.Dst.IsValid() {
		copy(fk.Dst[:], k.Dst.AsSlice())
	}
	return fk
}

// Drain counts every frame fed so far, then drains the table and adds
// the frames counted in Go.
func (r *Replay) Drain() (flow.Snapshot, error) {
	if err := r.Flush(); err != nil {
		return flow.Snapshot{}, err
	}
	s, err := r.session.Drain()
	if err != nil && !errors.Is(err, flow.ErrPartialDrain) {
		return s, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Filtered.Add(r.filtered)
	r.filtered = flow.Counters{}
	for d, u := range r.untracked {
		s.Untracked[d].Add(u)
	}
	r.untracked = [flow.NumDirections]flow.Counters{}
	if len(r.extra) > 0 {
		at := make(map[flow.Key]int, len(s.Flows))
		for i, f := range s.Flows {
			at[f.Key] = i
		}
		for k, e := range r.extra {
			if i, ok := at[k]; ok {
				s.Flows[i].Counters.Add(e.c)
				s.Flows[i].L7 = flow.MergeL7(s.Flows[i].L7, e.l7)
				s.Flows[i].Estimated = s.Flows[i].Estimated || e.est
				continue
			}
			s.Flows = append(s.Flows, flow.Flow{Key: k, Counters: e.c, L7: e.l7, Estimated: e.est})
		}
		clear(r.extra)
	}
	return s, err
}

// Marked returns how many frames carried each mark, and the egress
// traffic that XDP did not see.
func (r *Replay) Marked() (map[offline.Mark]uint64, flow.Counters) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[offline.Mark]uint64, len(r.marked))
	for k, v := range r.marked {
		m[k] = v
	}
	return m, r.skipped
}

// Close stops the workers and frees the programs.
func (r *Replay) Close() error {
	for _, ch := range r.workers {
		close(ch)
	}
	r.workers = nil
	errs := []error{r.session.Close()}
	if r.side.close != nil {
		errs = append(errs, r.side.close())
		r.side.close = nil
	}
	return errors.Join(errs...)
}
