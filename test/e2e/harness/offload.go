package harness

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/ethtool"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// OffloadsOff turns TSO, GSO and GRO off on e's veth, so that every frame
// on it is one packet on the wire.
func OffloadsOff(t *testing.T, e testnet.End) {
	t.Helper()
	err := e.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return ethtool.OffloadsOff(fd, e.Link)
	})
	if err != nil {
		t.Fatal(err)
	}
}
