package report

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// WritePlain writes one line per row in pktstat-bpf's format, for example
//
//	bitrate: 6.80 Gbps, packets: 84623, bytes: 4255963315, proto: TCP, src: 198.18.0.1:41686, dst: 198.18.0.2:5201
//
// IPv6 addresses with a port are bracketed ([2001:2::1]:443). Traffic
// without a row of its own ends the report on an overflow line.
func WritePlain(w io.Writer, r Report) error {
	bw := bufio.NewWriter(w)
	var line []byte
	for i := range r.Flows {
		line = appendPlainRow(line[:0], &r.Flows[i])
		bw.Write(line)
	}
	if r.Untracked.Packets > 0 {
		fmt.Fprintf(bw, "bitrate: %s, packets: %d, bytes: %d, overflow: about %d flows not tracked individually (flow table full; raise --max-entries)\n",
			FormatBitrate(flow.Bitrate(r.Untracked.Bytes, r.Duration)), r.Untracked.Packets, r.Untracked.Bytes, r.UntrackedFlows)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write plain report: %w", err)
	}
	return nil
}

func appendPlainRow(b []byte, f *flow.Flow) []byte {
	b = append(b, "bitrate: "...)
	b = append(b, FormatBitrate(f.Bitrate)...)
	b = append(b, ", packets: "...)
	b = strconv.AppendUint(b, f.Packets, 10)
	b = append(b, ", bytes: "...)
	b = strconv.AppendUint(b, f.Bytes, 10)
	b = append(b, ", proto: "...)
	b = append(b, f.ProtoName()...)
	switch {
	case f.HasPorts():
		b = append(b, ", src: "...)
		b = appendAddrPort(b, f.Src, f.SrcPort)
		b = append(b, ", dst: "...)
		b = appendAddrPort(b, f.Dst, f.DstPort)
	case f.IsIP():
		b = append(b, ", src: "...)
		b = f.Src.AppendTo(b)
		b = append(b, ", dst: "...)
		b = f.Dst.AppendTo(b)
		if f.IsICMP() {
			b = append(b, ", type: "...)
			b = strconv.AppendUint(b, uint64(f.SrcPort), 10)
			b = append(b, ", code: "...)
			b = strconv.AppendUint(b, uint64(f.DstPort), 10)
		}
	}
	if f.VLAN != 0 {
		b = append(b, ", vlan: "...)
		b = strconv.AppendUint(b, uint64(f.VLAN), 10)
	}
	if f.Flags&flow.Fragment != 0 {
		b = append(b, ", fragment"...)
	}
	if f.Flags&flow.DeepChain != 0 {
		b = append(b, ", deep extension chain"...)
	}
	if f.Flags&flow.Malformed != 0 {
		b = append(b, ", malformed"...)
	}
	b = appendOwner(b, f.Owner)
	return append(b, '\n')
}

// appendOwner adds what is known of the socket's owner (cgroup mode), in
// pktstat-bpf's order: pid, comm, cgroup.
func appendOwner(b []byte, o flow.Owner) []byte {
	if o.PID != 0 {
		b = append(b, ", pid: "...)
		b = strconv.AppendUint(b, uint64(o.PID), 10)
	}
	if o.Comm != "" {
		b = append(b, ", comm: "...)
		b = append(b, o.Comm...)
	}
	if o.Cgroup != "" {
		b = append(b, ", cgroup: "...)
		b = append(b, o.Cgroup...)
	}
	return b
}

func appendAddrPort(b []byte, a netip.Addr, port uint16) []byte {
	return netip.AddrPortFrom(a, port).AppendTo(b)
}
