package capture

import (
	"bytes"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/pktstat-bpf/pktstat-bpf/internal/offline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// benchCapture is a pcap in memory: n IPv4 UDP frames of 74 bytes over
// 64 flows, 10 µs apart, each cut to snap bytes.
func benchCapture(tb testing.TB, n, snap int) []byte {
	tb.Helper()
	var file bytes.Buffer
	w := pcapgo.NewWriter(&file)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	at := time.Unix(1_700_000_000, 0)
	for i := range n {
		buf := gopacket.NewSerializeBuffer()
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{198, 18, 0, 1}, DstIP: net.IP{198, 18, 0, 2}}
		err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
			&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
			ip, &layers.UDP{SrcPort: layers.UDPPort(10000 + i%64), DstPort: 53}, gopacket.Payload(make([]byte, 32)))
		if err != nil {
			tb.Fatal(err)
		}
		at = at.Add(10 * time.Microsecond)
		b := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: min(len(b), snap), Length: len(b)}, b[:min(len(b), snap)]); err != nil {
			tb.Fatal(err)
		}
	}
	return file.Bytes()
}

// BenchmarkReplay measures --read's throughput in packets per second
// (and of a file cut to 40 bytes a packet, whose every packet takes the
// side copy and is counted in Go), beside two baselines measured in the
// same rounds: pcapgo reading the
// same file alone, and BPF_PROG_TEST_RUN of an empty TC program, one
// thread per CPU (the ceiling of any replay that runs every packet
// through a program with it). Each is the median of the rounds.
//
//	go test -run '^$' -bench Replay -benchtime 1x ./internal/capture/
func BenchmarkReplay(b *testing.B) {
	bpftest.RequireRoot(b)
	const n, rounds = 200_000, 5
	file := benchCapture(b, n, 65535)
	// Cut inside the UDP header: every frame takes the side copy.
	cut := benchCapture(b, n, 40)
	workers := 2
	empty := bpftest.EmptyProgram(b, ebpf.SchedCLS, -1)
	var frame []byte
	{
		r, err := offline.NewReader(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		p, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		frame = slices.Clone(p.Data)
	}
	rp, err := StartReplay(ReplayOptions{MaxEntries: 131072, Workers: workers})
	if err != nil {
		b.Fatal(err)
	}
	defer rp.Close()

	readOnly := func() {
		r, err := offline.NewReader(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err == io.EOF {
				return
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
	emptyRuns := func() {
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / workers {
					if _, err := empty.Run(&ebpf.RunOptions{Data: frame}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	replayOf := func(file []byte) {
		r, err := offline.NewReader(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		pl := offline.NewPlanner(offline.Options{})
		for {
			p, err := r.Next()
			if err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			rp.Feed(pl.Plan(p))
		}
		s, err := rp.Drain()
		if err != nil {
			b.Fatal(err)
		}
		var got uint64
		for _, f := range s.Flows {
			got += f.Packets
		}
		if got != n {
			b.Fatalf("replay counted %d packets of %d", got, n)
		}
	}
	replay := func() { replayOf(file) }
	replayCut := func() { replayOf(cut) }
	rate := func(f func()) float64 {
		start := time.Now()
		f()
		return n / time.Since(start).Seconds()
	}
	var readPPS, emptyPPS, replayPPS, cutPPS []float64
	for b.Loop() {
		for range rounds {
			readPPS = append(readPPS, rate(readOnly))
			emptyPPS = append(emptyPPS, rate(emptyRuns))
			replayPPS = append(replayPPS, rate(replay))
			cutPPS = append(cutPPS, rate(replayCut))
		}
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	rd, em, rpl := median(readPPS), median(emptyPPS), median(replayPPS)
	b.ReportMetric(rd, "read-pkt/s")
	b.ReportMetric(em, "empty-testrun-pkt/s")
	b.ReportMetric(rpl, "replay-pkt/s")
	b.ReportMetric(100*rpl/em, "%-of-empty")
	b.ReportMetric(median(cutPPS), "replay-cut-pkt/s")
}
