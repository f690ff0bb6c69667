package ipfix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Defaults of the exporter's options.
const (
	DefaultTemplateRefresh = 10 * time.Minute
	// DefaultQueueBytes is how many bytes of messages may wait for the
	// sender: the records of a drain of about 200,000 flows. What does
	// not fit is dropped and counted, so that the drain never waits.
	DefaultQueueBytes = 16 << 20
	// maxTCPMessage is the longest message over TCP, where the MTU does
	// not matter: fewer headers and writes.
	maxTCPMessage = 65000
	// writeTimeout bounds one write over TCP: a collector that stops
	// reading costs the messages in the queue, not the drain.
	writeTimeout = 5 * time.Second
	// redialEvery is how often a lost TCP connection is dialled again:
	// at most once for the burst of messages of one export, and at every
	// export, which come at least a second apart (--ipfix-interval).
	redialEvery = 500 * time.Millisecond
)

// Options configure an exporter.
type Options struct {
	// Target is HOST:PORT (UDP) or tcp://HOST:PORT.
	Target          string
	PEN             uint32
	Domain          uint32        // observation domain ID
	TemplateRefresh time.Duration // UDP: how often the templates go out again
	QueueBytes      int           // bytes of messages waiting for the sender; 0: DefaultQueueBytes
	Layout          Layout
	Log             *slog.Logger
}

// Exporter sends flow records to one collector. Export encodes and queues
// them and never waits for the network; a sender goroutine writes them.
type Exporter struct {
	opts    Options
	network string
	addr    string // the resolved address, so that a redial needs no DNS (nor privileges)
	enc     *Encoder
	queue   *queue
	done    chan struct{}
	log     *slog.Logger
	now     func() time.Time

	mu   sync.Mutex // serializes Export
	conn net.Conn   // the sender's: nil while a TCP connection is down

	messages, records, notSent atomic.Uint64
	untracked                  flow.Counters // guarded by mu
	untrackedFlows             uint64
	filtered                   flow.Counters
}

// ParseTarget splits --ipfix's value into a network ("udp" or "tcp") and
// HOST:PORT.
func ParseTarget(s string) (network, hostport string, err error) {
	network, hostport = "udp", s
	if rest, ok := strings.CutPrefix(s, "tcp://"); ok {
		network, hostport = "tcp", rest
	} else if rest, ok := strings.CutPrefix(s, "udp://"); ok {
		hostport = rest
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" {
		return "", "", fmt.Errorf("%q is not HOST:PORT or tcp://HOST:PORT (IPFIX's port is 4739)", s)
	}
	return network, hostport, nil
}

