package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

const (
	// cgHelperEnv makes the test binary run as the helper inside the cgroup.
	cgHelperEnv = "PKTSTAT_E2E_CGROUP_HELPER"
	// CgroupHelperComm is the helper's executable name, and so its comm.
	CgroupHelperComm = "pktcg-inside"
)

// runCgroupHelper serves the commands of cgHelper.do until its input closes.
func runCgroupHelper(in io.Reader, out io.Writer) int {
	h := &cgHelper{connTable: newConnTable()}
	return serveCommands(in, out, h.do)
}

type cgHelper struct {
	connTable
}

// add keeps c and answers its ID and addresses.
func (h *cgHelper) add(c net.Conn) string {
	return fmt.Sprintf("%d %s %s", h.put(c), c.LocalAddr(), c.RemoteAddr())
}

// do runs one command:
//
//	listen NETWORK ADDR        TCP listener; answers its port
//	accept                     answers ID LOCAL REMOTE
//	dial NETWORK ADDR          TCP connection; answers ID LOCAL REMOTE
//	dialmp NETWORK ADDR        the same over MPTCP
//	mptcp ID                   whether the connection runs MPTCP (true/false)
//	udp NETWORK LOCAL REMOTE   connected UDP socket; answers ID LOCAL REMOTE
//	write ID COUNT SIZE        COUNT writes (datagrams) of SIZE bytes
//	read ID COUNT SIZE         TCP: COUNT*SIZE bytes; UDP: COUNT datagrams of SIZE
//	eof ID                     waits for the peer's FIN: the next read returns EOF
//	close ID
func (h *cgHelper) do(args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("empty command")
	}
	need := map[string]int{"listen": 3, "accept": 1, "dial": 3, "dialmp": 3, "udp": 4, "write": 4, "read": 4, "close": 2, "mptcp": 2, "eof": 2}
	if n, ok := need[args[0]]; !ok || len(args) != n {
		return "", fmt.Errorf("bad command %q", args)
	}
	switch args[0] {
	case "listen":
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), args[1], args[2])
		if err != nil {
			return "", err
		}
		h.ln = ln
		return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
	case "accept":
		if h.ln == nil {
			return "", errors.New("not listening")
		}
		c, err := h.ln.Accept()
		if err != nil {
			return "", err
		}
		return h.add(c), nil
	case "dial", "dialmp":
		d := net.Dialer{KeepAlive: -1, Timeout: 5 * time.Second}
		d.SetMultipathTCP(args[0] == "dialmp")
		c, err := d.Dial(args[1], args[2])
		if err != nil {
			return "", err
		}
		return h.add(c), nil
	case "udp":
		laddr, err := net.ResolveUDPAddr(args[1], args[2])
		if err != nil {
			return "", err
		}
		raddr, err := net.ResolveUDPAddr(args[1], args[3])
		if err != nil {
			return "", err
		}
		c, err := net.DialUDP(args[1], laddr, raddr)
		if err != nil {
			return "", err
		}
		return h.add(c), nil
	}
	if args[0] == "close" {
		return "", h.drop(args[1])
	}
	c, err := h.get(args[1])
	if err != nil {
		return "", err
	}
	if args[0] == "eof" {
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return "", err
		}
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			return "", fmt.Errorf("want EOF, read %d bytes: %v", n, err)
		}
		return "", nil
	}
	if args[0] == "mptcp" {
		tc, ok := c.(*net.TCPConn)
		if !ok {
			return "", errors.New("not a TCP connection")
		}
		on, err := tc.MultipathTCP()
		return strconv.FormatBool(on), err
	}
	count, err1 := strconv.Atoi(args[2])
	size, err2 := strconv.Atoi(args[3])
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	switch args[0] {
	case "write":
		buf := Pattern(size)
		for i := range count {
			if _, err := c.Write(buf); err != nil {
				return "", fmt.Errorf("write %d of %d: %w", i+1, count, err)
			}
		}
		return "", nil
	default: // read
		if _, ok := c.(*net.UDPConn); ok {
			buf := make([]byte, size+1)
			for i := range count {
				n, err := c.Read(buf)
				if err != nil || n != size {
					return "", fmt.Errorf("datagram %d of %d: %d bytes, %v", i+1, count, n, err)
				}
			}
			return "", nil
		}
		_, err := io.ReadFull(c, make([]byte, count*size))
		return "", err
	}
}

// StartCgroupHelper runs the helper in namespace e, born in the cgroup dir,
// under the name pktcg-inside.
func StartCgroupHelper(t *testing.T, e testnet.End, dir string) *Helper {
	t.Helper()
	return StartHelper(t, e, dir, CgroupHelperComm, cgHelperEnv)
}
