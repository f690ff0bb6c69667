package report

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/untrusted"
)

// WritePlain writes one line per row in pktstat-bpf's format, for example
//
//	bitrate: 6.80 Gbps, packets: 84623, bytes: 4255963315, proto: TCP, l7: TLS, src: 198.18.0.1:41686, dst: 198.18.0.2:443
//
// IPv6 addresses with a port are bracketed ([2001:2::1]:443). Traffic
// without a row of its own follows on an overflow line, and a summary line
// ends the report: the totals, how many flows have no row, and the
// interface's own counters.
func WritePlain(w io.Writer, r Report) error {
	bw := bufio.NewWriter(w)
	var line []byte
	for i := range r.Flows {
		if r.GroupBy != 0 {
			line = appendGroupRow(line[:0], &r.Flows[i], r.GroupBy)
		} else {
			line = appendPlainRow(line[:0], &r.Flows[i])
		}
		bw.Write(line)
	}
	if o := r.Overflow(); o.Packets > 0 {
		fmt.Fprintf(bw, "bitrate: %s, packets: %d, bytes: %d, overflow: %s\n",
			flow.FormatBitrate(flow.Bitrate(o.Bytes, r.Duration)), o.Packets, o.Bytes, overflowReason(&r))
	}
	t := r.Totals()
	fmt.Fprintf(bw, "summary: packets: %d, bytes: %d, rows: %d, %s beyond --top: %d, flows not tracked (flow table full): about %d",
		t.Packets, t.Bytes, len(r.Flows), hiddenUnit(&r), r.HiddenFlows, r.UntrackedFlows)
	if r.GroupBy != 0 {
		fmt.Fprintf(bw, ", grouped by: %s", r.GroupBy)
	}
	if f := r.Filtered; f != nil {
		fmt.Fprintf(bw, ", filtered out: %d packets, %d bytes", f.Packets, f.Bytes)
	}
	if r.Iface != nil {
		r.Ifaces = append(r.Ifaces, *r.Iface)
	}
	for _, i := range r.Ifaces {
		fmt.Fprintf(bw, "; %s counted rx packets: %d, tx packets: %d, rx dropped: %d, tx dropped: %d",
			untrusted.Field(i.Name), i.RxPackets, i.TxPackets, i.RxDropped, i.TxDropped)
	}
	bw.WriteString("\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write plain report: %w", err)
	}
	return nil
}

// WritePlainInterval writes one interval's report: a line naming the
// interval's end and length, then the report as WritePlain writes it.
func WritePlainInterval(w io.Writer, r Report) error {
	if _, err := fmt.Fprintf(w, "interval: %s, length: %s\n", r.End.UTC().Format(time.RFC3339Nano), r.Duration.Round(time.Millisecond)); err != nil {
		return fmt.Errorf("write plain report: %w", err)
	}
	return WritePlain(w, r)
}

// overflowReason says which flows the overflow line stands for.
func overflowReason(r *Report) string {
	switch {
	case r.Hidden.Packets > 0 && r.Untracked.Packets > 0:
		return fmt.Sprintf("%d %s beyond --top, and about %d flows not tracked individually (flow table full; raise --max-entries)", r.HiddenFlows, hiddenUnit(r), r.UntrackedFlows)
	case r.Hidden.Packets > 0:
		return fmt.Sprintf("%d %s beyond --top", r.HiddenFlows, hiddenUnit(r))
	default:
		return fmt.Sprintf("about %d flows not tracked individually (flow table full; raise --max-entries)", r.UntrackedFlows)
	}
}

// appendCounters begins a row: its rate and counters.
func appendCounters(b []byte, f *flow.Flow) []byte {
	b = append(b, "bitrate: "...)
	b = append(b, flow.FormatBitrate(f.Bitrate)...)
	b = append(b, ", packets: "...)
	b = strconv.AppendUint(b, f.Packets, 10)
	b = append(b, ", bytes: "...)
	return strconv.AppendUint(b, f.Bytes, 10)
}

