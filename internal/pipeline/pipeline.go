// Package pipeline owns draining the kernel's flow table. A drain returns
// every count since the previous drain, exactly once (see internal/capture),
// so only one place may drain, and every consumer must see every drain: the
// Pipeline is that place. Each consumer is a Sink that folds the drains
// into its own state, once: the report's ledger, the Prometheus counters
// and top-flow window, and later exporters. Adding a consumer is one
// Register call.
package pipeline

import (
	"errors"
	"sync"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Source drains a running capture: every count since the previous Drain.
type Source interface {
	Drain() (flow.Snapshot, error)
}

// Sink folds drains. Fold runs under the pipeline's lock, once per drain,
// in the order drains happen; at is when the drain started (the end of the
// period it covers). Every drain's rows are a slice of their own, which a
// sink may keep but must not change: every sink sees the same rows.
type Sink interface {
	Fold(s *flow.Snapshot, at time.Time)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(s *flow.Snapshot, at time.Time)

// Fold calls f.
func (f SinkFunc) Fold(s *flow.Snapshot, at time.Time) { f(s, at) }

// Pipeline serializes the drains of one source and hands each to every
// registered sink.
type Pipeline struct {
	mu    sync.Mutex
	src   Source
	now   func() time.Time
	sinks []Sink
}

// New returns a pipeline over src with no sinks. now is the clock (nil:
// time.Now).
func New(src Source, now func() time.Time) *Pipeline {
	if now == nil {
		now = time.Now
	}
	return &Pipeline{src: src, now: now}
}

// Register adds a sink: it sees every drain from the next one on.
func (p *Pipeline) Register(s Sink) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sinks = append(p.sinks, s)
}

// Drain drains the source once, hands the snapshot to every sink, and
// returns it with the time the drain started. A failed drain reaches no
// sink, except one that failed part of the way (flow.ErrPartialDrain):
// the counts it read are in no other drain, so every sink gets them, and
// the error is returned too.
func (p *Pipeline) Drain() (flow.Snapshot, time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.now()
	s, err := p.src.Drain()
	if err != nil && !errors.Is(err, flow.ErrPartialDrain) {
		return flow.Snapshot{}, at, err
	}
	for _, sink := range p.sinks {
		sink.Fold(&s, at)
	}
	return s, at, err
}
