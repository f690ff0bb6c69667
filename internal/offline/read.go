// Package offline reads capture files (pcap and pcapng, with gopacket's
// pure-Go pcapgo) into Ethernet frames for --read: each packet with its
// capture timestamp, its length on the wire, its direction where the file
// or the options say it, and how many wire segments it stands for. The
// frames themselves are counted by the same eBPF programs as live traffic
// (internal/capture/replay.go); nothing here decides a flow key.
package offline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Dir is a packet's direction as the capture file records it.
type Dir uint8

// The directions a file can record.
const (
	DirUnknown Dir = iota // the file does not say
	DirIn                 // received by the capturing host
	DirOut                // sent by it
)

// Packet is one packet of a capture file, as an Ethernet frame.
type Packet struct {
	// Data is the captured part of the frame. It is valid until the next
	// call to Next.
	Data []byte
	// Len is the frame's length on the wire, at least len(Data): a file
	// written with a snap length holds only the first bytes.
	Len  int
	Time time.Time
	// Dir is the direction the file records (pcapng epb_flags, the
	// packet type of a Linux cooked capture); DirUnknown if none.
	Dir Dir
}

// Truncated reports whether the file holds only part of the frame.
func (p *Packet) Truncated() bool { return len(p.Data) < p.Len }

// Reader reads Ethernet frames from a pcap or pcapng stream.
type Reader struct {
	next   func() (Packet, linkType, error)
	closer io.Closer
	buf    []byte // the frame converted from a cooked capture
	// Cooked is set once a Linux cooked capture (SLL, SLL2) was turned
	// into Ethernet frames, for the note the run logs.
	Cooked bool
	// Format names the file format: "pcap" or "pcapng".
	Format string
	// Size is the file's size, 0 when unknown (a pipe).
	Size  int64
	count *countingReader
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Offset is how many bytes of the file have been read (read ahead
// included): the progress through it.
func (r *Reader) Offset() int64 {
	if r.count == nil {
		return 0
	}
	return r.count.n
}

// Open opens a capture file; "-" reads standard input (stdin).
func Open(name string, stdin io.Reader) (*Reader, error) {
	if name == "-" {
		c := &countingReader{r: stdin}
		r, err := NewReader(c)
		if err != nil {
			return nil, fmt.Errorf("read capture from standard input: %w", err)
		}
		r.count = c
		if f, ok := stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				r.Size = st.Size()
			}
		}
		return r, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open capture file: %w", err)
	}
	c := &countingReader{r: f}
	r, err := NewReader(c)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read capture file %s: %w", name, err)
	}
	r.closer, r.count = f, c
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		r.Size = st.Size()
	}
	return r, nil
}

// pcapngMagic is the block type of a pcapng section header, the first
// four bytes of every pcapng file.
var pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

// NewReader reads a pcap or pcapng stream, told apart by its first bytes.
func NewReader(in io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(in, 1<<16)
	head, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("not a pcap or pcapng file: %w", err)
	}
	r := &Reader{}
	if string(head) == string(pcapngMagic) {
		r.Format = "pcapng"
		tap := newFlagTap(br)
		ng, err := pcapgo.NewNgReader(tap, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, fmt.Errorf("pcapng: %w", err)
		}
		r.next = func() (Packet, linkType, error) {
			data, ci, err := ng.ZeroCopyReadPacketData()
			if err != nil {
				return Packet{}, 0, err
			}
			tp := tap.pop()
			return Packet{Data: data, Len: ci.Length, Time: ci.Timestamp, Dir: tp.dir}, linkType(tp.link), nil
		}
		return r, nil
	}
	r.Format = "pcap"
	// The header's link type in full (pcapgo keeps a byte of it).
	hdr, err := br.Peek(24)
	if err != nil {
		return nil, fmt.Errorf("not a pcap or pcapng file: %w", err)
	}
	// The upper bits of the field may say how long an FCS is.
	lt := linkType(binary.LittleEndian.Uint32(hdr[20:24]) & 0xffff)
	if hdr[0] == 0xa1 { // big-endian magic
		lt = linkType(binary.BigEndian.Uint32(hdr[20:24]) & 0xffff)
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("not a pcap or pcapng file: %w", err)
	}
	if err := checkLinkType(lt); err != nil {
		return nil, err
	}
	r.next = func() (Packet, linkType, error) {
		data, ci, err := pr.ZeroCopyReadPacketData()
		if err != nil {
			return Packet{}, 0, err
		}
		return Packet{Data: data, Len: ci.Length, Time: ci.Timestamp}, lt, nil
	}
	return r, nil
}

// Next returns the next packet as an Ethernet frame; io.EOF at the end.
func (r *Reader) Next() (Packet, error) {
	p, lt, err := r.next()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// A capture cut short (tcpdump killed mid-write): what was read counts.
		return Packet{}, io.EOF
	}
	if err != nil {
		return Packet{}, err
	}
	if p.Len < len(p.Data) {
		p.Len = len(p.Data)
	}
	switch lt {
	case linkEthernet:
		return p, nil
	case linkSLL, linkSLL2:
		r.Cooked = true
		return r.fromCooked(p, lt)
	}
	return Packet{}, checkLinkType(lt)
}

// Close closes the file (not standard input).
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// linkType is a pcap LINKTYPE_ value in full.
type linkType uint32

// The link types Next turns into Ethernet frames.
const (
	linkEthernet linkType = 1
	linkSLL      linkType = 113
	linkSLL2     linkType = 276
)

// checkLinkType accepts the link types Next turns into Ethernet frames.
func checkLinkType(lt linkType) error {
	switch lt {
	case linkEthernet, linkSLL, linkSLL2:
		return nil
	}
	name := "unknown"
	if lt < 256 {
		name = layers.LinkType(lt).String()
	}
	return fmt.Errorf("link type %d (%s) is not supported: --read takes Ethernet and Linux cooked (SLL, SLL2) captures", int(lt), name)
}