func appendPlainRow(b []byte, f *flow.Flow) []byte {
	b = appendCounters(b, f)
	b = append(b, ", proto: "...)
	b = append(b, f.ProtoName()...)
	if name := f.L7.String(); name != "" {
		b = append(b, ", l7: "...)
		b = append(b, name...)
	}
	switch {
	case f.HasPorts():
		b = append(b, ", src: "...)
		b = appendAddrPort(b, f.Src, f.SrcPort)
		b = append(b, ", dst: "...)
		b = appendAddrPort(b, f.Dst, f.DstPort)
	case f.IsIP() && !hasIPFields(&f.Key):
		// The other IP protocols, and rows without their L4 header (a
		// fragment, a deep chain, a malformed header), as pktstat-bpf
		// prints them: address and port, the port 0.
		b = append(b, ", src: "...)
		b = appendAddrPort(b, f.Src, 0)
		b = append(b, ", dst: "...)
		b = appendAddrPort(b, f.Dst, 0)
	case f.IsIP():
		b = appendAddrs(b, &f.Key)
		b = appendIPFields(b, &f.Key)
	case f.IsARP():
		if op, ok := f.ARPOp(); ok {
			b = appendAddrs(b, &f.Key)
			b = append(b, ", op: "...)
			b = append(b, flow.ARPOpName(op)...)
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
	if f.Estimated {
		b = append(b, ", estimated"...)
	}
	b = appendOwner(b, f.Owner)
	if f.Iface != "" {
		// Only when the run watches several interfaces.
		b = append(b, ", iface: "...)
		b = append(b, untrusted.Field(f.Iface)...)
	}
	return append(b, '\n')
}

func appendAddrs(b []byte, k *flow.Key) []byte {
	b = append(b, ", src: "...)
	b = k.Src.AppendTo(b)
	b = append(b, ", dst: "...)
	return k.Dst.AppendTo(b)
}

// hasIPFields reports whether appendIPFields has fields for k.
func hasIPFields(k *flow.Key) bool {
	_, spi := k.SPI()
	_, _, gre := k.GRE()
	_, _, ospf := k.OSPF()
	_, igmp := k.IGMPType()
	return k.IsICMP() || spi || gre || ospf || igmp
}

// appendIPFields adds the fields of IP protocols without ports, in
// pktstat-bpf's words.
func appendIPFields(b []byte, k *flow.Key) []byte {
	if k.IsICMP() {
		b = append(b, ", type: "...)
		b = strconv.AppendUint(b, uint64(k.SrcPort), 10)
		b = append(b, ", code: "...)
		return strconv.AppendUint(b, uint64(k.DstPort), 10)
	}
	if spi, ok := k.SPI(); ok {
		b = append(b, ", spi: 0x"...)
		return strconv.AppendUint(b, uint64(spi), 16)
	}
	if inner, flags, ok := k.GRE(); ok {
		b = append(b, ", inner: "...)
		b = append(b, flow.GREInnerName(inner)...)
		return fmt.Appendf(b, ", flags: 0x%04x", flags)
	}
	if typ, ver, ok := k.OSPF(); ok {
		b = append(b, ", type: "...)
		b = append(b, flow.OSPFTypeName(typ)...)
		b = append(b, ", v"...)
		return strconv.AppendUint(b, uint64(ver), 10)
	}
	if typ, ok := k.IGMPType(); ok {
		b = append(b, ", type: "...)
		return append(b, flow.IGMPTypeName(typ)...)
	}
	return b
}

// appendOwner adds what is known of the socket's owner (cgroup mode), in
// pktstat-bpf's order: pid, comm, cgroup.
func appendOwner(b []byte, owner flow.Owner) []byte {
	if owner.IsZero() {
		return b
	}
	o := owner.Info()
	if o.PID != 0 {
		b = append(b, ", pid: "...)
		b = strconv.AppendUint(b, uint64(o.PID), 10)
	}
	if o.Comm != "" {
		b = append(b, ", comm: "...)
		b = append(b, untrusted.Field(o.Comm)...)
	}
	if o.Cgroup != "" {
		b = append(b, ", cgroup: "...)
		b = append(b, untrusted.Field(o.Cgroup)...)
	}
	return b
}

func appendAddrPort(b []byte, a netip.Addr, port uint16) []byte {
	return netip.AddrPortFrom(a, port).AppendTo(b)
}
