package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// TestProcessBackendsVerify loads each backend's programs, which runs them
// through the verifier, whether or not this kernel lets them attach. A
// kernel that refuses to load a program type at all is reported as such,
// with the reason, and the backend's check is skipped.
func TestProcessBackendsVerify(t *testing.T) {
	testnet.RequireRoot(t)
	spec, err := ProcessSpec(1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range ProcessBackends() {
		t.Run(string(b), func(t *testing.T) {
			coll, err := loadBackend(spec, b)
			if err != nil {
				var ve *ebpf.VerifierError
				if b == ProcessFentry && errors.Is(err, unix.EPERM) && !errors.As(err, &ve) {
					t.Skipf("skipped: this kernel refuses to load fentry/fexit programs at all, so the verifier never sees them: %v", err)
				}
				if errors.Is(err, ebpf.ErrNotSupported) && !errors.As(err, &ve) {
					// Such as the sock_send_length tracepoint before 6.3.
					t.Skipf("skipped: this kernel lacks a hook of the %s backend: %v", b, err)
				}
				if r := kernel.AsRefusal(err); r != nil && r.MissingHelper() != "" {
					// Such as bpf_sk_storage_get in tracing programs before 5.11.
					t.Skipf("skipped: %v", err)
				}
				t.Fatalf("the %s backend does not load: %v", b, err)
			}
			defer coll.Close()
			for _, h := range backendHooks(b) {
				if h.kind != hookIter && coll.Programs[h.prog] == nil {
					t.Errorf("program %s is not loaded", h.prog)
				}
			}
			t.Logf("%s: %d programs loaded, accepted by the verifier", b, len(coll.Programs))
		})
	}
}

// TestProcessSeedIterator loads the start-up iterator on a backend's maps.
// It is optional (TestProcessOwners checks that /proc gives the same
// owners), but a kernel may refuse it only for a reason that loadSeed's
// comment names: the verifier's, or a missing helper.
func TestProcessSeedIterator(t *testing.T) {
	testnet.RequireRoot(t)
	spec, err := ProcessSpec(1024)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := loadBackend(spec, ProcessKprobe)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	prog, err := loadSeed(spec, coll)
	if err != nil {
		var ve *ebpf.VerifierError
		if !errors.As(err, &ve) && !errors.Is(err, ebpf.ErrNotSupported) {
			t.Fatalf("the iterator fails to load for another reason than the verifier's or a missing helper: %v", err)
		}
		t.Logf("this kernel refuses the iterator, and /proc is walked instead: %v", err)
		return
	}
	defer prog.Close()
	if prog.Type() != ebpf.Tracing {
		t.Errorf("iterator loaded as %v, want %v", prog.Type(), ebpf.Tracing)
	}
	t.Logf("this kernel accepts the iterator")
}

// TestProcessBackendSelection starts each backend by name, then auto: auto
// must take the first backend in ProcessBackends' order that starts, and
// name why each one before it could not.
func TestProcessBackendSelection(t *testing.T) {
	testnet.RequireRoot(t)
	works := map[ProcessBackend]bool{}
	for _, b := range ProcessBackends() {
		p, err := StartProcess(ProcessOptions{Backend: b, MaxEntries: 1024})
		if err != nil {
			if !strings.Contains(err.Error(), string(b)+": ") {
				t.Errorf("the error of backend %s does not name it: %v", b, err)
			}
			t.Logf("%s: cannot start here: %v", b, err)
			continue
		}
		works[b] = true
		if p.Backend() != b || p.Describe() != "process/"+string(b) {
			t.Errorf("asked for %s, got %s (%s)", b, p.Backend(), p.Describe())
		}
		t.Logf("%s: starts", b)
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}
	p, err := StartProcess(ProcessOptions{MaxEntries: 1024})
	if err != nil {
		if len(works) > 0 {
			t.Fatalf("auto failed although %v start: %v", works, err)
		}
		t.Fatalf("no backend starts on this kernel: %v", err)
	}
	defer p.Close()
	tried := p.Tried()
	for i, b := range ProcessBackends() {
		if i >= len(tried) || tried[i].Backend != b {
			t.Fatalf("auto tried %v, not the backends in order", tried)
		}
		if works[b] {
			if tried[i].Err != nil || i != len(tried)-1 || p.Backend() != b {
				t.Errorf("auto tried %v and uses %s; want %s, the first that starts", tried, p.Backend(), b)
			}
			break
		}
		if tried[i].Err == nil {
			t.Errorf("auto records no reason why %s could not be used", b)
		}
	}
	t.Logf("auto uses %s after trying %v", p.Backend(), tried)
}

// TestProcessSharesCgroupLayout: process mode reads its rows and names with
// the cgroup object's Go types, which is right only while both objects
// declare them byte for byte alike (both come from owner.h).
func TestProcessSharesCgroupLayout(t *testing.T) {
	cg, err := sizedSpec(bpfprog.LoadCgroup, "cgroup", 1024, flowtable.Default)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := ProcessSpec(1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][2]string{{"flows", "flows"}, {"comms", "comms"}, {"untracked", "untracked"}} {
		a, b := cg.Maps[m[0]], pr.Maps[m[1]]
		if a == nil || b == nil {
			t.Fatalf("map %v: cgroup has it %v, process has it %v", m, a != nil, b != nil)
		}
		if a.Type != b.Type || a.KeySize != b.KeySize || a.ValueSize != b.ValueSize || a.Flags != b.Flags {
			t.Errorf("map %v: cgroup %v key %d value %d flags %#x, process %v key %d value %d flags %#x",
				m, a.Type, a.KeySize, a.ValueSize, a.Flags, b.Type, b.KeySize, b.ValueSize, b.Flags)
		}
		if ga, gb := btfLayout(a.Key)+btfLayout(a.Value), btfLayout(b.Key)+btfLayout(b.Value); ga != gb {
			t.Errorf("map %v: cgroup types %s, process types %s", m, ga, gb)
		}
	}
	// Process mode's socket storage starts with the owner, as cgroup
	// mode's holds it (owner.h's own_at_create writes both).
	ps, ok := btf.UnderlyingType(pr.Maps["proc_owners"].Value).(*btf.Struct)
	if !ok || len(ps.Members) == 0 || ps.Members[0].Name != "owner" || ps.Members[0].Offset != 0 {
		t.Fatalf("proc_owners' value does not start with its owner: %s", btfLayout(pr.Maps["proc_owners"].Value))
	}
	if ga, gb := btfLayout(cg.Maps["sock_owners"].Value), btfLayout(ps.Members[0].Type); ga != gb {
		t.Errorf("owner in socket storage: cgroup %s, process %s", ga, gb)
	}
}

func TestCheckKernelBTF(t *testing.T) {
	missing := t.TempDir() + "/vmlinux"
	err := CheckKernelBTF(missing)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "CONFIG_DEBUG_INFO_BTF") || strings.Contains(err.Error(), "\n") {
		t.Errorf("CheckKernelBTF(%s) = %v; want one line naming the file and CONFIG_DEBUG_INFO_BTF", missing, err)
	}
	if _, err := StartProcess(ProcessOptions{MaxEntries: 1024, KernelBTF: missing}); err == nil || !strings.Contains(err.Error(), "needs the kernel's BTF") {
		t.Errorf("StartProcess without kernel BTF: %v", err)
	}
	if _, err := os.Stat(DefaultKernelBTF); err == nil {
		if err := CheckKernelBTF(""); err != nil {
			t.Errorf("CheckKernelBTF(default) = %v, and %s exists", err, DefaultKernelBTF)
		}
	}
}

