package netif

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// Stats are an interface's own counters. They count what the driver and
// the core stack saw: a GSO/GRO skb is one packet there.
type Stats struct {
	RxPackets, TxPackets uint64
	RxDropped, TxDropped uint64
}

// ReadStats reads the counters of the interface with index ifindex.
func ReadStats(ifindex int) (Stats, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return Stats{}, fmt.Errorf("read counters of interface %d: %w", ifindex, err)
	}
	s := l.Attrs().Statistics
	if s == nil {
		return Stats{}, fmt.Errorf("interface %s reports no counters", l.Attrs().Name)
	}
	return Stats{
		RxPackets: s.RxPackets,
		TxPackets: s.TxPackets,
		// Missed frames never reached the stack either.
		RxDropped: s.RxDropped + s.RxMissedErrors,
		TxDropped: s.TxDropped,
	}, nil
}

// Sub returns the change from earlier to s.
func (s Stats) Sub(earlier Stats) Stats {
	return Stats{
		RxPackets: s.RxPackets - earlier.RxPackets,
		TxPackets: s.TxPackets - earlier.TxPackets,
		RxDropped: s.RxDropped - earlier.RxDropped,
		TxDropped: s.TxDropped - earlier.TxDropped,
	}
}
