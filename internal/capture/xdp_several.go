package capture

import (
	"io"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/attach"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
)

// startXDPSeveral loads the XDP program once and attaches it to each of
// several interfaces, each with its own mode fallback (native, else
// generic, in auto mode). One program must suit every interface, those
// that come later included, so it is the multi-buffer one wherever the
// kernel has multi-buffer XDP: it runs in either mode at any MTU, at the
// cost of a helper call per frame that a single-buffer program on a
// standard-MTU native interface saves (docs/performance.md). Offload,
// which binds a program to one device, is refused for several
// interfaces before this (internal/cli).
func startXDPSeveral(o XDPOptions, multiBuffer bool) (*XDP, error) {
	layout, err := defaultLayout()
	if err != nil {
		return nil, err
	}
	set := newIfaceSet(o.Several, o.Log)
	x, err := loadXDPWith(xdpLoad{maxEntries: o.MaxEntries, frags: multiBuffer, noARP: o.NoARP,
		layout: layout, log: o.Log, filter: o.Filter, set: set})
	if err != nil {
		return nil, err
	}
	prog := func(attach.XDPMode) (*ebpf.Program, error) { return x.objs.PktstatXdp, nil }
	x.detach = set.Close
	err = set.start(func(ifc netif.Interface) (io.Closer, string, error) {
		a, err := attach.AttachXDP(ifc.Index, prog, o.Attach, o.Log)
		if err != nil {
			return nil, "", err
		}
		return a, string(a.Mode()), nil
	})
	if err != nil {
		x.Close()
		return nil, err
	}
	return x, nil
}