// ownerOf returns the owner that process mode keeps for the socket of c,
// looked up by its file descriptor; false when it keeps none.
func ownerOf(t *testing.T, p *Process, c syscall.Conn) (bpfprog.SockOwner, bool) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	m := p.coll.Maps["proc_owners"]
	raw := make([]byte, m.ValueSize())
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = m.Lookup(uint32(fd), &raw) }); err != nil {
		t.Fatal(err)
	}
	var o bpfprog.SockOwner
	if errors.Is(lerr, ebpf.ErrKeyNotExist) {
		return o, false
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	// The value starts with the owner (TestProcessSharesCgroupLayout).
	if _, err := binary.Decode(raw, binary.NativeEndian, &o); err != nil {
		t.Fatal(err)
	}
	return o, true
}

// processRows drains p and returns the rows owned by pid, by key (the
// owner's PID left in, comm and cgroup cleared).
func processRows(t *testing.T, p *Process, pid int) map[flow.Key]flow.Counters {
	t.Helper()
	s, err := p.Drain()
	if err != nil {
		t.Fatal(err)
	}
	out := map[flow.Key]flow.Counters{}
	for _, f := range s.Flows {
		if f.Key.Owner.Info().PID != uint32(pid) {
			continue
		}
		if f.Key.Owner.Info().Comm == "" || f.Key.Owner.Info().Cgroup == "" {
			t.Errorf("row %+v: owner not named", f.Key)
		}
		k := f.Key
		k.Owner = flow.NewOwner(flow.OwnerInfo{PID: k.Owner.Info().PID})
		c := out[k]
		c.Add(f.Counters)
		out[k] = c
	}
	return out
}

