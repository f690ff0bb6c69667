package capture

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
)

// XDPOptions configure an XDP capture.
type XDPOptions struct {
	Ifindex    int
	MaxEntries uint32
	Attach     attach.XDPMode
	Log        *slog.Logger
	// NoARP counts ARP frames without their opcode and addresses.
	NoARP bool
	// Filter is the filter expression; nil counts every packet.
	Filter *filter.Filter
	// Several, when set, are the interfaces to watch instead of Ifindex
	// (xdp_several.go): rows then name their interface.
	Several *netif.Several
}

// XDP counts the ingress of one interface with an XDP program.
type XDP struct {
	session[bpfprog.FlowKey]
	objs  bpfprog.XDPObjects
	xdp   *attach.XDP
	frags bool
	set   *ifaceSet // several interfaces; nil with one
}

// StartXDP loads the XDP program and attaches it. Counting starts when it
// returns.
func StartXDP(o XDPOptions) (*XDP, error) {
	if err := checkMemory(o.MaxEntries); err != nil {
		return nil, err
	}
	multiBuffer, err := ProbeXDPFrags()
	if err != nil {
		return nil, err
	}
	if o.Several != nil {
		return startXDPSeveral(o, multiBuffer)
	}
	mtu := 0
	if ifc, err := net.InterfaceByIndex(o.Ifindex); err == nil {
		mtu = ifc.MTU
	}
	var x *XDP
	progFor := func(m attach.XDPMode) (*ebpf.Program, error) {
		frags := multiBuffer && (m != attach.XDPNative || mtu > singleBufferMTU)
		if x != nil && x.frags == frags {
			return x.objs.PktstatXdp, nil
		}
		if x != nil {
			// Nothing is attached yet, so nothing was counted.
			x.Close()
		}
		layout, err := defaultLayout()
		if err != nil {
			return nil, err
		}
		x, err = loadXDPWith(xdpLoad{maxEntries: o.MaxEntries, frags: frags, offload: m == attach.XDPOffload,
			ifindex: o.Ifindex, noARP: o.NoARP, layout: layout, log: o.Log, filter: o.Filter})
		if err != nil {
			return nil, err
		}
		return x.objs.PktstatXdp, nil
	}
	xdp, err := attach.AttachXDP(o.Ifindex, progFor, o.Attach, o.Log)
	if err != nil {
		if x != nil {
			x.Close()
		}
		return nil, err
	}
	x.xdp = xdp
	x.detach = xdp.Close
	return x, nil
}

// singleBufferMTU is the largest MTU at which native XDP gets the
// single-buffer program. Every driver with native XDP fits a frame of the
// standard Ethernet MTU in one buffer, and a driver refuses to raise the
// MTU past what one buffer holds while a single-buffer program is
// attached, so that program never meets a multi-buffer frame and reads a
// frame's length from its bounds, without the helper call that the
// multi-buffer program pays for on every frame. Generic XDP always gets
// the multi-buffer program: it works on skbs, which a single-buffer
// program would make the kernel linearize.
const singleBufferMTU = 1500

// ProbeXDPFrags reports whether the kernel hands XDP programs multi-buffer
// frames (Linux 5.18+): BPF_F_XDP_HAS_FRAGS and bpf_xdp_get_buff_len came
// together, so the helper's presence stands for both.
func ProbeXDPFrags() (bool, error) {
	return haveHelper(ebpf.XDP, asm.FnXdpGetBuffLen, "multi-buffer XDP support")
}

// xdpLoad says how loadXDPWith loads the XDP object. With frags, the
// program is marked as accepting multi-buffer frames and counts their full
// length; without, it is the plain program that older kernels accept. For
// offload, the program is bound to ifindex at load time, as the kernel
// requires. noARP is --no-arp.
type xdpLoad struct {
	maxEntries     uint32
	frags, offload bool
	ifindex        int
	noARP          bool
	layout         flowtable.Layout // the flow table's; Default: this kernel's
	noCache        bool             // tests: no flow cache (flow_cache_on off)
	fullParse      bool             // tests: the full parser only (parse_fast_on off)
	cacheBits      uint32           // tests: the flow cache's size (flowtable.SizeCache); 0: this machine's
	log            *slog.Logger     // warns of extras the kernel refuses
	filter         *filter.Filter   // nil: no filter
	set            *ifaceSet        // several interfaces, which name the rows; nil with one
}

