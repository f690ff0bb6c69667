package capture

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// maxFuzzFrame caps a fuzzed frame at a jumbo frame's size; the fuzzer's
// longer inputs are cut to it.
const maxFuzzFrame = 9216

// FuzzParser runs arbitrary frames through the TC and XDP programs, with
// the parser's fast path and without it (parserHooks). For
// every frame each program must make exactly one row of one packet and of
// the frame's length (nothing lost, nothing counted twice), keyed as
// gopacket decodes the same bytes, with an application-protocol verdict
// that follows the rules of bpftest.Expectation.CheckL7.
//
// Seeds: every frame of the parser table, and testdata/fuzz/FuzzParser.
//
//	go test -run '^$' -fuzz FuzzParser -fuzztime 5m ./internal/capture/
func FuzzParser(f *testing.F) {
	for _, c := range bpftest.Cases(f) {
		f.Add(c.Frame)
	}
	hooks := parserHooks(f, testLoad{maxEntries: 1024})
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 {
			return // BPF_PROG_TEST_RUN needs an Ethernet header
		}
		frame = frame[:min(len(frame), maxFuzzFrame)]
		x, err := bpftest.Expect(frame, bpftest.Options{})
		if err != nil {
			t.Fatalf("oracle: %v", err)
		}
		for _, h := range hooks {
			if !h.accepts(frame) {
				continue
			}
			for _, p := range h.progs {
				checkRow(t, "fuzzed frame", x, p, runOne(t, h, p, frame))
			}
		}
	})
}

// TestParserProperty feeds frames from a random generator, seeded so that
// a failure can be replayed, to every program with the parser's fast path
// and without it (parserHooks), in two ways. One at a time: each frame makes
// one row that agrees with gopacket. All at once: the packets of all rows
// add up to the number of frames, and each row holds exactly the frames
// that gopacket reads as its key.
func TestParserProperty(t *testing.T) {
	const frames = 4000
	seed := uint64(0x7061636b65747374) // change to explore; a failure names its frame
	rng := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	hooks := parserHooks(t, testLoad{maxEntries: 8192})
	cases := bpftest.Cases(t)
	l7 := bpftest.L7Payloads(t)

	batch := make([][]byte, 0, frames)
	for range frames {
		batch = append(batch, randomFrame(rng, cases, l7))
	}
	for _, h := range hooks {
		for _, p := range h.progs {
			var fed uint64
			want := map[flow.Key]uint64{}
			for i, fr := range batch {
				if !h.accepts(fr) {
					continue
				}
				x, err := bpftest.Expect(fr, bpftest.Options{})
				if err != nil {
					t.Fatalf("frame %d: oracle: %v", i, err)
				}
				if !checkRow(t, "random frame "+itoa(i), x, p, runOne(t, h, p, fr)) {
					t.Fatalf("frame %d (%d bytes): %x", i, len(fr), fr)
				}
				// Loose keys cannot be predicted exactly: their rows are
				// checked one at a time above.
				if !x.Loose {
					k := x.Key
					k.Dir = p.dir
					want[k]++
				}
				fed++
			}

			// All at once.
			var sent uint64
			for _, fr := range batch {
				if h.accepts(fr) {
					bpftest.Run(t, p.prog, fr, nil)
					sent++
				}
			}
			var total uint64
			got := map[flow.Key]uint64{}
			for _, r := range activeRows(t, h.tb) {
				total += r.Packets
				got[r.Key] = r.Packets
			}
			if total != sent {
				t.Errorf("%s: rows hold %d packets, %d frames were fed", p.name, total, sent)
			}
			for k, n := range want {
				if got[k] != n {
					t.Errorf("%s: row %+v holds %d packets, gopacket reads %d frames as it", p.name, k, got[k], n)
				}
			}
			t.Logf("%s: %d random frames, %d rows, every one counted once", p.name, fed, len(got))
		}
	}
}

// randomFrame builds a frame from random parts: a mutated frame of the
// parser table, or a random stack of headers with random fields and
// lengths, then maybe cut short and with bytes flipped.
func randomFrame(rng *rand.Rand, cases []bpftest.Case, l7 []bpftest.L7Payload) []byte {
	var b []byte
	if rng.IntN(3) == 0 {
		b = append(b, cases[rng.IntN(len(cases))].Frame...)
	} else {
		b = randomStack(rng, l7)
	}
	for range rng.IntN(4) {
		if len(b) > 14 {
			b[14+rng.IntN(len(b)-14)] = byte(rng.Uint32())
		}
	}
	if rng.IntN(4) == 0 && len(b) > 14 {
		b = b[:14+rng.IntN(len(b)-13)]
	}
	return b
}

var (
	ethTypes = []uint16{0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8, 0x88B5, 0x0042}
	ipProtos = []uint8{6, 17, 132, 1, 58, 50, 51, 47, 89, 2, 4, 41, 0, 43, 44, 60, 59, 253}
	extTypes = []uint8{0, 43, 44, 60, 51}
)

