// Package capture runs the eBPF programs of one capture mode: it loads them,
// attaches them through internal/attach, and reads the flow table back into
// the pure-Go model of internal/flow.
package capture

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Snapshot is the flow table as read at one moment.
type Snapshot struct {
	Flows map[flow.Key]flow.Counters
	// Untracked is traffic that was counted but got no row, because the
	// flow table was full.
	Untracked flow.Counters
}

// maps are the kernel maps every mode shares.
type maps struct {
	flows     *ebpf.Map
	untracked *ebpf.Map
}

// read sums every flow's per-CPU counters into a Snapshot.
func (m maps) read() (Snapshot, error) {
	s := Snapshot{Flows: make(map[flow.Key]flow.Counters, m.flows.MaxEntries()/8)}
	var (
		key    bpfprog.TCFlowKey
		perCPU []bpfprog.TCFlowVal
	)
	it := m.flows.Iterate()
	for it.Next(&key, &perCPU) {
		var c flow.Counters
		for _, v := range perCPU {
			c.Add(flow.Counters{Packets: v.Packets, Bytes: v.Bytes})
		}
		k := KeyFromBPF(&key)
		old := s.Flows[k]
		old.Add(c)
		s.Flows[k] = old
	}
	if err := it.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("read flow table: %w", err)
	}
	var lost []bpfprog.TCFlowVal
	if err := m.untracked.Lookup(uint32(0), &lost); err != nil {
		return Snapshot{}, fmt.Errorf("read untracked counters: %w", err)
	}
	for _, v := range lost {
		s.Untracked.Add(flow.Counters{Packets: v.Packets, Bytes: v.Bytes})
	}
	return s, nil
}

// KeyFromBPF converts the kernel's flow key into the model's.
func KeyFromBPF(k *bpfprog.TCFlowKey) flow.Key {
	fk := flow.Key{
		EtherType: k.EthProto,
		Proto:     k.Proto,
		SrcPort:   k.Sport,
		DstPort:   k.Dport,
		VLAN:      k.Vlan,
		Flags:     flow.Flags(k.Flags),
	}
	switch k.EthProto {
	case flow.EtherTypeIPv4:
		fk.Src = netip.AddrFrom4([4]byte(k.Saddr[:4]))
		fk.Dst = netip.AddrFrom4([4]byte(k.Daddr[:4]))
	case flow.EtherTypeIPv6:
		fk.Src = netip.AddrFrom16(k.Saddr)
		fk.Dst = netip.AddrFrom16(k.Daddr)
	}
	return fk
}

// loadError explains the usual reasons a load fails.
func loadError(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("load eBPF programs: %w: run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON", err)
	}
	return fmt.Errorf("load eBPF programs: %w", err)
}

// Source is a running capture in any mode.
type Source interface {
	// Read returns the flow table as it is now.
	Read() (Snapshot, error)
	// Stop detaches the programs: counting ends, the table stays readable.
	Stop() error
	// Close detaches the programs and frees the kernel objects.
	Close() error
	// Describe names the mode and how it is attached, for the log.
	Describe() string
}
