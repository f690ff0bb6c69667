package ethtool_test

import (
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/ethtool"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// TestVeth reads a veth's statistics, turns its offloads off, and reads
// them back as off.
func TestVeth(t *testing.T) {
	p := testnet.NewPair(t)
	err := p.A.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		names, err := ethtool.StatNames(fd, p.A.Link)
		if err != nil {
			return err
		}
		vals, err := ethtool.Stats(fd, p.A.Link, len(names))
		if err != nil {
			return err
		}
		// veth names its peer's index first (drivers/net/veth.c).
		if i := slices.Index(names, "peer_ifindex"); i < 0 || vals[i] == 0 {
			t.Errorf("%s's statistics: %v = %v, want peer_ifindex among them", p.A.Link, names, vals)
		}
		if err := ethtool.OffloadsOff(fd, p.A.Link); err != nil {
			return err
		}
		for _, cmd := range []uint32{unix.ETHTOOL_GTSO, unix.ETHTOOL_GGSO, unix.ETHTOOL_GGRO} {
			v := struct{ cmd, data uint32 }{cmd: cmd}
			if err := ethtool.Ioctl(fd, p.A.Link, unsafe.Pointer(&v)); err != nil {
				return err
			}
			if v.data != 0 {
				t.Errorf("ethtool command %#x on %s: %d after OffloadsOff, want 0", cmd, p.A.Link, v.data)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
