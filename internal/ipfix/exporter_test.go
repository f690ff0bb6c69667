package ipfix

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// readUDP reads messages from c until want data records came, or fails.
func readUDP(t *testing.T, c *net.UDPConn, want int) []Message {
	t.Helper()
	var msgs []Message
	n := 0
	buf := make([]byte, 65536)
	for n < want {
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		l, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", n, want, err)
		}
		m := Message{B: append([]byte(nil), buf[:l]...), Records: -1}
		msgs = append(msgs, m)
		n += countRecords(t, m.B)
	}
	return msgs
}

// countRecords counts the data records of a message by walking its sets,
// independently of the encoder's own count.
func countRecords(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	for at := HeaderLen; at < len(b); {
		id, l := binary.BigEndian.Uint16(b[at:]), int(binary.BigEndian.Uint16(b[at+2:]))
		if l < setHeaderLen || at+l > len(b) {
			t.Fatalf("set at %d: length %d of a %d-byte message", at, l, len(b))
		}
		switch id {
		case TemplateIPv4, TemplateIPv6:
			n += (l - setHeaderLen) / recordLen(b[at+setHeaderLen:at+l])
		case TemplateOptions:
			n += (l - setHeaderLen) / 68
		}
		at += l
	}
	return n
}

// recordLen is the length of the records of a data set of the TC layout
// without application names (every record the same length).
func recordLen(b []byte) int {
	if b[0] == 0x20 { // 2001:2::/48
		return 86
	}
	return 62
}

// decodeReceived decodes received messages with goflow2; the header's
// export time is checked against now, then overwritten to what decodeAll
// expects.
func decodeReceived(t *testing.T, msgs []Message, max int) decoded {
	t.Helper()
	for i := range msgs {
		if e := int64(binary.BigEndian.Uint32(msgs[i].B[4:])); e < time.Now().Add(-time.Minute).Unix() || e > time.Now().Unix() {
			t.Fatalf("export time %d is not now", e)
		}
		binary.BigEndian.PutUint32(msgs[i].B[4:], 1700000000)
		msgs[i].Records = countRecords(t, msgs[i].B)
	}
	return decodeAll(t, msgs, max, DefaultPEN)
}

func plainRows(n int) []flow.Flow {
	rows := testRows(n)
	for i := range rows {
		rows[i].L7 = flow.L7Unknown
		rows[i].Owner = flow.Owner{}
	}
	return rows
}

func TestExporterUDP(t *testing.T) {
	lc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	x, err := New(Options{Target: lc.LocalAddr().String(), PEN: DefaultPEN, Domain: 7, Layout: Layout{Ifaces: true}})
	if err != nil {
		t.Fatal(err)
	}
	x.Start()
	snap := flow.Snapshot{Flows: plainRows(100)}
	x.Export(&snap, time.Now().Add(-time.Second), time.Now())
	x.Export(&snap, time.Now().Add(-time.Second), time.Now())
	msgs := readUDP(t, lc, 202) // 2 × (100 flows + 1 options record)
	tot := x.Close(time.Second)
	d := decodeReceived(t, msgs, DefaultMaxMessage) // sequence numbers checked there
	if len(d.flows) != 200 || len(d.options) != 2 || len(d.tmpls) != 2 {
		t.Fatalf("%d flows, %d options, %d templates", len(d.flows), len(d.options), len(d.tmpls))
	}
	// The second options record counts what was sent before it was encoded.
	if tot.Records != 202 || tot.NotSent != 0 || tot.Messages != uint64(len(msgs)-1) {
		t.Fatalf("totals %+v with %d messages received (one of templates)", tot, len(msgs))
	}
}

// TestExporterTCPReconnect: records exported while the collector is away
// are dropped and counted, Export never waits, and a new connection
// starts with the templates and sequence number 0.
func TestExporterTCPReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	x, err := New(Options{Target: "tcp://" + addr, PEN: DefaultPEN, Domain: 7, Layout: Layout{Ifaces: true}})
	if err != nil {
		t.Fatal(err)
	}
	x.Start()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	snap := flow.Snapshot{Flows: plainRows(50)}
	x.Export(&snap, time.Now(), time.Now())
	first := readTCP(t, c, 51)
	if d := decodeReceived(t, first, maxTCPMessage); len(d.tmpls) != 2 || len(d.flows) != 50 {
		t.Fatalf("first connection: %d templates, %d flows", len(d.tmpls), len(d.flows))
	}
	// The collector goes away: its socket and the listener close.
	c.Close()
	ln.Close()
	began := time.Now()
	for i := 0; i < 20; i++ {
		x.Export(&snap, time.Now(), time.Now())
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("20 exports took %s with the collector down", d)
	}
	if n := x.Totals().NotSent; n == 0 {
		t.Fatalf("nothing counted as not sent with the collector down: %+v", x.Totals())
	}
	// It comes back on the same port.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	defer ln.Close()
	time.Sleep(redialEvery + 100*time.Millisecond)
	x.Export(&snap, time.Now(), time.Now()) // dials, then sends
	c, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	second := readTCP(t, c, 51)
	if d := decodeReceived(t, second, maxTCPMessage); len(d.tmpls) != 2 || len(d.flows) != 50 || len(d.options) != 1 {
		t.Fatalf("after reconnecting: %d templates, %d flows", len(d.tmpls), len(d.flows))
	}
	tot := x.Close(time.Second)
	// A write or two after the collector closed still succeed (the
	// kernel takes them before the reset arrives): TCP cannot tell.
	if tot.Records < 102 || tot.Records > 102+2*51 || tot.Records+tot.NotSent != 22*51 {
		t.Fatalf("totals %+v: want 102 to 204 sent and the rest of %d not sent", tot, 22*51)
	}
}

