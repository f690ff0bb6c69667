// Package livegen is a traffic generator for tests: it sends Ethernet
// frames out of a veth at millions of packets per second, far beyond what
// sockets or AF_PACKET reach on a small machine.
//
// It runs an XDP program that returns XDP_TX through BPF_PROG_TEST_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES (Linux 5.18+). In that mode the kernel runs
// the program once per repetition on a frame from a page pool, and
// transmits every frame the program returns with XDP_TX out of the
// interface named by the context's ingress_ifindex. The kernel looks that
// index up in the calling thread's network namespace, so every call runs
// inside the sender's namespace.
//
// One call sends copies of one input frame, and each call costs about an
// RCU grace period (some 25 ms here) to set up and tear down. So that
// thousands of flows need only a few calls, the program rewrites the frame
// on every run: it takes the next flow in round-robin order from a map,
// writes that flow's first HeaderRoom bytes over the frame and trims the
// frame to that flow's length. Bytes past HeaderRoom are sent as zeros.
//
// On a veth, transmitted frames go straight into the peer's receive ring,
// which exists only while the peer runs NAPI: attach a native XDP program
// to the peer (or enable GRO on it) first, or every frame is refused.
//
// The generator checks its own ground truth: after every call, the veth's
// counters must show every run of the program as a frame queued on the
// peer, or Send fails. Each frame's Count is then exactly what arrived in
// the peer's receive ring.
package livegen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/ethtool"
)

// HeaderRoom is how many leading bytes of each frame are sent as given;
// the rest of a frame must be zeros. It holds Ethernet, a VLAN tag, IPv6
// and a TCP header with full options.
const HeaderRoom = 128

// MaxFrameLen is the longest frame live-frames mode sends: a page less the
// kernel's headroom and the room for struct skb_shared_info.
const MaxFrameLen = 3300

// DefaultBatchSize is how many frames the kernel runs between flushes to
// the device. It matches the NAPI budget, so the peer's receive softirq,
// which runs when each batch ends, drains a whole batch at once and the
// peer's 256-slot ring does not overflow.
const DefaultBatchSize = 64

// ErrNotDelivered means some frames did not reach the peer's receive ring,
// so how many of each frame arrived is unknown. On a loaded machine the
// peer's receive softirq can fall behind and its ring overflow; a caller
// that needs exact ground truth starts its measurement over.
var ErrNotDelivered = errors.New("not every frame was delivered")

// ErrUnsupported means the kernel refuses BPF_F_TEST_XDP_LIVE_FRAMES:
// older than 5.18, or built to refuse it (some builds of 6.18.44-fc answer
// EPERM even to root, while an ordinary BPF_PROG_TEST_RUN of the same
// program works).
var ErrUnsupported = errors.New("this kernel refuses BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES")

// Probe reports whether the kernel runs XDP programs in live-frames mode:
// nil, or an error that wraps ErrUnsupported. It runs a program that drops
// its one frame, so nothing is sent.
func Probe() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "livegen_probe",
		Type:         ebpf.XDP,
		License:      "Dual MIT/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1 /* XDP_DROP */), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("load the live-frames probe: %w", err)
	}
	defer prog.Close()
	_, err = prog.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: 1, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES})
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return err
}

// Frame is one frame to send Count times. A frame longer than the peer's
// MTU plus 18 bytes (Ethernet header and a VLAN tag) is dropped by the
// kernel before it reaches the veth; Send then fails.
type Frame struct {
	Data  []byte // HeaderRoom bytes as given, then zeros; 14 to MaxFrameLen bytes
	Count uint32
}

// Report is the outcome of one Send. When Send returns no error, every
// frame was delivered Count times into the peer's receive ring.
type Report struct {
	Runs      uint64        // times the program ran: frames offered
	Delivered uint64        // frames the veth queued on its peer
	Refused   uint64        // frames the veth could not queue (ring full, too long)
	Calls     int           // BPF_PROG_TEST_RUN calls made
	Elapsed   time.Duration // wall time of the whole Send, calls' set-up included
	// KernelTime is the time the kernel measured for the runs themselves:
	// the program, the transmission, and the peer's receive softirq that
	// runs at the end of every batch.
	KernelTime time.Duration
}

// Rate is the offered rate over the whole Send, in frames per second.
func (r Report) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Runs) / r.Elapsed.Seconds()
}

