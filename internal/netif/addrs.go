package netif

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Addrs returns the IPv4 and IPv6 addresses assigned to the interface with
// the given index, link-local ones included; index 0 means every interface
// of the network namespace. Views that split traffic into "in" and "out"
// use them: a packet whose source is one of them was sent by this host.
func Addrs(index int) ([]netip.Addr, error) {
	var l netlink.Link // nil lists every interface's addresses
	if index != 0 {
		var err error
		if l, err = netlink.LinkByIndex(index); err != nil {
			return nil, fmt.Errorf("look up interface %d: %w", index, err)
		}
	}
	list, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of interface %d: %w", index, err)
	}
	out := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}
