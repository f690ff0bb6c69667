package netif

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Several is what a run that watches several interfaces watches: the
// ones named with -i, or with -i any every interface that is up and not a
// loopback, then (Follow) every one that comes up later.
type Several struct {
	List   []Interface // the interfaces at the start, in the order given
	Follow bool        // -i any: interfaces that come up are watched too, and vanished ones forgotten
	// Counters follows the watched interfaces' own counters; the capture
	// adds each interface it attaches to and removes each that vanishes.
	Counters *Counters
}

// ResolveSeveral resolves the interfaces of names; the single name "any"
// stands for every interface that is up and not a loopback, now and
// later.
func ResolveSeveral(names []string) (*Several, error) {
	s := &Several{Counters: NewCounters()}
	if len(names) == 1 && names[0] == "any" {
		s.Follow = true
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list interfaces: %w", err)
		}
		for _, l := range links {
			if Watchable(l) {
				s.List = append(s.List, fromLink(l))
			}
		}
		return s, nil
	}
	for _, n := range names {
		ifc, err := Resolve(n)
		if err != nil {
			return nil, err
		}
		s.List = append(s.List, ifc)
	}
	return s, nil
}

// Label names what s watches, for the log and metrics: "any", or the
// names given, joined by commas.
func (s *Several) Label() string {
	if s.Follow {
		return "any"
	}
	names := make([]string, len(s.List))
	for i, ifc := range s.List {
		names[i] = ifc.Name
	}
	return strings.Join(names, ",")
}

// Watchable reports whether -i any watches l: it is up and not a loopback.
func Watchable(l netlink.Link) bool {
	f := l.Attrs().Flags
	return f&net.FlagUp != 0 && f&net.FlagLoopback == 0
}

// Change is an interface that came up or vanished.
type Change struct {
	Interface
	Gone bool // it vanished (deleted, or moved to another network namespace)
}

// Follow subscribes to the kernel's link notifications and, until stop is
// closed, calls fn for every interface that is up and not a loopback
// (Watchable) in a notification, and for every interface that vanishes.
// The same interface comes up in many notifications (each change of
// address or state sends one): fn sorts out which are new. It returns once
// subscribed, so that an interface listed after it returns cannot be
// missed; fn runs on a goroutine of its own, which has ended when done is
// closed.
func Follow(stop <-chan struct{}, fn func(Change), onErr func(error)) (done <-chan struct{}, err error) {
	ch := make(chan netlink.LinkUpdate, 64)
	err = netlink.LinkSubscribeWithOptions(ch, stop, netlink.LinkSubscribeOptions{ErrorCallback: onErr})
	if err != nil {
		return nil, fmt.Errorf("subscribe to link notifications: %w", err)
	}
	d := make(chan struct{})
	go func() {
		defer close(d)
		for {
			select {
			case <-stop:
				// The subscription closes ch once it sees stop; until
				// then it must not block on a send nobody takes.
				go func() {
					for range ch {
					}
				}()
				return
			case u, ok := <-ch:
				if !ok {
					return // the subscription ended; onErr has heard why
				}
				switch {
				case u.Header.Type == unix.RTM_DELLINK:
					fn(Change{Interface: fromLink(u.Link), Gone: true})
				case Watchable(u.Link):
					fn(Change{Interface: fromLink(u.Link)})
				}
			}
		}
	}()
	return d, nil
}

// Counters follows the own counters of a changing set of interfaces:
// each Next gives what each one counted since the previous Next, or
// since it was added.
type Counters struct {
	mu     sync.Mutex
	ifaces map[int]*counted
}

type counted struct {
	name  string
	since Stats
}

// NewCounters returns Counters that follow no interface yet.
func NewCounters() *Counters { return &Counters{ifaces: map[int]*counted{}} }

// Add starts following ifc's counters from now.
func (c *Counters) Add(ifc Interface) error {
	st, err := ReadStats(ifc.Index)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ifaces[ifc.Index] = &counted{name: ifc.Name, since: st}
	return nil
}

// Remove stops following the interface with index ifindex: it vanished,
// and its counters with it.
func (c *Counters) Remove(ifindex int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ifaces, ifindex)
}

// Named is one interface's counters over a period.
type Named struct {
	Name string
	Stats
}

// Next returns what each followed interface counted since the previous
// Next, by name; an interface whose counters cannot be read (it is
// vanishing) is left out, and its error returned.
func (c *Counters) Next() ([]Named, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		out  []Named
		errs []error
	)
	for idx, f := range c.ifaces {
		now, err := ReadStats(idx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Named{Name: f.name, Stats: now.Sub(f.since)})
		f.since = now
	}
	slices.SortFunc(out, func(a, b Named) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}