func tcpKey(src, dst netip.AddrPort, dir flow.Direction, pid int) flow.Key {
	return protoKey(flow.ProtoTCP, src, dst, dir, pid)
}

func protoKey(proto uint8, src, dst netip.AddrPort, dir flow.Direction, pid int) flow.Key {
	et := flow.EtherTypeIPv4
	if src.Addr().Is6() {
		et = flow.EtherTypeIPv6
	}
	return flow.Key{EtherType: et, Proto: proto, Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(),
		Dir: dir, Owner: flow.NewOwner(flow.OwnerInfo{PID: uint32(pid)})}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// wantRows compares got with want exactly: the same rows, the same counts.
func wantRows(t *testing.T, got, want map[flow.Key]flow.Counters) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("row %s %v %s -> %s (%d -> %d): %+v (present %v), want %+v", k.ProtoName(), k.Dir, k.Src, k.Dst, k.SrcPort, k.DstPort, g, ok, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected row %s %v %s:%d -> %s:%d: %+v", k.ProtoName(), k.Dir, k.Src, k.SrcPort, k.Dst, k.DstPort, g)
		}
	}
}

// TestProcessOwners checks where each socket's owner comes from before it
// has moved a byte: a socket from before start-up is given its holder by
// the start-up walk, a socket created later its creator, and a socket
// accepted later its listener's owner. Then it checks the rows of a
// connection, with a peek that must not count.
//
// It runs once with each way of finding the owners of existing sockets:
// the iterator (where the kernel accepts it; elsewhere that run walks
// /proc too) and the walk of /proc.
func TestProcessOwners(t *testing.T) {
	testnet.RequireRoot(t)
	for _, walk := range []struct {
		name     string
		fromUser bool
	}{{"iterator", false}, {"proc", true}} {
		t.Run(walk.name, func(t *testing.T) { testProcessOwners(t, walk.fromUser) })
	}
}

