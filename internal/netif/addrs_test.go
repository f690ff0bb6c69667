package netif

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testnet"
)

func TestAddrs(t *testing.T) {
	p := testnet.NewPair(t)
	var one, all []netip.Addr
	err := p.A.Do(func() error {
		var err error
		if one, err = Addrs(p.A.Index); err != nil {
			return err
		}
		all, err = Addrs(0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []netip.Addr{p.A.IPv4, p.A.IPv6} {
		if !slices.Contains(one, want) || !slices.Contains(all, want) {
			t.Errorf("Addrs of %s = %v, all = %v; want both to hold %s", p.A.Link, one, all, want)
		}
	}
	for _, a := range one {
		if a.Is4In6() {
			t.Errorf("address %s is IPv4-mapped: keys hold plain IPv4", a)
		}
		if a == p.B.IPv4 || a == p.B.IPv6 || a.IsLoopback() {
			t.Errorf("Addrs of %s holds %s, which is not its own", p.A.Link, a)
		}
	}
	// Index 0 is every interface of the namespace: the loopback too.
	if !slices.Contains(all, netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("Addrs(0) = %v, want 127.0.0.1 among them", all)
	}
	if _, err := Addrs(1 << 30); err == nil {
		t.Error("Addrs of a missing interface succeeded")
	}
}