func randomStack(rng *rand.Rand, l7 []bpftest.L7Payload) []byte {
	b := make([]byte, 12, 256)
	for i := range b {
		b[i] = byte(i + 2)
	}
	for range rng.IntN(4) {
		tpid := []uint16{0x8100, 0x88A8}[rng.IntN(2)]
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, uint16(rng.IntN(4096)))
	}
	et := ethTypes[rng.IntN(len(ethTypes))]
	b = binary.BigEndian.AppendUint16(b, et)
	proto := ipProtos[rng.IntN(len(ipProtos))]
	switch et {
	case 0x0800:
		ihl := 5
		if rng.IntN(4) == 0 {
			ihl += rng.IntN(11)
		}
		h := make([]byte, ihl*4)
		h[0] = 0x40 | byte(ihl)
		h[8], h[9] = 64, proto
		copy(h[12:], []byte{198, 18, 0, 1, 198, 19, 0, 2})
		if rng.IntN(5) == 0 {
			binary.BigEndian.PutUint16(h[6:], uint16(rng.IntN(1<<13))) // a fragment
		}
		for i := 20; i < len(h); i++ {
			h[i] = byte(rng.IntN(3)) // options: ends, NOPs, garbage
		}
		l4 := randomL4(rng, proto, l7)
		tot := len(h) + len(l4)
		tot = fuzzLength(rng, tot)
		binary.BigEndian.PutUint16(h[2:], uint16(tot))
		b = append(append(b, h...), l4...)
	case 0x86DD:
		h := make([]byte, 40)
		h[0] = 0x60
		h[7] = 64
		copy(h[8:], []byte{0x20, 0x01, 0, 2, 15: 1})
		copy(h[24:], []byte{0x20, 0x01, 0, 2, 15: 2})
		var chain []byte
		next := &h[6]
		for range rng.IntN(11) {
			t := extTypes[rng.IntN(len(extTypes))]
			*next = t
			var e []byte
			switch t {
			case 44:
				e = make([]byte, 8)
				if rng.IntN(3) == 0 {
					binary.BigEndian.PutUint16(e[2:], uint16(rng.IntN(1<<16))&0xFFF8)
				}
			case 51:
				n := rng.IntN(4) + 1
				e = make([]byte, (n+2)*4)
				e[1] = byte(n)
				if rng.IntN(8) == 0 {
					e[1] = 0
				}
			default:
				n := rng.IntN(3)
				e = make([]byte, (n+1)*8)
				e[1] = byte(n)
				e[2] = byte(rng.IntN(256))
				e[3] = byte(rng.IntN(16))
			}
			chain = append(chain, e...)
			next = &chain[len(chain)-len(e)]
		}
		*next = proto
		l4 := randomL4(rng, proto, l7)
		pl := len(chain) + len(l4)
		pl = fuzzLength(rng, pl)
		binary.BigEndian.PutUint16(h[4:], uint16(pl))
		b = append(append(append(b, h...), chain...), l4...)
	case 0x0806:
		hl, pl := 6, 4
		if rng.IntN(4) == 0 {
			hl, pl = rng.IntN(20), rng.IntN(20)
		}
		a := []byte{0, 1, 8, 0, byte(hl), byte(pl), 0, byte(rng.IntN(5))}
		a = append(a, make([]byte, 2*hl+2*pl)...)
		for i := 8; i < len(a); i++ {
			a[i] = byte(rng.Uint32())
		}
		b = append(b, a...)
	default:
		b = append(b, randomBytes(rng, rng.IntN(64))...)
	}
	for len(b) < 60 && rng.IntN(2) == 0 {
		b = append(b, 0) // Ethernet padding
	}
	return b
}

// randomL4 is a header of proto with random fields and a random length,
// and a payload: an application message, or random bytes.
func randomL4(rng *rand.Rand, proto uint8, l7 []bpftest.L7Payload) []byte {
	sizes := map[uint8]int{6: 20, 17: 8, 132: 12, 1: 8, 58: 4, 50: 8, 51: 12, 47: 4, 89: 24, 2: 8}
	n, ok := sizes[proto]
	if !ok {
		n = 0
	}
	h := randomBytes(rng, n)
	switch proto {
	case 6:
		doff := 5 + rng.IntN(3)
		if rng.IntN(10) == 0 {
			doff = rng.IntN(16)
		}
		h[12] = byte(doff << 4)
		for len(h) < doff*4 {
			h = append(h, []byte{1, 0, 2}[rng.IntN(3)])
		}
	case 17:
		binary.BigEndian.PutUint16(h[4:], 0) // fixed below
	case 51:
		h[1] = byte(rng.IntN(4))
		h = append(h, make([]byte, int(h[1])*4)...)
	case 47:
		h[0] &= 0xB0 // C, K, S; R now and then below
		if rng.IntN(8) == 0 {
			h[0] |= 0x40
		}
		h[1] &= 0x87
		for i := 0; i < 4; i++ {
			h = append(h, randomBytes(rng, 4)...)
		}
	case 89:
		h[0] = byte(2 + rng.IntN(2))
		if rng.IntN(8) == 0 {
			h[0] = byte(rng.IntN(256))
		}
		h[1] = byte(1 + rng.IntN(5))
	case 2:
		h[0] = []byte{0x11, 0x12, 0x16, 0x17, 0x22, 0x30}[rng.IntN(6)]
	}
	var payload []byte
	if len(l7) > 0 && rng.IntN(2) == 0 {
		payload = l7[rng.IntN(len(l7))].Bytes
		if len(payload) > 200 {
			payload = payload[:200]
		}
	} else {
		payload = randomBytes(rng, rng.IntN(40))
	}
	out := append(h, payload...)
	if proto == 17 {
		ulen := len(out)
		ulen = fuzzLength(rng, ulen)
		binary.BigEndian.PutUint16(out[4:], uint16(ulen))
	}
	return out
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// fuzzLength returns the length field to write for n bytes: n itself four
// times in six, else 0 or a random value up to 7 past n, so that the
// programs also meet lengths that lie.
func fuzzLength(rng *rand.Rand, n int) int {
	switch rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return rng.IntN(n + 8)
	}
	return n
}
