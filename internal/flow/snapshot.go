package flow

import "errors"

// ErrPartialDrain marks the error of a drain that failed part of the way:
// the snapshot returned with it holds every count read before the failure,
// which the kernel no longer has, and must be counted like any other; what
// was not read stays in the kernel for the next drain.
var ErrPartialDrain = errors.New("the flow table was read only in part")

// Snapshot is what the kernel counted over one period: from the start of
// the capture or the previous drain to this drain.
type Snapshot struct {
	// Flows has one row per flow, with counters and no rate.
	Flows []Flow
	// Untracked is traffic, by direction, that was counted but got no row,
	// because the flow table was full when its flow first appeared.
	Untracked [NumDirections]Counters
	// UntrackedFlows estimates how many distinct flows Untracked holds.
	UntrackedFlows uint64
	// Filtered is the traffic the filter expression dropped: counted in
	// the kernel, but in no row.
	Filtered Counters
}

// UntrackedTotal adds up Untracked over both directions.
func (s *Snapshot) UntrackedTotal() Counters {
	var c Counters
	for _, u := range s.Untracked {
		c.Add(u)
	}
	return c
}
