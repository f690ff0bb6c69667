package offline

import (
	"bytes"
	"net"
	"net/netip"
	"time"
)

// Options say how packets without a recorded direction get one, and the
// link MTU above which a TCP packet is a GRO super-packet.
type Options struct {
	// ByMAC: a frame from this MAC is egress, any other ingress
	// (--direction-by-mac).
	ByMAC net.HardwareAddr
	// ByNet: a packet from an address in one of these prefixes is egress,
	// any other ingress (--direction-by-net).
	ByNet []netip.Prefix
	// MTU is the largest IP packet the link carries (default 1500).
	MTU int
	// MaxFlows bounds the TCP connections whose MSS is remembered, so
	// that memory stays bounded by the flow table, not the file.
	MaxFlows int
}

// Mark says why a frame's counts are less certain than the rest.
type Mark uint8

// The marks a frame can carry.
const (
	// MarkTruncated: the file holds only part of the frame (snap length).
	MarkTruncated Mark = 1 << iota
	// MarkSegmentsGuessed: a GRO super-packet of a connection whose MSS
	// is unknown, counted as one packet.
	MarkSegmentsGuessed
)

// Frame is one packet ready to replay: the bytes to run through the
// program, its direction, and the wire packets and bytes it stands for.
type Frame struct {
	Data []byte
	Out  bool
	// Segs and Bytes are the wire segments and bytes: a GRO super-packet
	// stands for Segs segments, each with its own copy of the headers.
	Segs, Bytes uint64
	Marks       Mark
	Time        time.Time
	// Shard is a hash of the connection, the same in both directions, so
	// that one worker runs every packet of a flow, in order.
	Shard uint32
}

// Planner turns packets into frames: it gives each its direction and
// counts GRO super-packets as the segments they merged.
type Planner struct {
	o Options
	// mss is the smallest MSS a connection's SYNs announced; largest is
	// the largest ordinary segment's payload by direction.
	mss     map[connKey]int
	largest map[dirKey]int
}

type dirKey struct {
	src, dst     netip.Addr
	sport, dport uint16
}

type connKey dirKey

// NewPlanner returns a planner for o.
func NewPlanner(o Options) *Planner {
	if o.MTU == 0 {
		o.MTU = 1500
	}
	if o.MaxFlows == 0 {
		o.MaxFlows = 1 << 17
	}
	return &Planner{o: o, mss: map[connKey]int{}, largest: map[dirKey]int{}}
}

// Plan returns the frame for p. The frame's Data is p.Data, valid as long
// as p's.
func (pl *Planner) Plan(p Packet) Frame {
	f := Frame{Data: p.Data, Segs: 1, Bytes: uint64(p.Len), Time: p.Time}
	if p.Truncated() {
		f.Marks |= MarkTruncated
	}
	fi, ok := readFrame(p.Data)
	switch p.Dir {
	case DirOut:
		f.Out = true
	case DirUnknown:
		f.Out = pl.outbound(fi, ok)
	}
	if !ok {
		return f
	}
	f.Shard = shard(fi)
	if !fi.tcp {
		return f
	}
	dk := dirKey{fi.src, fi.dst, fi.sport, fi.dport}
	ck := canonical(dk)
	if fi.syn && fi.mss > 0 {
		if m, ok := pl.mss[ck]; !ok || int(fi.mss) < m {
			pl.remember(func() { pl.mss[ck] = int(fi.mss) }, len(pl.mss))
		}
	}
	if fi.ipLen <= pl.o.MTU {
		if fi.payload > pl.largest[dk] {
			pl.remember(func() { pl.largest[dk] = fi.payload }, len(pl.largest))
		}
		return f
	}
	// A GRO super-packet: its segments carry the TCP options it carries,
	// which come out of the MSS.
	seg := 0
	if m, ok := pl.mss[ck]; ok {
		seg = m - (fi.tcpLen - 20)
	}
	if seg <= 0 {
		seg = pl.largest[dk]
	}
	if seg <= 0 {
		f.Marks |= MarkSegmentsGuessed
		return f
	}
	segs := (fi.payload + seg - 1) / seg
	if segs > 1 {
		f.Segs = uint64(segs)
		f.Bytes += uint64(segs-1) * uint64(fi.hdrLen)
	}
	return f
}

// remember stores an entry, forgetting every entry of the map first when
// it holds MaxFlows already (memory stays bounded; a forgotten MSS is
// learnt again from ordinary segments).
func (pl *Planner) remember(store func(), n int) {
	if n >= pl.o.MaxFlows {
		clear(pl.mss)
		clear(pl.largest)
	}
	store()
}

// outbound decides a direction the file does not record.
func (pl *Planner) outbound(fi frameInfo, ok bool) bool {
	if len(pl.o.ByMAC) == 6 {
		return bytes.Equal(fi.srcMAC[:], pl.o.ByMAC)
	}
	if !ok || !fi.src.IsValid() {
		return false
	}
	for _, n := range pl.o.ByNet {
		if n.Contains(fi.src) {
			return true
		}
	}
	return false
}

func canonical(k dirKey) connKey {
	if k.src.Less(k.dst) || k.src == k.dst && k.sport < k.dport {
		return connKey(k)
	}
	return connKey{k.dst, k.src, k.dport, k.sport}
}

// shard hashes a frame's connection, the same for both directions.
func shard(fi frameInfo) uint32 {
	// Each end's address and port, hashed alone and added: the same sum
	// in both directions.
	end := func(a netip.Addr, port uint16) uint32 {
		x := uint32(2166136261)
		for _, c := range a.As16() {
			x = (x ^ uint32(c)) * 16777619
		}
		x = (x ^ uint32(port>>8)) * 16777619
		return (x ^ uint32(port&0xff)) * 16777619
	}
	h := end(fi.src, fi.sport) + end(fi.dst, fi.dport) + uint32(fi.proto)
	// MurmurHash3's finalizer: every bit of the sum reaches the low bits
	// that pick a worker, so that flows between one pair of hosts that
	// differ in a port spread over the workers too.
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
