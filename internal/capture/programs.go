package capture

import (
	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
)

// Programs returns the capture's eBPF programs by name, so that their
// run-time statistics can be exported.
func (t *TC) Programs() map[string]*ebpf.Program {
	return map[string]*ebpf.Program{
		bpfprog.TCProgPktstatIngress: t.objs.PktstatIngress,
		bpfprog.TCProgPktstatEgress:  t.objs.PktstatEgress,
	}
}

// Programs returns the capture's eBPF program by name.
func (x *XDP) Programs() map[string]*ebpf.Program {
	return map[string]*ebpf.Program{bpfprog.XDPProgPktstatXdp: x.objs.PktstatXdp}
}

// Programs returns the capture's eBPF programs by name.
func (c *Cgroup) Programs() map[string]*ebpf.Program {
	return map[string]*ebpf.Program{
		bpfprog.CgroupProgPktstatCgIn:   c.objs.PktstatCgIn,
		bpfprog.CgroupProgPktstatCgOut:  c.objs.PktstatCgOut,
		bpfprog.CgroupProgPktstatCgSock: c.objs.PktstatCgSock,
	}
}