// KernelRate is the rate while the kernel was sending, in frames per second.
func (r Report) KernelRate() float64 {
	if r.KernelTime <= 0 {
		return 0
	}
	return float64(r.Runs) / r.KernelTime.Seconds()
}

// InNetns runs fn on an OS thread inside the sender's network namespace,
// as testnet.End.Do does.
type InNetns func(fn func() error) error

// Generator sends frames out of one interface.
type Generator struct {
	ifname    string
	ifindex   int
	inNetns   InNetns
	maxFlows  int
	state     *ebpf.Map // [0]: {cursor, active}: next run, flows in rotation
	templates *ebpf.Map // per flow: {len, pad, first HeaderRoom bytes}
	prog      *ebpf.Program
	sock      int // a socket in the sender's namespace, for ethtool ioctls
	stats     *ethtoolStats
	BatchSize uint32 // frames per kernel batch; DefaultBatchSize if 0
}

// New prepares a generator that sends up to maxFlows distinct frames out
// of the interface ifname, which lives in the namespace that inNetns enters.
func New(ifname string, maxFlows int, inNetns InNetns) (*Generator, error) {
	if maxFlows < 1 {
		return nil, fmt.Errorf("maxFlows %d: must be at least 1", maxFlows)
	}
	g := &Generator{ifname: ifname, inNetns: inNetns, maxFlows: maxFlows, sock: -1}
	err := inNetns(func() error {
		ifc, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open socket for ethtool: %w", err)
		}
		g.sock = ifc
		idx, err := ifindex(ifc, ifname)
		if err != nil {
			return err
		}
		g.ifindex = idx
		g.stats, err = newEthtoolStats(ifc, ifname)
		return err
	})
	if err != nil {
		g.Close()
		return nil, err
	}
	if err := g.load(); err != nil {
		g.Close()
		return nil, err
	}
	if err := Probe(); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// template is the map value that describes one flow's frame.
type template struct {
	Len  uint32
	_    uint32
	Head [HeaderRoom]byte
}

// load creates the maps and the injecting program.
func (g *Generator) load() error {
	var err error
	g.state, err = ebpf.NewMap(&ebpf.MapSpec{Name: "livegen_state", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("create state map: %w", err)
	}
	g.templates, err = ebpf.NewMap(&ebpf.MapSpec{Name: "livegen_frames", Type: ebpf.Array, KeySize: 4,
		ValueSize: uint32(unsafe.Sizeof(template{})), MaxEntries: uint32(g.maxFlows)})
	if err != nil {
		return fmt.Errorf("create frame map: %w", err)
	}
	g.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "livegen_tx",
		Type:         ebpf.XDP,
		License:      "Dual MIT/GPL",
		Instructions: injector(g.state.FD(), g.templates.FD()),
	})
	if err != nil {
		return fmt.Errorf("load injecting program: %w", err)
	}
	return nil
}

// injector is the program. Per run: take the cursor, advance it, pick
// flow cursor % active, grow the frame to MaxFrameLen, write the flow's
// first HeaderRoom bytes, trim the frame to the flow's length, XDP_TX.
// Anything unexpected ends in XDP_ABORTED, which the veth counters then
// show as a frame that was not delivered.
func injector(stateFD, templatesFD int) asm.Instructions {
	const (
		xdpAborted = 0
		xdpTX      = 3
	)
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // ctx
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, stateFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "abort"),
		asm.LoadMem(asm.R8, asm.R0, 0, asm.DWord), // cursor
		asm.Mov.Reg(asm.R1, asm.R8),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R9, asm.R0, 8, asm.DWord), // active
		asm.JEq.Imm(asm.R9, 0, "abort"),
		asm.Mod.Reg(asm.R8, asm.R9),
		asm.StoreMem(asm.RFP, -8, asm.R8, asm.Word),
		asm.LoadMapPtr(asm.R1, templatesFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "abort"),
		asm.Mov.Reg(asm.R7, asm.R0), // template
		// A page may come back from the pool with the length of its last
		// run, so set it absolutely: first to the full length.
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnXdpGetBuffLen.Call(),
		asm.Mov.Imm(asm.R2, MaxFrameLen),
		asm.Sub.Reg(asm.R2, asm.R0),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnXdpAdjustTail.Call(),
		asm.JNE.Imm(asm.R0, 0, "abort"),
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, HeaderRoom),
		asm.JGT.Reg(asm.R4, asm.R3, "abort"),
	}
	for off := int16(0); off < HeaderRoom; off += 8 {
		insns = append(insns,
			asm.LoadMem(asm.R5, asm.R7, 8+off, asm.DWord),
			asm.StoreMem(asm.R2, off, asm.R5, asm.DWord),
		)
	}
	return append(insns,
		asm.LoadMem(asm.R2, asm.R7, 0, asm.Word), // the flow's length
		asm.Add.Imm(asm.R2, -MaxFrameLen),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnXdpAdjustTail.Call(),
		asm.JNE.Imm(asm.R0, 0, "abort"),
		asm.Mov.Imm(asm.R0, xdpTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpAborted).WithSymbol("abort"),
		asm.Return(),
	)
}

