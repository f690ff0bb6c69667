package testnet

import (
	"net"
	"testing"
)

func TestParseSNMP(t *testing.T) {
	raw := []byte("Tcp: RtoAlgorithm OutSegs CurrEstab\nTcp: 1 12345 -1\nUdp: InDatagrams OutDatagrams\nUdp: 7 9\n")
	got, err := parseSNMP(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got["Tcp.OutSegs"] != 12345 || got["Udp.OutDatagrams"] != 9 || got["Udp.InDatagrams"] != 7 {
		t.Fatalf("parsed %v", got)
	}
	if _, err := parseSNMP([]byte("Tcp: A B\nTcp: 1\n")); err == nil {
		t.Fatal("a value line shorter than its header was accepted")
	}
}

// TestPairCarriesUDP checks that a pair really connects its ends: a
// datagram sent from A in A's namespace arrives at B, and the namespaces'
// own counters see exactly one datagram each way.
func TestPairCarriesUDP(t *testing.T) {
	p := NewPair(t)
	before, err := p.B.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	var srv *net.UDPConn
	if err := p.B.Do(func() (err error) {
		srv, err = net.ListenUDP("udp", &net.UDPAddr{IP: p.B.IPv4.AsSlice(), Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := p.A.Do(func() error {
		c, err := net.Dial("udp", "198.18.0.2:9999")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _, err := srv.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	after, err := p.B.SNMP()
	if err != nil {
		t.Fatal(err)
	}
	if d := after["Udp.InDatagrams"] - before["Udp.InDatagrams"]; d != 1 {
		t.Fatalf("B's Udp.InDatagrams rose by %d, want 1", d)
	}
}