// loadXDPWith loads the XDP object as o says.
func loadXDPWith(o xdpLoad) (*XDP, error) {
	maxEntries, frags, offload, ifindex := o.maxEntries, o.frags, o.offload, o.ifindex
	spec, err := sizedSpec(bpfprog.LoadXDP, "XDP", maxEntries, o.layout)
	if err != nil {
		return nil, err
	}
	if err := spec.Variables[bpfprog.XDPVarFragsAware].Set(frags); err != nil {
		return nil, fmt.Errorf("set frags_aware: %w", err)
	}
	if err := spec.Variables[bpfprog.XDPVarArpDetail].Set(!o.noARP); err != nil {
		return nil, fmt.Errorf("set arp_detail: %w", err)
	}
	if err := spec.Variables[bpfprog.XDPVarFlowCacheOn].Set(!o.noCache); err != nil {
		return nil, fmt.Errorf("set flow_cache_on: %w", err)
	}
	if err := spec.Variables[bpfprog.XDPVarParseFastOn].Set(!o.fullParse); err != nil {
		return nil, fmt.Errorf("set parse_fast_on: %w", err)
	}
	if o.cacheBits != 0 {
		if err := flowtable.SizeCache(spec, o.cacheBits); err != nil {
			return nil, err
		}
	}
	if err := applyFilter(spec, o.filter); err != nil {
		return nil, err
	}
	prog := spec.Programs[bpfprog.XDPProgPktstatXdp]
	if frags {
		prog.Flags |= unix.BPF_F_XDP_HAS_FRAGS
	}
	if offload {
		prog.Ifindex = uint32(ifindex)
	}
	log := orDiscard(o.log)
	x := &XDP{frags: frags, set: o.set}
	x.free = x.objs.Close
	err = loadDegrading(spec, []extra{l7Detection}, log, func(s *ebpf.CollectionSpec) error {
		return s.LoadAndAssign(&x.objs, nil)
	})
	if err != nil {
		if offload {
			name := ifaceName(ifindex)
			return nil, fmt.Errorf("load XDP in offload mode for %s: driver %s cannot run this program on the device (try --xdp_mode native or generic): %w",
				name, attach.DriverName(name), err)
		}
		return nil, loadError(err, maxEntries)
	}
	x.table, err = flowtable.New(flowtable.Maps{
		Slot:      x.objs.FlowTables,
		Flows:     x.objs.Flows,
		Untracked: x.objs.Untracked,
		HLL:       x.objs.UntrackedHll,
		Filtered:  x.objs.Filtered,
		Gen:       x.objs.UntrackedGen,
		Rows:      x.objs.ArrayRows,
		Cache:     x.objs.FlowCache,
	}, spec.Maps[bpfprog.XDPMapFlows], o.set.keyFromBPF)
	if err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}

// Mode says how the program is attached; on several interfaces, every
// way it is, joined by commas ("generic,native").
func (x *XDP) Mode() attach.XDPMode {
	if x.set != nil {
		return attach.XDPMode(x.set.modes())
	}
	return x.xdp.Mode()
}

// Frags reports whether the program counts multi-buffer frames in full.
func (x *XDP) Frags() bool { return x.frags }

// Describe names the mode and the attach method.
func (x *XDP) Describe() string { return "xdp/" + string(x.Mode()) }

func ifaceName(ifindex int) string {
	if ifc, err := net.InterfaceByIndex(ifindex); err == nil {
		return ifc.Name
	}
	return fmt.Sprintf("ifindex %d", ifindex)
}