// New resolves the collector's address and, over UDP, opens the socket;
// over TCP it dials once, and a collector not up yet is dialled again
// later. It runs before the privileges are dropped, though nothing here
// needs them: connecting out needs no capability, and the name is
// resolved now, so that redials need neither DNS nor files.
func New(opts Options) (*Exporter, error) {
	network, hostport, err := ParseTarget(opts.Target)
	if err != nil {
		return nil, err
	}
	ra, err := net.ResolveUDPAddr("udp", hostport) // the same resolution for TCP's address
	if err != nil {
		return nil, fmt.Errorf("resolve IPFIX collector %s: %w", hostport, err)
	}
	if opts.TemplateRefresh <= 0 {
		opts.TemplateRefresh = DefaultTemplateRefresh
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = DefaultQueueBytes
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	x := &Exporter{opts: opts, network: network, addr: ra.String(), queue: newQueue(opts.QueueBytes),
		done: make(chan struct{}), log: opts.Log, now: time.Now}
	maxMsg := DefaultMaxMessage
	if network == "tcp" {
		maxMsg = maxTCPMessage
	}
	x.enc = NewEncoder(opts.Domain, opts.PEN, maxMsg, opts.Layout, x.enqueue)
	if network == "udp" {
		if x.conn, err = net.Dial("udp", x.addr); err != nil {
			return nil, fmt.Errorf("open UDP socket to IPFIX collector %s: %w", x.addr, err)
		}
	} else if c, err := net.DialTimeout("tcp", x.addr, writeTimeout); err != nil {
		x.log.Warn("the IPFIX collector cannot be reached yet; records are dropped and counted until it can", "collector", x.addr, "error", err)
	} else {
		x.conn = c
	}
	return x, nil
}

// Addr is the collector's resolved address.
func (x *Exporter) Addr() string { return x.network + "://" + x.addr }

// Start runs the sender until Close.
func (x *Exporter) Start() { go x.send() }

// enqueue hands a message to the sender, or drops it when the queue is
// full: the drain must not wait for the network.
func (x *Exporter) enqueue(m Message) {
	if !x.queue.push(m) {
		x.notSent.Add(uint64(m.Records))
	}
}

// Export sends one record per row of s, and the overflow records, covering
// start to end, then an options record of the exporter's totals.
func (x *Exporter) Export(s *flow.Snapshot, start, end time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.enc.Flows(s, start, end)
	for _, u := range s.Untracked {
		x.untracked.Add(u)
	}
	x.untrackedFlows += s.UntrackedFlows
	x.filtered.Add(s.Filtered)
	x.enc.Stats(Stats{
		Messages: x.messages.Load(), Records: x.records.Load(), NotSent: x.notSent.Load(),
		UntrackedFlows: x.untrackedFlows, UntrackedPackets: x.untracked.Packets, UntrackedOctets: x.untracked.Bytes,
		FilteredPackets: x.filtered.Packets, FilteredOctets: x.filtered.Bytes,
	})
	x.enc.Flush()
}

// Totals are what the exporter sent and dropped.
type Totals struct {
	Messages, Records, NotSent uint64
}

// Totals returns the exporter's totals so far.
func (x *Exporter) Totals() Totals {
	return Totals{Messages: x.messages.Load(), Records: x.records.Load(), NotSent: x.notSent.Load()}
}

// Close lets the sender write what is queued, for at most wait, then
// closes the connection. What is left is counted as not sent.
func (x *Exporter) Close(wait time.Duration) Totals {
	x.queue.close()
	select {
	case <-x.done:
	case <-time.After(wait):
		n := x.queue.drop()
		x.notSent.Add(uint64(n))
		x.log.Warn("IPFIX messages still queued at exit are dropped", "collector", x.addr, "records", n)
	}
	return x.Totals()
}

// send writes the queued messages, with templates first and again as
// RFC 7011 asks: every TemplateRefresh over UDP, at every connection over
// TCP. A message that cannot be written is dropped and counted; a TCP
// connection that fails is dialled again, at most every redialEvery.
func (x *Exporter) send() {
	defer close(x.done)
	var (
		seq       uint32 // data records sent in this transport session
		templates time.Time
		lastDial  = x.now()
		conn      = x.conn
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	// The templates go out at once, not just before the first records: a
	// collector that decodes messages in parallel (goflow2's workers) may
	// otherwise meet the records before their templates, and drop them.
	if conn != nil {
		t := x.enc.Templates()
		t.SetHeader(x.now(), 0)
		if err := x.write(conn, t.B); err == nil {
			templates = x.now()
		} else if x.network == "tcp" {
			conn = x.failed(conn, err, Message{})
		}
	}
	for {
		m, ok := x.queue.pop()
		if !ok {
			return
		}
		now := x.now()
		if conn == nil && now.Sub(lastDial) >= redialEvery {
			lastDial = now
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", x.addr)
			cancel()
			if err == nil {
				x.log.Info("connected to the IPFIX collector", "collector", x.addr)
				conn, seq, templates = c, 0, time.Time{} // a new session: templates again, sequence from 0
			}
		}
		if conn == nil {
			x.notSent.Add(uint64(m.Records))
			continue
		}
		if templates.IsZero() || (x.network == "udp" && now.Sub(templates) >= x.opts.TemplateRefresh) {
			t := x.enc.Templates()
			t.SetHeader(now, seq)
			if err := x.write(conn, t.B); err != nil {
				conn = x.failed(conn, err, m)
				continue
			}
			templates = now
		}
		m.SetHeader(now, seq)
		if err := x.write(conn, m.B); err != nil {
			conn = x.failed(conn, err, m)
			continue
		}
		seq += uint32(m.Records)
		x.messages.Add(1)
		x.records.Add(uint64(m.Records))
	}
}

func (x *Exporter) write(c net.Conn, b []byte) error {
	if x.network == "tcp" {
		if err := c.SetWriteDeadline(x.now().Add(writeTimeout)); err != nil {
			return err
		}
	}
	_, err := c.Write(b)
	return err
}

// failed counts m as not sent and, over TCP, drops the connection (a
// partial write broke the stream); it returns the connection to go on with.
func (x *Exporter) failed(c net.Conn, err error, m Message) net.Conn {
	x.notSent.Add(uint64(m.Records))
	if x.network == "udp" {
		// A collector that is down answers with ICMP port unreachable,
		// which the next write reports; the socket stays usable.
		if !errors.Is(err, net.ErrClosed) {
			x.log.Debug("IPFIX message not sent", "collector", x.addr, "error", err)
		}
		return c
	}
	x.log.Warn("lost the connection to the IPFIX collector; records are dropped and counted until it is back", "collector", x.addr, "error", err)
	c.Close()
	return nil
}
