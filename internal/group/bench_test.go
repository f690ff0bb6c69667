package group

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// millionRows are 1,000,000 distinct rows shaped like a drain of the
// capture benchmarks' table (IPv4 UDP to port 53, sources spread over
// 198.18.0.0/15), each owned by one of 1000 processes in 10 cgroups.
func millionRows() []flow.Flow {
	const n = 1_000_000
	owners := make([]flow.Owner, 1000)
	for i := range owners {
		owners[i] = flow.NewOwner(flow.OwnerInfo{PID: uint32(1000 + i), Comm: "proc" + strconv.Itoa(i%50), Cgroup: "/sys/fs/cgroup/s" + strconv.Itoa(i%10)})
	}
	dst := netip.MustParseAddr("198.18.255.1")
	rows := make([]flow.Flow, n)
	for i := range rows {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0xC6120000|uint32(i)>>16)
		rows[i] = flow.Flow{
			Key: flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoUDP, Src: netip.AddrFrom4(a), Dst: dst,
				SrcPort: uint16(i), DstPort: 53 + uint16(i%8), Dir: flow.Direction(i % 2), Owner: owners[i%len(owners)]},
			Counters: flow.Counters{Packets: uint64(i%97 + 1), Bytes: uint64(i%9973 + 64)},
		}
	}
	return rows
}

// BenchmarkGroupMillion is the user-space report path at 1,000,000 rows:
// "none" is today's path (flow.Top keeping 10 rows, as --top 10), the
// others group first, then take the top 10 groups, in the same run. The
// ms/group metric is what grouping adds; src,sport,dst,dport is the worst
// case, a group per row.
//
//	go test -run '^$' -bench GroupMillion -count 5 ./internal/group/
func BenchmarkGroupMillion(b *testing.B) {
	src := millionRows()
	rows := make([]flow.Flow, len(src))
	for _, by := range []string{"none", "proto", "dport", "cgroup", "comm,dir", "src,sport,dst,dport"} {
		var g By
		if by != "none" {
			var err error
			if g, err = Parse(by); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(by, func(b *testing.B) {
			var groupNs, topNs time.Duration
			for b.Loop() {
				copy(rows, src) // flow.Top reorders its input
				t0 := time.Now()
				grouped := Rows(rows, g)
				t1 := time.Now()
				top, _, _ := flow.Top(grouped, 10, time.Second)
				topNs += time.Since(t1)
				groupNs += t1.Sub(t0)
				if len(top) == 0 {
					b.Fatal("no rows")
				}
			}
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(per(groupNs), "ms/group")
			b.ReportMetric(per(topNs), "ms/top10")
		})
	}
}