// Close frees the program, its maps and the socket.
func (g *Generator) Close() error {
	var errs []error
	if g.prog != nil {
		errs = append(errs, g.prog.Close())
	}
	if g.templates != nil {
		errs = append(errs, g.templates.Close())
	}
	if g.state != nil {
		errs = append(errs, g.state.Close())
	}
	if g.sock >= 0 {
		errs = append(errs, unix.Close(g.sock))
		g.sock = -1
	}
	return errors.Join(errs...)
}

// Ifindex is the sending interface's index in its namespace.
func (g *Generator) Ifindex() int { return g.ifindex }

// Send sends every frame Count times, interleaved round-robin, as fast as
// the kernel goes. It makes one kernel call per distinct Count, each
// bounded by its repetitions, and checks ctx between calls.
func (g *Generator) Send(ctx context.Context, frames []Frame) (Report, error) {
	var rep Report
	if len(frames) == 0 || len(frames) > g.maxFlows {
		return rep, fmt.Errorf("%d frames: want 1 to %d", len(frames), g.maxFlows)
	}
	// Flows in the map in order of falling Count: a call with active = n
	// serves exactly the n flows that still need copies.
	order := make([]int, len(frames))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(frames[b].Count, frames[a].Count) })
	for slot, i := range order {
		f := frames[i]
		if len(f.Data) < 14 || len(f.Data) > MaxFrameLen {
			return rep, fmt.Errorf("frame %d: %d bytes, want 14 to %d", i, len(f.Data), MaxFrameLen)
		}
		if slices.ContainsFunc(f.Data[min(len(f.Data), HeaderRoom):], func(b byte) bool { return b != 0 }) {
			return rep, fmt.Errorf("frame %d: bytes past the first %d must be zero", i, HeaderRoom)
		}
		t := template{Len: uint32(len(f.Data))}
		copy(t.Head[:], f.Data)
		if err := g.templates.Put(uint32(slot), &t); err != nil {
			return rep, fmt.Errorf("store frame %d: %w", i, err)
		}
	}
	base := make([]byte, MaxFrameLen)

	err := g.inNetns(func() error {
		start := time.Now()
		defer func() { rep.Elapsed = time.Since(start) }()
		var sent uint32
		for n := len(order); n > 0; {
			// Flows 0..n-1 all need at least rounds more copies.
			rounds := frames[order[n-1]].Count - sent
			if rounds > 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := g.call(base, n, uint64(rounds)*uint64(n), &rep); err != nil {
					return err
				}
				sent += rounds
			}
			for n > 0 && frames[order[n-1]].Count == sent {
				n--
			}
		}
		return nil
	})
	return rep, err
}

// call runs the program total times with flows 0..active-1 in rotation.
func (g *Generator) call(base []byte, active int, total uint64, rep *Report) error {
	if err := g.state.Put(uint32(0), [2]uint64{0, uint64(active)}); err != nil {
		return fmt.Errorf("reset state: %w", err)
	}
	x0, err := g.stats.xmit()
	if err != nil {
		return err
	}
	var runs uint64
	for runs < total {
		repeat := uint32(min(total-runs, 1<<31))
		// A signal interrupts the kernel between batches with EINTR and
		// no count: the cursor says how far it got, and the rotation
		// carries on from there.
		d, err := g.testRun(base, repeat)
		cur, cerr := g.cursor()
		if cerr != nil {
			return cerr
		}
		rep.Calls++
		if err == nil {
			rep.KernelTime += d * time.Duration(cur-runs)
		}
		runs = cur
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
	}
	x1, err := g.stats.xmit()
	if err != nil {
		return err
	}
	delivered, refused := x1.delivered-x0.delivered, x1.refused-x0.refused
	rep.Runs += runs
	rep.Delivered += delivered
	rep.Refused += refused
	if runs != total || delivered != runs {
		return fmt.Errorf("of %d frames for %d flows, the program ran %d times and the veth delivered %d, refused %d: %w",
			total, active, runs, delivered, refused, ErrNotDelivered)
	}
	return nil
}

