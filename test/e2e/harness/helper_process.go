package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// ProcessHelperEnv makes the test binary run as a process-mode helper.
const ProcessHelperEnv = "PKTSTAT_E2E_PROCESS_HELPER"

// runProcHelper serves the commands of procHelper.do until its input closes.
func runProcHelper(in io.Reader, out io.Writer) int {
	h := &procHelper{connTable: newConnTable()}
	return serveCommands(in, out, h.do)
}

type procHelper struct {
	connTable
}

// do runs one command. Counts in the answers are successful system
// calls, the ground truth for process mode's TCP packets.
//
//	listen NETWORK ADDR            TCP listener; answers its port
//	adopt                          takes descriptor 3 as its TCP listener
//	accept                         answers ID LOCAL REMOTE
//	dial NETWORK ADDR              TCP connection; answers ID LOCAL REMOTE
//	udp NETWORK LOCAL [REMOTE]     UDP socket, connected with REMOTE; answers ID LOCAL
//	write ID COUNT SIZE            COUNT writes of SIZE bytes; answers the write calls
//	read ID BYTES                  reads BYTES bytes; answers the read calls that returned data
//	sendto ID ADDR COUNT SIZE      COUNT datagrams of SIZE bytes to ADDR
//	recv ID COUNT SIZE             COUNT datagrams, each of SIZE bytes
//	serve ID COUNT REPLY           COUNT datagrams from anyone, each answered with REPLY bytes
//	ping NETWORK DST COUNT SIZE    COUNT echo requests of SIZE data bytes, each answered;
//	                               NETWORK as icmp.ListenPacket takes it ("udp4" is a ping socket)
//	close ID
func (h *procHelper) do(args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("empty command")
	}
	ints := func(from int) ([]int, error) {
		var out []int
		for _, a := range args[from:] {
			n, err := strconv.Atoi(a)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", a, err)
			}
			out = append(out, n)
		}
		return out, nil
	}
	// conn is the connection that args[1] names, with a deadline, and the
	// numbers from args[from] on.
	conn := func(from int) (net.Conn, []int, error) {
		if len(args) < 2 {
			return nil, nil, errors.New("no connection given")
		}
		c, err := h.get(args[1])
		if err != nil {
			return nil, nil, err
		}
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return nil, nil, err
		}
		n, err := ints(from)
		return c, n, err
	}
	switch args[0] {
	case "listen":
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err := lc.Listen(context.Background(), args[1], args[2])
		if err != nil {
			return "", err
		}
		h.ln = ln
		return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
	case "adopt":
		ln, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			return "", err
		}
		h.ln = ln
		return "", nil
	case "accept":
		c, err := h.ln.Accept()
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s %s", h.put(c), c.LocalAddr(), c.RemoteAddr()), nil
	case "dial":
		d := net.Dialer{Timeout: 5 * time.Second}
		d.SetMultipathTCP(false)
		c, err := d.Dial(args[1], args[2])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s %s", h.put(c), c.LocalAddr(), c.RemoteAddr()), nil
	case "udp":
		laddr, err := net.ResolveUDPAddr(args[1], args[2])
		if err != nil {
			return "", err
		}
		var c *net.UDPConn
		if len(args) > 3 {
			raddr, err := net.ResolveUDPAddr(args[1], args[3])
			if err != nil {
				return "", err
			}
			c, err = net.DialUDP(args[1], laddr, raddr)
			if err != nil {
				return "", err
			}
		} else if c, err = net.ListenUDP(args[1], laddr); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s", h.put(c), c.LocalAddr()), nil
	case "write":
		c, n, err := conn(2)
		if err != nil {
			return "", err
		}
		calls, err := rawWrite(c, n[0], Pattern(n[1]))
		return strconv.Itoa(calls), err
	case "read":
		c, n, err := conn(2)
		if err != nil {
			return "", err
		}
		calls, err := rawRead(c, n[0])
		return strconv.Itoa(calls), err
	case "sendto":
		c, n, err := conn(3)
		if err != nil {
			return "", err
		}
		to, err := netip.ParseAddrPort(args[2])
		if err != nil {
			return "", err
		}
		for i := range n[0] {
			if _, err := c.(*net.UDPConn).WriteToUDPAddrPort(Pattern(n[1]), to); err != nil {
				return "", fmt.Errorf("datagram %d: %w", i+1, err)
			}
		}
		return strconv.Itoa(n[0]), nil
	case "recv":
		c, n, err := conn(2)
		if err != nil {
			return "", err
		}
		buf := make([]byte, n[1]+1)
		for i := range n[0] {
			got, err := c.Read(buf)
			if err != nil || got != n[1] {
				return "", fmt.Errorf("datagram %d of %d: %d bytes, %v", i+1, n[0], got, err)
			}
		}
		return strconv.Itoa(n[0]), nil
	case "serve":
		c, n, err := conn(2)
		if err != nil {
			return "", err
		}
		u := c.(*net.UDPConn)
		buf := make([]byte, 1<<16)
		total := 0
		for i := range n[0] {
			got, from, err := u.ReadFromUDPAddrPort(buf)
			if err != nil {
				return "", fmt.Errorf("datagram %d of %d: %w", i+1, n[0], err)
			}
			total += got
			if _, err := u.WriteToUDPAddrPort(Pattern(n[1]), from); err != nil {
				return "", err
			}
		}
		return strconv.Itoa(total), nil
	case "ping":
		n, err := ints(3)
		if err != nil {
			return "", err
		}
		return "", ping(args[1], args[2], n[0], n[1])
	case "close":
		if len(args) < 2 {
			return "", errors.New("no connection given")
		}
		return "", h.drop(args[1])
	}
	return "", fmt.Errorf("bad command %q", args)
}