func testProcessOwners(t *testing.T, walkFromUser bool) {
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	self := os.Getpid()

	var old net.Listener
	if err := p.B.Do(func() (err error) { old, err = net.Listen("tcp4", p.B.IPv4.String()+":0"); return }); err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	pr, err := StartProcess(ProcessOptions{MaxEntries: 1024, walkFromUser: walkFromUser})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if walkFromUser && pr.seed != nil {
		t.Fatal("asked to walk /proc, the capture loaded the iterator")
	}

	if o, ok := ownerOf(t, pr, old.(syscall.Conn)); !ok || o.Pid != uint32(self) {
		t.Errorf("listener from before start-up: owner %+v (kept %v), want pid %d from the start-up walk", o, ok, self)
	}
	var ln net.Listener
	if err := p.B.Do(func() (err error) { ln, err = net.Listen("tcp4", p.B.IPv4.String()+":0"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if o, ok := ownerOf(t, pr, ln.(syscall.Conn)); !ok || o.Pid != uint32(self) {
		t.Errorf("listener created after start-up: owner %+v (kept %v), want pid %d from sock_create", o, ok, self)
	}
	var c net.Conn
	if err := p.A.Do(func() (err error) {
		c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(context.Background(), "tcp4", ln.Addr().String())
		return
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if o, ok := ownerOf(t, pr, s.(syscall.Conn)); !ok || o.Pid != uint32(self) {
		t.Errorf("accepted socket, before any data: owner %+v (kept %v), want pid %d cloned from its listener", o, ok, self)
	}

	// 3 writes of 700 bytes; the server peeks at all of it, then reads it
	// in one call; 1 write of 1234 bytes back.
	for range 3 {
		if _, err := c.Write(make([]byte, 700)); err != nil {
			t.Fatal(err)
		}
	}
	peekAndRead(t, s, 2100)
	if _, err := s.Write(make([]byte, 1234)); err != nil {
		t.Fatal(err)
	}
	peekAndRead(t, c, 1234)
	cl, sv := addrPortOf(c.LocalAddr()), addrPortOf(s.LocalAddr())
	wantRows(t, processRows(t, pr, self), map[flow.Key]flow.Counters{
		tcpKey(cl, sv, flow.Out, self): {Packets: 3, Bytes: 2100},
		tcpKey(cl, sv, flow.In, self):  {Packets: 1, Bytes: 2100},
		tcpKey(sv, cl, flow.Out, self): {Packets: 1, Bytes: 1234},
		tcpKey(sv, cl, flow.In, self):  {Packets: 1, Bytes: 1234},
	})
}

// waitReadable waits until n bytes are queued on c, so that one read takes
// them all.
func waitReadable(c net.Conn, n int) error {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var queued int
		var ierr error
		if err := rc.Control(func(fd uintptr) { queued, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
			return err
		}
		if ierr != nil {
			return ierr
		}
		if queued >= n {
			return nil
		}
	}
	return errors.New("the data did not arrive within 5s")
}

// peekAndRead waits until n bytes are queued on c, then peeks at them and
// reads them, each in one call.
func peekAndRead(t *testing.T, c net.Conn, n int) {
	t.Helper()
	if err := waitReadable(c, n); err != nil {
		t.Fatal(err)
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	for _, flags := range []int{unix.MSG_PEEK, 0} {
		var got int
		var rerr error
		if err := rc.Control(func(fd uintptr) { got, _, rerr = unix.Recvfrom(int(fd), buf, flags|unix.MSG_DONTWAIT) }); err != nil {
			t.Fatal(err)
		}
		if rerr != nil || got != n {
			t.Fatalf("recv(flags %#x) = %d, %v; want %d", flags, got, rerr, n)
		}
	}
}

// TestProcessDatagrams checks what one UDP count is: a datagram. A GSO
// send of 10 segments is 10 datagrams on the wire and to the receiver; an
// empty datagram counts as a packet of 0 bytes; an unconnected socket's
// rows have each datagram's own addresses, the wildcard-bound receiver's
// local address among them.
func TestProcessDatagrams(t *testing.T) {
	p, pr := startProcessOnPair(t)
	self := os.Getpid()

	var srv *net.UDPConn
	if err := p.B.Do(func() (err error) { srv, err = net.ListenUDP("udp4", &net.UDPAddr{}); return }); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	to := netip.AddrPortFrom(p.B.IPv4, addrPortOf(srv.LocalAddr()).Port())
	var cli *net.UDPConn
	if err := p.A.Do(func() (err error) { cli, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to)); return }); err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rc, err := cli.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, 100) }); err != nil || serr != nil {
		t.Fatalf("UDP_SEGMENT: %v %v", err, serr)
	}
	if _, err := cli.Write(make([]byte, 1000)); err != nil { // 10 segments of 100
		t.Fatal(err)
	}
	if _, err := cli.Write(nil); err != nil { // an empty datagram
		t.Fatal(err)
	}
	if err := srv.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	for i := range 11 {
		n, _, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i+1, err)
		}
		if want := 100 * min(1, 10-i); n != want {
			t.Fatalf("datagram %d: %d bytes, want %d", i+1, n, want)
		}
	}
	src := addrPortOf(cli.LocalAddr())
	wantRows(t, processRows(t, pr, self), map[flow.Key]flow.Counters{
		protoKey(flow.ProtoUDP, src, to, flow.Out, self): {Packets: 11, Bytes: 1000},
		protoKey(flow.ProtoUDP, src, to, flow.In, self):  {Packets: 11, Bytes: 1000},
	})
}

// TestProcessMPTCP: an MPTCP connection is counted as TCP, with the
// addresses and ports its application sees, on both ends.
func TestProcessMPTCP(t *testing.T) {
	p, pr := startProcessOnPair(t)
	self := os.Getpid()
	var ln net.Listener
	if err := p.B.Do(func() (err error) {
		var lc net.ListenConfig
		lc.SetMultipathTCP(true)
		ln, err = lc.Listen(context.Background(), "tcp4", p.B.IPv4.String()+":0")
		return
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var c net.Conn
	if err := p.A.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		d.SetMultipathTCP(true)
		c, err = d.DialContext(context.Background(), "tcp4", ln.Addr().String())
		return
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if on, err := c.(*net.TCPConn).MultipathTCP(); err != nil || !on {
		t.Skipf("skipped: the connection is not MPTCP (net.mptcp.enabled off in the namespaces?): %v", err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := c.Write(make([]byte, 4321)); err != nil {
		t.Fatal(err)
	}
	peekAndRead(t, s, 4321)
	cl, sv := addrPortOf(c.LocalAddr()), addrPortOf(s.LocalAddr())
	wantRows(t, processRows(t, pr, self), map[flow.Key]flow.Counters{
		tcpKey(cl, sv, flow.Out, self): {Packets: 1, Bytes: 4321},
		tcpKey(cl, sv, flow.In, self):  {Packets: 1, Bytes: 4321},
	})
}

// startProcessOnPair makes a veth pair with pinned neighbours and starts
// process mode with a small table; the tables close when the test ends.
func startProcessOnPair(t *testing.T) (*testnet.Pair, *Process) {
	t.Helper()
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	pr, err := StartProcess(ProcessOptions{MaxEntries: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	return p, pr
}
