package testnet

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
)

// AddPeer gives e's namespace one more veth, to a new namespace of its own:
// the veth in e's namespace is local, its other end peer. They get
// 198.18.subnet.1 and .2/24 and 2001:2:0:subnet::1 and ::2/64 (subnet 0 is
// NewPair's), and are up when it returns. The new namespace, and with it
// both veths, is removed when the test ends; DelLink removes them earlier.
func (e End) AddPeer(t testing.TB, subnet uint8) (local, peer End) {
	t.Helper()
	if subnet == 0 {
		t.Fatal("AddPeer: subnet 0 is the pair's own")
	}
	id := randomID()
	local = End{NS: e.NS, Link: "pc" + id,
		IPv4: netip.AddrFrom4([4]byte{198, 18, subnet, 1}), IPv6: netip.MustParseAddr(fmt.Sprintf("2001:2:0:%x::1", subnet))}
	peer = End{NS: "pktC-" + id, Link: "pd" + id,
		IPv4: netip.AddrFrom4([4]byte{198, 18, subnet, 2}), IPv6: netip.MustParseAddr(fmt.Sprintf("2001:2:0:%x::2", subnet))}
	run(t, "ip", "netns", "add", peer.NS)
	ns := peer.NS
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	e.run(t, "ip", "link", "add", local.Link, "type", "veth", "peer", "name", peer.Link, "netns", peer.NS)
	peer.run(t, "ip", "link", "set", "lo", "up")
	local.bringUp(t)
	peer.bringUp(t)
	return local, peer
}

// bringUp gives e's veth its addresses (no duplicate address detection,
// so IPv6 works at once), sets it up, and fills in its index and MAC.
func (e *End) bringUp(t testing.TB) {
	t.Helper()
	e.run(t, "ip", "addr", "add", e.IPv4.String()+"/24", "dev", e.Link)
	e.run(t, "ip", "addr", "add", e.IPv6.String()+"/64", "dev", e.Link, "nodad")
	e.run(t, "ip", "link", "set", e.Link, "up")
	err := e.Do(func() error {
		ifc, err := net.InterfaceByName(e.Link)
		if err != nil {
			return err
		}
		e.Index, e.MAC = ifc.Index, ifc.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatalf("look up %s in %s: %v", e.Link, e.NS, err)
	}
}

// DelLink deletes e's veth (and with it its other end) while the test
// runs.
func (e End) DelLink(t testing.TB) {
	t.Helper()
	e.run(t, "ip", "link", "del", e.Link)
}

// Route adds a route to dst through the gateway via in e's namespace.
func (e End) Route(t testing.TB, dst netip.Prefix, via netip.Addr) {
	t.Helper()
	e.run(t, "ip", "route", "add", dst.String(), "via", via.String())
}
