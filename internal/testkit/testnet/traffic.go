package testnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// udpRcvBuf is the receive buffer of sockets from ListenUDP: big enough to
// hold a few thousand small datagrams, so that a sender's burst is never
// dropped by the socket before the test reads it.
const udpRcvBuf = 16 << 20

// PinNeighbors gives each end a permanent neighbor entry for the other's
// addresses, so that no ARP or neighbor discovery runs while a test
// counts packets, and no first packet waits in a neighbor queue.
func (p *Pair) PinNeighbors(t testing.TB) {
	t.Helper()
	for _, d := range []struct{ from, to End }{{p.A, p.B}, {p.B, p.A}} {
		for _, ip := range []netip.Addr{d.to.IPv4, d.to.IPv6} {
			d.from.run(t, "ip", "neigh", "replace", ip.String(), "lladdr", d.to.MAC.String(), "dev", d.from.Link, "nud", "permanent")
		}
	}
}

// ListenUDP opens a UDP socket bound to addr inside the namespace, with a
// receive buffer large enough for a burst of a few thousand datagrams.
func (e End) ListenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := e.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen udp %s in %s: %w", addr, e.NS, err)
	}
	if err := setSockoptInt(c, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, udpRcvBuf); err != nil {
		c.Close()
		return nil, fmt.Errorf("grow receive buffer of %s: %w", addr, err)
	}
	return c, nil
}

// DialUDP opens a UDP socket inside the namespace, bound to local and
// connected to remote.
func (e End) DialUDP(local, remote netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := e.Do(func() error {
		var err error
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(local), net.UDPAddrFromAddrPort(remote))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial udp %s -> %s in %s: %w", local, remote, e.NS, err)
	}
	return c, nil
}

func setSockoptInt(c syscall.Conn, level, opt, value int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, value) }); err != nil {
		return err
	}
	return serr
}

// SendUDP writes n datagrams carrying payload on a connected socket.
func SendUDP(c *net.UDPConn, payload []byte, n int) error {
	for i := range n {
		if _, err := c.Write(payload); err != nil {
			return fmt.Errorf("send datagram %d of %d: %w", i+1, n, err)
		}
	}
	return nil
}

// ReadUDP reads datagrams until n of size bytes have arrived, a datagram of
// another size arrives, or timeout passes. It returns how many arrived.
func ReadUDP(c *net.UDPConn, n, size int, timeout time.Duration) (int, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	buf := make([]byte, size+1)
	for got := 0; got < n; got++ {
		m, err := c.Read(buf)
		if err != nil {
			return got, fmt.Errorf("read datagram %d of %d: %w", got+1, n, err)
		}
		if m != size {
			return got, fmt.Errorf("datagram %d has %d bytes, want %d", got+1, m, size)
		}
	}
	return n, nil
}

// LinkStats returns the kernel's counters of the end's veth. On a veth
// they count skbs, so one GSO skb counts once however many segments it
// stands for.
func (e End) LinkStats() (*netlink.LinkStatistics, error) {
	var st *netlink.LinkStatistics
	err := e.Do(func() error {
		l, err := netlink.LinkByName(e.Link)
		if err != nil {
			return err
		}
		st = l.Attrs().Statistics
		if st == nil {
			return errors.New("no statistics")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read counters of %s in %s: %w", e.Link, e.NS, err)
	}
	return st, nil
}

// tcpStateName names a state of /proc/net/tcp by its hex code.
func tcpStateName(code string) string {
	names := [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
		"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"}
	v, err := strconv.ParseUint(code, 16, 8)
	if err != nil || v == 0 || int(v) >= len(names) {
		return "0x" + code
	}
	return names[v]
}

// TCPStates counts the namespace's TCP sockets (IPv4 and IPv6) by state,
// e.g. {"TIME_WAIT": 1}.
func (e End) TCPStates() (map[string]int, error) {
	out := map[string]int{}
	err := e.Do(func() error {
		for _, f := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
			raw, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			sc := bufio.NewScanner(bytes.NewReader(raw))
			sc.Scan() // header
			for sc.Scan() {
				fields := strings.Fields(sc.Text())
				if len(fields) < 4 {
					return fmt.Errorf("%s: short line %q", f, sc.Text())
				}
				out[tcpStateName(fields[3])]++
			}
			if err := sc.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tcp sockets of %s: %w", e.NS, err)
	}
	return out, nil
}
