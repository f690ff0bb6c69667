package flowtable

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// KeyFromBPF converts the kernel's flow key into the model's.
func KeyFromBPF(k *bpfprog.FlowKey) flow.Key {
	fk := flow.Key{
		EtherType: k.EthProto,
		Proto:     k.Proto,
		SrcPort:   k.Sport,
		DstPort:   k.Dport,
		VLAN:      k.Vlan,
		Flags:     flow.Flags(k.Flags),
		Dir:       flow.Direction(k.Dir),
		Ifindex:   k.Ifindex,
	}
	switch k.EthProto {
	case flow.EtherTypeIPv4, flow.EtherTypeARP:
		// ARP rows carry the sender and target protocol addresses, IPv4
		// (or 0.0.0.0 for ARP of another protocol, and with --no-arp).
		fk.Src = netip.AddrFrom4([4]byte(k.Saddr[:4]))
		fk.Dst = netip.AddrFrom4([4]byte(k.Daddr[:4]))
	case flow.EtherTypeIPv6:
		fk.Src = netip.AddrFrom16(k.Saddr)
		fk.Dst = netip.AddrFrom16(k.Daddr)
	}
	return fk
}

// OwnedKeyFromBPF converts the flow part of an owner-keyed row into the
// model's key; the owner is left for the caller to name.
func OwnedKeyFromBPF(k *bpfprog.OwnedFlowKey) flow.Key {
	f := &k.Flow
	return KeyFromBPF(&bpfprog.FlowKey{
		Saddr:    f.Saddr,
		Daddr:    f.Daddr,
		Sport:    f.Sport,
		Dport:    f.Dport,
		EthProto: f.EthProto,
		Vlan:     f.Vlan,
		Proto:    f.Proto,
		Flags:    bpfprog.TCFlowFlags(f.Flags),
		Dir:      bpfprog.TCFlowDir(f.Dir),
		Ifindex:  f.Ifindex,
	})
}

// CacheSlot is the flow-cache slot the programs give k in a cache of
// 2^bits entries per generation: flow_cache_slot in
// bpf/include/account_l7.h, the key's six 64-bit words summed, times
// 2^64 / φ, top bits.
func CacheSlot(k *bpfprog.FlowKey, bits uint32) uint32 {
	raw := (*[48]byte)(unsafe.Pointer(k))
	var h uint64
	for w := 0; w < 6; w++ {
		h += binary.LittleEndian.Uint64(raw[8*w:])
	}
	return uint32((h * 0x9E3779B97F4A7C15) >> (64 - bits))
}
