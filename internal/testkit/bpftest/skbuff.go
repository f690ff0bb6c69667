package bpftest

// SkBuff mirrors the uapi struct __sk_buff of <linux/bpf.h>, the context of
// TC programs. It is stable ABI: fields are only ever appended. Passed as
// ebpf.RunOptions.Context, it sets the skb fields that BPF_PROG_TEST_RUN
// accepts (mark, priority, ingress_ifindex, ifindex, cb, tstamp, wire_len,
// gso_segs, gso_size, hwtstamp); the kernel rejects a context with any other
// field non-zero. cilium/ebpf encodes it with encoding/binary, which packs
// fields without Go's alignment padding, so every gap of the C layout is an
// explicit field here; TestSkBuffLayout checks the offsets against the
// running kernel's BTF.
type SkBuff struct {
	Len            uint32
	PktType        uint32
	Mark           uint32
	QueueMapping   uint32
	Protocol       uint32
	VlanPresent    uint32
	VlanTCI        uint32
	VlanProto      uint32
	Priority       uint32
	IngressIfindex uint32
	Ifindex        uint32
	TCIndex        uint32
	CB             [5]uint32
	Hash           uint32
	TCClassid      uint32
	Data           uint32
	DataEnd        uint32
	NapiID         uint32
	Family         uint32
	RemoteIP4      uint32
	LocalIP4       uint32
	RemoteIP6      [4]uint32
	LocalIP6       [4]uint32
	RemotePort     uint32
	LocalPort      uint32
	DataMeta       uint32
	FlowKeys       uint64 // __bpf_md_ptr(struct bpf_flow_keys *, flow_keys)
	Tstamp         uint64
	WireLen        uint32
	GSOSegs        uint32
	SK             uint64 // __bpf_md_ptr(struct bpf_sock *, sk)
	GSOSize        uint32
	TstampType     uint8
	Pad            [3]uint8 // __u32 :24
	HWTstamp       uint64
}