// rawWrite writes buf count times and returns how many write system calls
// moved data (a short write takes more than one).
func rawWrite(c net.Conn, count int, buf []byte) (int, error) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	calls := 0
	for range count {
		off := 0
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			for off < len(buf) {
				n, err := unix.Write(int(fd), buf[off:])
				if errors.Is(err, unix.EAGAIN) {
					return false
				}
				if err != nil {
					werr = err
					return true
				}
				calls++
				off += n
			}
			return true
		})
		if err = errors.Join(err, werr); err != nil {
			return calls, err
		}
	}
	return calls, nil
}

// rawRead reads exactly total bytes and returns how many read system calls
// returned data.
func rawRead(c net.Conn, total int) (int, error) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<16)
	calls, got := 0, 0
	var rerr error
	for got < total && rerr == nil {
		err := rc.Read(func(fd uintptr) bool {
			n, err := unix.Read(int(fd), buf[:min(len(buf), total-got)])
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false
			case err != nil:
				rerr = err
			case n == 0:
				rerr = io.ErrUnexpectedEOF
			default:
				calls++
				got += n
			}
			return true
		})
		if err != nil {
			return calls, err
		}
	}
	return calls, rerr
}

// ping sends count echo requests with size bytes of data to dst, one at a
// time, each after the previous reply. Raw sockets filter everything but
// echo replies in the kernel, so that they queue nothing else.
func ping(network, dst string, count, size int) error {
	v6 := strings.HasSuffix(network, "6") || strings.HasPrefix(network, "ip6")
	c, err := icmp.ListenPacket(network, "")
	if err != nil {
		return err
	}
	defer c.Close()
	var to net.Addr = &net.IPAddr{IP: net.ParseIP(dst)}
	if strings.HasPrefix(network, "udp") {
		to = &net.UDPAddr{IP: net.ParseIP(dst)}
	}
	req, rep, proto := icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply), 1
	if v6 {
		req, rep, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	switch network {
	case "ip4:icmp":
		var f ipv4.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv4.ICMPTypeEchoReply)
		if err := c.IPv4PacketConn().SetICMPFilter(&f); err != nil {
			return err
		}
	case "ip6:ipv6-icmp":
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		if err := c.IPv6PacketConn().SetICMPFilter(&f); err != nil {
			return err
		}
	}
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		m := icmp.Message{Type: req, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: seq, Data: Pattern(size)}}
		b, err := m.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(b, to); err != nil {
			return fmt.Errorf("echo request %d: %w", seq, err)
		}
		if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
			return err
		}
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("echo reply %d: %w", seq, err)
		}
		got, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			return err
		}
		if echo, ok := got.Body.(*icmp.Echo); !ok || got.Type != rep || echo.Seq != seq {
			return fmt.Errorf("echo request %d: answered with %+v", seq, got)
		}
	}
	return nil
}

// StartProcessHelper runs a helper named name (its comm) in namespace e, born
// in the cgroup dir.
func StartProcessHelper(t *testing.T, e testnet.End, dir, name string) *Helper {
	t.Helper()
	return StartHelper(t, e, dir, name, ProcessHelperEnv)
}
