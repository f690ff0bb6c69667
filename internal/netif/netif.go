// Package netif finds the network interfaces to watch, and reads their
// own counters.
package netif

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Interface is a resolved network interface.
type Interface struct {
	Name  string
	Index int
	// Driver is the link type as netlink reports it (veth, device, ...).
	Driver string
	// Several is set when the run watches several interfaces (several.go):
	// Name is then their label and Index 0.
	Several *Several
}

// Resolve returns the interface named name. An empty name picks the
// interface of the default route, else the first interface that is up, is
// not a loopback and has a MAC address.
func Resolve(name string) (Interface, error) {
	if name != "" {
		l, err := netlink.LinkByName(name)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
				return Interface{}, fmt.Errorf("interface %q not found (available: %s)", name, available())
			}
			return Interface{}, fmt.Errorf("look up interface %q: %w", name, err)
		}
		return fromLink(l), nil
	}
	if l, ok := defaultRouteLink(); ok {
		return fromLink(l), nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return Interface{}, fmt.Errorf("list interfaces: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagUp != 0 && a.Flags&net.FlagLoopback == 0 && len(a.HardwareAddr) > 0 {
			return fromLink(l), nil
		}
	}
	return Interface{}, errors.New("no interface to watch: there is no default route and no interface is up with a MAC address; name one with -i")
}

func fromLink(l netlink.Link) Interface {
	return Interface{Name: l.Attrs().Name, Index: l.Attrs().Index, Driver: l.Type()}
}

func defaultRouteLink() (netlink.Link, bool) {
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteList(nil, family)
		if err != nil {
			continue
		}
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask)) && r.LinkIndex > 0 {
				if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
					return l, true
				}
			}
		}
	}
	return nil, false
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

func available() string {
	links, err := netlink.LinkList()
	if err != nil {
		return "unknown"
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