// readTCP reads IPFIX messages from a stream until want data records came.
func readTCP(t *testing.T, c net.Conn, want int) []Message {
	t.Helper()
	r := bufio.NewReader(c)
	var msgs []Message
	for n := 0; n < want; {
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		h := make([]byte, HeaderLen)
		if _, err := io.ReadFull(r, h); err != nil {
			t.Fatalf("after %d records: %v", n, err)
		}
		b := make([]byte, binary.BigEndian.Uint16(h[2:]))
		copy(b, h)
		if _, err := io.ReadFull(r, b[HeaderLen:]); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, Message{B: b})
		n += countRecords(t, b)
	}
	return msgs
}

// BenchmarkExportUDP encodes and sends flow records to a local UDP
// socket, with a reader draining it; b.N counts records. The baseline in
// the same run is encoding alone.
func BenchmarkExportUDP(b *testing.B) {
	rows := plainRows(4096)
	b.Run("encode", func(b *testing.B) {
		e := NewEncoder(1, DefaultPEN, DefaultMaxMessage, Layout{Ifaces: true}, func(Message) {})
		benchRecords(b, rows, func(s *flow.Snapshot) { e.Flows(s, time.Now(), time.Now()); e.Flush() }, func() {})
	})
	b.Run("encode+send", func(b *testing.B) {
		lc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer lc.Close()
		_ = lc.SetReadBuffer(8 << 20)
		go func() {
			buf := make([]byte, 65536)
			for {
				if _, err := lc.Read(buf); err != nil {
					return
				}
			}
		}()
		x, err := New(Options{Target: lc.LocalAddr().String(), PEN: DefaultPEN, Layout: Layout{Ifaces: true}, QueueBytes: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		x.Start()
		benchRecords(b, rows, func(s *flow.Snapshot) { x.Export(s, time.Now(), time.Now()) }, func() {
			tot := x.Close(time.Minute)
			if tot.NotSent != 0 {
				b.Fatalf("%d records not sent", tot.NotSent)
			}
		})
	})
}

// benchRecords feeds b.N records in snapshots of len(rows), calls done,
// and reports the CPU time (user and system, every thread) per million
// records.
func benchRecords(b *testing.B, rows []flow.Flow, export func(*flow.Snapshot), done func()) {
	b.ReportAllocs()
	var before, after syscall.Rusage
	var mBefore, mAfter runtime.MemStats
	runtime.ReadMemStats(&mBefore)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for n := b.N; n > 0; n -= len(rows) {
		s := flow.Snapshot{Flows: rows[:min(n, len(rows))]}
		export(&s)
	}
	done()
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	runtime.ReadMemStats(&mAfter)
	b.ReportMetric(float64(mAfter.Mallocs-mBefore.Mallocs)/float64(b.N), "allocs/record")
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(cpu.Seconds()*1e6/float64(b.N), "cpu-s/1M-records")
}

// TestExporterQueueFull: records that find the queue full are dropped and
// counted at once, so Export never waits; every record is either sent or
// counted as not sent.
func TestExporterQueueFull(t *testing.T) {
	lc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	x, err := New(Options{Target: lc.LocalAddr().String(), PEN: DefaultPEN, Domain: 7, Layout: Layout{Ifaces: true}, QueueBytes: 3 * DefaultMaxMessage})
	if err != nil {
		t.Fatal(err)
	}
	snap := flow.Snapshot{Flows: plainRows(200)}
	x.Export(&snap, time.Now(), time.Now()) // the sender is not running: 3 messages fit
	if n := x.Totals().NotSent; n == 0 || n >= 201 {
		t.Fatalf("%d of 201 records counted as not sent with a queue of 3 messages", n)
	}
	x.Start()
	msgs := readUDP(t, lc, int(201-x.Totals().NotSent))
	tot := x.Close(time.Second)
	if got := decodeReceived(t, msgs, DefaultMaxMessage); uint64(len(got.flows)+len(got.options)) != tot.Records || tot.Records+tot.NotSent != 201 {
		t.Fatalf("received %d flow and %d options records; totals %+v; want sent + not sent = 201", len(got.flows), len(got.options), tot)
	}
}
