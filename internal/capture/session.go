package capture

import (
	"errors"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/owners"
)

// session is what every mode's capture is once its programs are loaded:
// a flow table to drain, programs to take off their hooks, and kernel
// objects to free. Each mode embeds one and sets what it has; K is its
// table's key type.
type session[K comparable] struct {
	table *flowtable.Table[K]
	// namer names the owners of each drain's rows, in the modes that
	// know them; nil elsewhere.
	namer *owners.Namer
	// detach takes the programs off their hooks; nil while nothing is
	// attached.
	detach  func() error
	free    func() error // frees the kernel objects
	stopped bool
}

// Stop detaches the programs; counting ends, and the table stays readable.
func (s *session[K]) Stop() error {
	if s.stopped || s.detach == nil {
		return nil
	}
	s.stopped = true
	return s.detach()
}

// Drain returns every count since the previous Drain, each exactly once.
func (s *session[K]) Drain() (flow.Snapshot, error) {
	if s.namer != nil {
		return s.namer.Drain(s.table.Drain)
	}
	return s.table.Drain(nil)
}

// Close detaches the programs and frees the kernel objects.
func (s *session[K]) Close() error {
	errs := []error{s.Stop()}
	if s.table != nil {
		errs = append(errs, s.table.Close())
		s.table = nil
	}
	if s.free != nil {
		errs = append(errs, s.free())
		s.free = nil
	}
	return errors.Join(errs...)
}
