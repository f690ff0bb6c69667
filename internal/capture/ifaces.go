package capture

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
)

// ifaceSet is a TC or XDP capture's programs on several interfaces: the
// ones named, or with -i any every one that is up, then each that comes
// up while the run lasts. Each interface gets its own attachment (and its
// own fallback: TCX or legacy tc, native or generic XDP), and one flow
// table counts them all, the interface in each key.
type ifaceSet struct {
	o   netif.Several
	log *slog.Logger
	// attach puts the programs on one interface; mode says how they went.
	attach func(netif.Interface) (a io.Closer, mode string, err error)

	mu sync.Mutex
	on map[int]*attachedIface // what is attached now, by ifindex
	// names holds every interface ever attached, by index, so that rows
	// drained after an interface vanished still name it.
	names  map[uint32]string
	closed bool
	// stopping is set before stop closes: the subscription's error on
	// the way out is no news.
	stopping atomic.Bool
	stop     chan struct{}   // ends the follower
	done     <-chan struct{} // closed when the follower has ended
}

type attachedIface struct {
	ifc  netif.Interface
	a    io.Closer
	mode string
}

// newIfaceSet returns the set of the interfaces o names, nothing attached
// yet; nil when o is nil (the capture watches one interface).
func newIfaceSet(o *netif.Several, log *slog.Logger) *ifaceSet {
	if o == nil {
		return nil
	}
	return &ifaceSet{o: *o, log: orDiscard(log), on: map[int]*attachedIface{}, names: map[uint32]string{}}
}

// keyFromBPF converts a kernel key and names its interface; without a set
// (one interface watched) rows name none, as they always did.
func (s *ifaceSet) keyFromBPF(k *bpfprog.FlowKey) flow.Key {
	fk := flowtable.KeyFromBPF(k)
	if s == nil {
		return fk
	}
	s.mu.Lock()
	name, ok := s.names[k.Ifindex]
	s.mu.Unlock()
	if !ok {
		name = fmt.Sprintf("ifindex %d", k.Ifindex)
	}
	fk.Iface = name
	return fk
}

// start attaches to every interface of the set with attach and, with
// Follow, starts following interfaces that come and go. An interface
// named with -i that cannot be attached is an error, and nothing stays
// attached; with -i any, such an interface is skipped with a warning.
func (s *ifaceSet) start(attach func(netif.Interface) (io.Closer, string, error)) error {
	s.attach = attach
	if s.o.Follow {
		// Subscribed first: an interface that comes up from here on is
		// either in the list below or in a notification.
		s.stop = make(chan struct{})
		done, err := netif.Follow(s.stop, s.change, func(err error) {
			if s.stopping.Load() {
				return
			}
			s.log.Warn("link notifications failed: interfaces that appear from now on are not watched", "error", err)
		})
		if err != nil {
			return err
		}
		s.done = done
		list, err := netif.ResolveSeveral([]string{"any"})
		if err != nil {
			return errors.Join(err, s.Close())
		}
		s.o.List = list.List
	}
	for _, ifc := range s.o.List {
		if err := s.add(ifc); err != nil && !s.o.Follow {
			return errors.Join(fmt.Errorf("attach to %s: %w", ifc.Name, err), s.Close())
		}
	}
	return nil
}

// change follows one link notification of -i any.
func (s *ifaceSet) change(c netif.Change) {
	if c.Gone {
		s.forget(c.Interface)
		return
	}
	s.mu.Lock()
	_, known := s.on[c.Index]
	s.mu.Unlock()
	if !known {
		s.add(c.Interface)
	}
}

// add attaches to ifc unless the set is closed or it is attached already.
func (s *ifaceSet) add(ifc netif.Interface) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.on[ifc.Index] != nil {
		return nil
	}
	// Named before the programs run on it: no row of it goes unnamed.
	s.names[uint32(ifc.Index)] = ifc.Name
	a, mode, err := s.attach(ifc)
	if err != nil {
		s.log.Warn("could not attach to an interface; it is not watched", "iface", ifc.Name, "error", err)
		return err
	}
	s.on[ifc.Index] = &attachedIface{ifc: ifc, a: a, mode: mode}
	if s.o.Counters != nil {
		if err := s.o.Counters.Add(ifc); err != nil {
			s.log.Warn("the interface's own counters cannot be read; reports will not show them", "iface", ifc.Name, "error", err)
		}
	}
	s.log.Info("attached", "iface", ifc.Name, "ifindex", ifc.Index, "method", mode)
	return nil
}

// forget lets go of an interface that vanished: what was attached to it
// went with it, and closing the attachment frees what the run held.
func (s *ifaceSet) forget(ifc netif.Interface) {
	s.mu.Lock()
	defer s.mu.Unlock()
	on := s.on[ifc.Index]
	if on == nil {
		return
	}
	delete(s.on, ifc.Index)
	if s.o.Counters != nil {
		s.o.Counters.Remove(ifc.Index)
	}
	if err := on.a.Close(); err != nil {
		s.log.Warn("detaching from a vanished interface", "iface", on.ifc.Name, "error", err)
	}
	s.log.Info("interface vanished; its rows so far stay in the report", "iface", on.ifc.Name, "ifindex", ifc.Index)
}

// modes lists the ways the programs are attached, each once, in order:
// "tcx", "legacy,tcx", "native".
func (s *ifaceSet) modes() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ms []string
	for _, on := range s.on {
		if !slices.Contains(ms, on.mode) {
			ms = append(ms, on.mode)
		}
	}
	slices.Sort(ms)
	if len(ms) == 0 {
		return "none yet"
	}
	return strings.Join(ms, ",")
}

// Close stops following interfaces and detaches from every one.
func (s *ifaceSet) Close() error {
	if s.stop != nil {
		s.stopping.Store(true)
		close(s.stop)
		s.stop = nil
		if s.done != nil {
			<-s.done
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for idx, on := range s.on {
		if err := on.a.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach from %s: %w", on.ifc.Name, err))
		}
		delete(s.on, idx)
	}
	return errors.Join(errs...)
}