func (g *Generator) cursor() (uint64, error) {
	var v [2]uint64
	if err := g.state.Lookup(uint32(0), &v); err != nil {
		return 0, fmt.Errorf("read cursor: %w", err)
	}
	return v[0], nil
}

// xdpMD is struct xdp_md, the XDP context.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// progRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr. The call is
// made here rather than through ebpf.Program.Run, which repeats the whole
// run after EINTR and so would send frames twice.
type progRunAttr struct {
	ProgFD      uint32
	Retval      uint32
	DataSizeIn  uint32
	DataSizeOut uint32
	DataIn      uint64
	DataOut     uint64
	Repeat      uint32
	Duration    uint32
	CtxSizeIn   uint32
	CtxSizeOut  uint32
	CtxIn       uint64
	CtxOut      uint64
	Flags       uint32
	CPU         uint32
	BatchSize   uint32
	_           uint32
}

// testRun returns the kernel-measured time per run.
func (g *Generator) testRun(data []byte, repeat uint32) (time.Duration, error) {
	batch := g.BatchSize
	if batch == 0 {
		batch = DefaultBatchSize
	}
	ctx := xdpMD{DataEnd: uint32(len(data)), IngressIfindex: uint32(g.ifindex)}
	attr := progRunAttr{
		ProgFD:     uint32(g.prog.FD()),
		DataSizeIn: uint32(len(data)),
		DataIn:     uint64(uintptr(unsafe.Pointer(&data[0]))),
		Repeat:     repeat,
		CtxSizeIn:  uint32(unsafe.Sizeof(ctx)),
		CtxIn:      uint64(uintptr(unsafe.Pointer(&ctx))),
		Flags:      unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize:  batch,
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(data)
	runtime.KeepAlive(&ctx)
	if errno != 0 {
		return 0, fmt.Errorf("BPF_PROG_TEST_RUN in live-frames mode on %s: %w", g.ifname, errno)
	}
	return time.Duration(attr.Duration), nil
}

func ifindex(sock int, ifname string) (int, error) {
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, fmt.Errorf("interface %q: %w", ifname, err)
	}
	if err := unix.IoctlIfreq(sock, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("look up interface %q: %w", ifname, err)
	}
	return int(ifr.Uint32()), nil
}

// ethtoolStats reads a veth's XDP transmit counters, as ethtool -S shows
// them: tx_queue_N_xdp_xmit counts frames queued on the peer,
// tx_queue_N_xdp_xmit_errors frames it refused.
type ethtoolStats struct {
	sock      int
	ifname    string
	n         int
	delivered []int // indexes of the xdp_xmit counters
	refused   []int // indexes of the xdp_xmit_errors counters
}

func newEthtoolStats(sock int, ifname string) (*ethtoolStats, error) {
	names, err := ethtool.StatNames(sock, ifname)
	if err != nil {
		return nil, err
	}
	s := &ethtoolStats{sock: sock, ifname: ifname, n: len(names)}
	for i, name := range names {
		if !strings.HasPrefix(name, "tx_queue_") {
			continue
		}
		switch {
		case strings.HasSuffix(name, "_xdp_xmit"):
			s.delivered = append(s.delivered, i)
		case strings.HasSuffix(name, "_xdp_xmit_errors"):
			s.refused = append(s.refused, i)
		}
	}
	if len(s.delivered) == 0 || len(s.refused) == 0 {
		return nil, fmt.Errorf("%s has no tx_queue_*_xdp_xmit counters: the generator needs a veth", ifname)
	}
	return s, nil
}

type xmitCounters struct{ delivered, refused uint64 }

func (s *ethtoolStats) xmit() (xmitCounters, error) {
	vals, err := ethtool.Stats(s.sock, s.ifname, s.n)
	if err != nil {
		return xmitCounters{}, err
	}
	var c xmitCounters
	for _, i := range s.delivered {
		c.delivered += vals[i]
	}
	for _, i := range s.refused {
		c.refused += vals[i]
	}
	return c, nil
}
