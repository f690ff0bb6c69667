package capture

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// blockingTCP connects n blocking TCP sockets from p.A to a listener in
// p.B and returns both ends' descriptors, closed when the test ends.
// Blocking sockets keep the Go runtime out of the way: a read on one is
// one inet_recvmsg call that sleeps until data comes.
func blockingTCP(t *testing.T, p *testnet.Pair, n int) (client, server []int) {
	t.Helper()
	var ln int
	if err := p.B.Do(func() (err error) {
		if ln, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err := unix.Bind(ln, &unix.SockaddrInet4{Port: 5500, Addr: p.B.IPv4.As4()}); err != nil {
			return err
		}
		return unix.Listen(ln, n)
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(ln) })
	for range n {
		var fd int
		if err := p.A.Do(func() (err error) {
			if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
				return err
			}
			return unix.Connect(fd, &unix.SockaddrInet4{Port: 5500, Addr: p.B.IPv4.As4()})
		}); err != nil {
			t.Fatal(err)
		}
		s, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		client, server = append(client, fd), append(server, s)
		t.Cleanup(func() { unix.Close(fd); unix.Close(s) })
	}
	return client, server
}

// threadState is the state letter of thread tid of this process (R, S,
// D...), as /proc/self/task/TID/stat has it.
func threadState(tid int) byte {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(raw), ") ")
	if !ok || rest == "" {
		return 0
	}
	return rest[0]
}

// readOnThread reads up to 64 bytes from fd on a thread of its own, then
// writes one byte back, holding one: the write is that thread's next call,
// and the readers' writes go one at a time, so that none of them runs out
// of return instances itself. It sends the thread's id on tids before it
// reads, and the bytes read on done once it has written.
func readOnThread(fd int, one *sync.Mutex, tids chan<- int, done chan<- int) {
	runtime.LockOSThread() // the thread ends with the goroutine
	tids <- unix.Gettid()
	buf := make([]byte, 64)
	n, err := unix.Read(fd, buf)
	if err != nil {
		n = -1
	}
	one.Lock()
	unix.Write(fd, buf[:1])
	one.Unlock()
	done <- n
}

// tcpCalls adds up process mode's TCP rows between a and b by direction:
// each is a call, with the bytes it moved.
func tcpCalls(s flow.Snapshot, p *testnet.Pair) (in, out uint64) {
	for _, f := range s.Flows {
		if f.Proto != unix.IPPROTO_TCP || !((f.Src == p.A.IPv4 && f.Dst == p.B.IPv4) || (f.Src == p.B.IPv4 && f.Dst == p.A.IPv4)) {
			continue
		}
		if f.Dir == flow.In {
			in += f.Packets
		} else {
			out += f.Packets
		}
	}
	return in, out
}

// startKprobe starts the kprobe backend, or skips where the kernel has no
// kprobes.
func startKprobe(t *testing.T) *Process {
	t.Helper()
	pr, err := StartProcess(ProcessOptions{Backend: ProcessKprobe, MaxEntries: 4096})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			t.Skipf("skipped: this kernel has no kprobes: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	return pr
}

// blockReaders starts a reader thread on each of fds and returns their
// thread ids when every one sleeps in its read (inside inet_recvmsg), by
// the kernel's account of each thread's state.
func blockReaders(t *testing.T, fds []int, done chan<- int) []int {
	t.Helper()
	tids := make(chan int, len(fds))
	var readers []int
	var one sync.Mutex
	for _, fd := range fds {
		go readOnThread(fd, &one, tids, done)
		readers = append(readers, <-tids)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, tid := range readers {
		for threadState(tid) != 'S' {
			if time.Now().After(deadline) {
				t.Fatalf("reader thread %d never blocked", tid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Sleeping is not yet inside the read for certain: a moment more.
	time.Sleep(200 * time.Millisecond)
	return readers
}

// wake writes one byte to each of fds and waits for each reader to have
// read it and written back.
func wake(t *testing.T, fds []int, done <-chan int) {
	t.Helper()
	for _, fd := range fds {
		if _, err := unix.Write(fd, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for range fds {
		if got := <-done; got != 1 {
			t.Fatalf("a reader read %d bytes, want 1", got)
		}
	}
}

// TestKprobeLosses: the kprobe backend counts the TCP calls it cannot
// count, rather than losing them silently. Each case blocks readers in a
// read at once and then wakes them with a write each; each reader then
// writes once. Every read is either a counted call or a lost one, and
// every write counts.
//
//   - returns: more readers than the kernel has return instances for
//     (maxactive: max(10, 2 × possible CPUs) by default on a preemptible
//     kernel, the possible CPUs alone on older non-preemptible ones); the
//     kretprobes it could not run are found at each thread's next call.
//     counted + returns lost == readers, exactly, some lost.
//   - calls: one reader, whose entry in the call table is deleted while
//     it sleeps, as the full LRU table would evict it: its return finds
//     none. 0 counted, 1 call lost.
func TestKprobeLosses(t *testing.T) {
	testnet.RequireRoot(t)
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		readers int
		evict   bool
	}{
		{"returns", max(10, 2*ncpu) + 16, false},
		{"calls", 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testnet.NewPair(t)
			client, server := blockingTCP(t, p, c.readers)
			pr := startKprobe(t)
			done := make(chan int, c.readers)
			tids := blockReaders(t, client, done)
			if c.evict {
				calls := pr.coll.Maps["kp_calls"]
				for _, tid := range tids {
					if err := calls.Delete(uint32(tid)); err != nil {
						t.Fatalf("delete the sleeping reader %d's call: %v", tid, err)
					}
				}
			}
			wake(t, server, done)
			s, err := pr.Drain()
			if err != nil {
				t.Fatal(err)
			}
			lost, err := pr.KprobeLosses()
			if err != nil {
				t.Fatal(err)
			}
			reads, writes := tcpCalls(s, p)
			n := uint64(c.readers)
			if c.evict {
				if reads != 0 || lost.Calls != n || lost.Returns != 0 {
					t.Errorf("%d reads whose calls were evicted: %d counted, %d calls lost, %d returns lost; want 0, %d, 0", n, reads, lost.Calls, lost.Returns, n)
				}
			} else if reads+lost.Returns != n || lost.Returns == 0 || lost.Calls != 0 {
				t.Errorf("%d reads at once: %d counted, %d returns lost, %d calls lost; want counted + returns lost == %d, some lost, no call lost", n, reads, lost.Returns, lost.Calls, n)
			}
			// The wake-up writes to the servers' ends and the readers'
			// own: 2n writes, one at a time.
			if writes != 2*n {
				t.Errorf("%d writes counted as %d calls", 2*n, writes)
			}
			t.Logf("%d CPUs possible: %d concurrent reads, %d counted, %d returns lost, %d calls lost; %d writes counted",
				ncpu, n, reads, lost.Returns, lost.Calls, writes)
		})
	}
}
