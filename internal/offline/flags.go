package offline

import (
	"encoding/binary"
	"io"
)

// pcapgo (gopacket v1.1.19) skips the options of an Enhanced Packet Block,
// and with them epb_flags, which says whether the packet was inbound or
// outbound. flagTap sits between the file and pcapgo's reader: it follows
// the pcapng block structure of the bytes pcapgo reads and queues the
// direction of every packet block, in file order, which pop hands out as
// pcapgo returns the packets. pcapgo returns every packet block (the run
// asks it for mixed link types), so the two stay in step; the queue holds
// at most the blocks pcapgo has read ahead, and is bounded by its buffer.
type flagTap struct {
	r     io.Reader
	order binary.ByteOrder
	// block is the block being read, gathered whole (packet blocks
	// hold one packet: at most 64 KiB in practice).
	block []byte
	dirs  []tapped
	links []uint16 // link type of each interface of the section
	lost  bool     // the framing broke: no more directions
}

const (
	blockSHB = 0x0a0d0d0a
	blockIDB = 0x00000001
	blockEPB = 0x00000006
	blockSPB = 0x00000003
	blockPB  = 0x00000002 // obsolete Packet Block: flags as in EPB (pack_flags)

	optEndOfOpt = 0
	optEPBFlags = 2
)

func newFlagTap(r io.Reader) *flagTap {
	return &flagTap{r: r, order: binary.LittleEndian}
}

// Read passes bytes through, following the blocks.
func (t *flagTap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.follow(p[:n])
	return n, err
}

// follow gathers the blocks in b, one at a time, and notes each packet
// block's direction when it is whole. A stream that breaks the framing
// stops the following; pop then says DirUnknown.
func (t *flagTap) follow(b []byte) {
	for len(b) > 0 && !t.lost {
		if len(t.block) < 12 {
			k := min(12-len(t.block), len(b))
			t.block = append(t.block, b[:k]...)
			b = b[k:]
			if len(t.block) < 12 {
				return
			}
			if t.order.Uint32(t.block[0:4]) == blockSHB || binary.BigEndian.Uint32(t.block[0:4]) == blockSHB {
				// The byte-order magic follows the section header's length.
				t.order = binary.LittleEndian
				if t.block[8] == 0x1a && t.block[9] == 0x2b {
					t.order = binary.BigEndian
				}
			}
		}
		total := int(t.order.Uint32(t.block[4:8]))
		if total < 12 || total > 1<<28 {
			t.lost = true
			return
		}
		k := min(total-len(t.block), len(b))
		t.block = append(t.block, b[:k]...)
		b = b[k:]
		if len(t.block) == total {
			t.finish()
			t.block = t.block[:0]
		}
	}
}

// tapped is what the tap learnt of one packet block.
type tapped struct {
	dir Dir
	// link is the link type of the packet's interface, in full: gopacket
	// v1.1.19 keeps link types in a byte, which turns LINUX_SLL2 (276)
	// into 20.
	link uint16
}

// finish notes what matters of a whole block: a section's interfaces and
// their link types, and each packet's direction and link type.
func (t *flagTap) finish() {
	b := t.block
	link := func(iface int) uint16 {
		if iface < len(t.links) {
			return t.links[iface]
		}
		return 0
	}
	switch t.order.Uint32(b[0:4]) {
	case blockSHB:
		t.links = t.links[:0]
	case blockIDB:
		if len(b) >= 10 {
			t.links = append(t.links, t.order.Uint16(b[8:10]))
		}
	case blockSPB:
		t.dirs = append(t.dirs, tapped{link: link(0)})
	case blockEPB, blockPB:
		if len(b) < 28+4 {
			t.dirs = append(t.dirs, tapped{})
			return
		}
		iface := int(t.order.Uint32(b[8:12]))
		if t.order.Uint32(b[0:4]) == blockPB {
			iface = int(t.order.Uint16(b[8:10]))
		}
		capLen := int(t.order.Uint32(b[20:24]))
		opts := 28 + (capLen+3)&^3
		t.dirs = append(t.dirs, tapped{dir: t.epbDir(b[min(opts, len(b)-4) : len(b)-4]), link: link(iface)})
	}
}

// epbDir reads the direction out of a packet block's options.
func (t *flagTap) epbDir(opts []byte) Dir {
	for len(opts) >= 4 {
		code := t.order.Uint16(opts[0:2])
		n := int(t.order.Uint16(opts[2:4]))
		if code == optEndOfOpt || 4+n > len(opts) {
			break
		}
		if code == optEPBFlags && n == 4 {
			switch t.order.Uint32(opts[4:8]) & 3 {
			case 1:
				return DirIn
			case 2:
				return DirOut
			}
			return DirUnknown
		}
		opts = opts[4+(n+3)&^3:]
	}
	return DirUnknown
}

// pop returns what the tap knows of the next packet pcapgo returns.
func (t *flagTap) pop() tapped {
	if len(t.dirs) == 0 {
		return tapped{}
	}
	d := t.dirs[0]
	t.dirs = t.dirs[1:]
	return d
}
