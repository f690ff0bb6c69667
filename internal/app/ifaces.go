package app

import (
	"log/slog"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
	"github.com/pktstat-bpf/pktstat-bpf/internal/report"
)

// resolveSeveral finds the interfaces of a run that watches several (-i
// any, or more than one -i). The Interface it returns stands for all of
// them: its Name labels the set ("any", or the names given), its Index is
// 0, and Several holds the interfaces and their counters.
func resolveSeveral(cfg cli.Config) (netif.Interface, slog.Attr, error) {
	s, err := netif.ResolveSeveral(cfg.Ifaces.Names())
	if err != nil {
		return netif.Interface{}, slog.Attr{}, err
	}
	return netif.Interface{Name: s.Label(), Several: s}, slog.String("iface", s.Label()), nil
}

// severalCounters is each watched interface's own counters over the
// period that ends now, for a run that watches several; never nil, so
// that reports list them even when there are none.
func (p *periods) severalCounters() []report.Iface {
	named, err := p.ifc.Several.Counters.Next()
	if err != nil {
		p.log.Warn("an interface's own counters cannot be read; the report leaves it out", "error", err)
	}
	out := make([]report.Iface, 0, len(named))
	for _, n := range named {
		out = append(out, report.Iface{Name: n.Name, RxPackets: n.RxPackets, TxPackets: n.TxPackets,
			RxDropped: n.RxDropped, TxDropped: n.TxDropped})
		if n.RxDropped+n.TxDropped > 0 {
			p.log.Warn("the interface dropped packets the hook may not have seen",
				"iface", n.Name, "rx_dropped", n.RxDropped, "tx_dropped", n.TxDropped)
		}
	}
	return out
}
