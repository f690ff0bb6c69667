package harness

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// The end-to-end tests of the modes that name a socket's owner re-execute
// the test binary as helper processes, placed into cgroups of the test's
// own, and drive them one command per line over stdin and stdout: the
// cgroup helper (helper_cgroup.go) and the process-mode helper
// (helper_process.go). This file holds what those helpers share.

// helpers are the commands a re-executed test binary serves, by the
// environment variable that starts it as that helper.
var helpers = map[string]func(in io.Reader, out io.Writer) int{
	cgHelperEnv:      runCgroupHelper,
	ProcessHelperEnv: runProcHelper,
}

// init turns the test binary into a helper when StartHelper has started it
// as one. The helper has to take over before the test framework starts,
// so it is chosen here, in the init of a package that every end-to-end test
// binary links, rather than in TestMain.
func init() {
	for env, serve := range helpers {
		if os.Getenv(env) == "1" {
			os.Exit(serve(os.Stdin, os.Stdout))
		}
	}
}

// serveCommands answers each input line, split into fields, with
// "ok REPLY" or "err MESSAGE" on one line, until in closes.
func serveCommands(in io.Reader, out io.Writer, do func(args []string) (string, error)) int {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		reply, err := do(strings.Fields(sc.Text()))
		if err != nil {
			fmt.Fprintf(out, "err %v\n", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Fprintf(out, "ok %s\n", reply)
	}
	return 0
}

// connTable is a helper's listener and its connections, by the ID that the
// commands name them with.
type connTable struct {
	ln    net.Listener
	conns map[int]net.Conn
	next  int
}

func newConnTable() connTable { return connTable{conns: map[int]net.Conn{}} }

// put keeps c and returns its ID.
func (t *connTable) put(c net.Conn) int {
	id := t.next
	t.next++
	t.conns[id] = c
	return id
}

// get returns the connection whose ID is arg.
func (t *connTable) get(arg string) (net.Conn, error) {
	id, err := strconv.Atoi(arg)
	if err != nil {
		return nil, err
	}
	c, ok := t.conns[id]
	if !ok {
		return nil, fmt.Errorf("no connection %d", id)
	}
	return c, nil
}

// drop forgets the connection whose ID is arg and closes it.
func (t *connTable) drop(arg string) error {
	c, err := t.get(arg)
	if err != nil {
		return err
	}
	id, _ := strconv.Atoi(arg)
	delete(t.conns, id)
	return c.Close()
}

// Helper is a running helper: this test binary, re-executed under the
// name of its comm, born in a cgroup of the test's and inside a test
// namespace.
type Helper struct {
	Name   string
	Cgroup string
	PID    int
	stdin  io.WriteCloser
	lines  chan string
}

// StartHelper runs the helper as name in namespace e, born in the
// cgroup dir (clone3 with CLONE_INTO_CGROUP, so that no socket of it
// predates its move). env is the variable that makes the test binary serve
// commands instead of running tests. The helper ends with the test.
func StartHelper(t *testing.T, e testnet.End, dir, name, env string) *Helper {
	t.Helper()
	return StartHelperFiles(t, e, dir, name, env, nil)
}

// StartHelperFiles is StartHelper, with files that the helper
// inherits as descriptors 3, 4, ...
func StartHelperFiles(t *testing.T, e testnet.End, dir, name, env string, files []*os.File) *Helper {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(exe, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := e.Command(exe) // nsenter execs the helper: same PID, same cgroup
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	h := &Helper{Name: name, Cgroup: dir, lines: make(chan string, 16)}
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s in %s: %v", name, dir, err)
	}
	h.PID = cmd.Process.Pid
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		h.stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return h
}

// Send sends one command; wait returns the fields of its "ok" answer. A
// command whose answer comes only after the test acts (accept) is waited
// for after acting.
func (h *Helper) Send(t *testing.T, format string, args ...any) (wait func() []string) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintln(h.stdin, line); err != nil {
		t.Fatalf("%s: send %q: %v", h.Name, line, err)
	}
	return func() []string {
		t.Helper()
		select {
		case reply, ok := <-h.lines:
			f := strings.Fields(reply)
			if !ok || len(f) == 0 || f[0] != "ok" {
				t.Fatalf("%s: %q: %s", h.Name, line, reply)
			}
			return f[1:]
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no answer to %q in 20s", h.Name, line)
		}
		return nil
	}
}

// Call sends one command and returns the fields of its "ok" answer.
func (h *Helper) Call(t *testing.T, format string, args ...any) []string {
	t.Helper()
	return h.Send(t, format, args...)()
}

// CallInt runs a command whose answer is one number.
func (h *Helper) CallInt(t *testing.T, format string, args ...any) uint64 {
	t.Helper()
	f := h.Call(t, format, args...)
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		t.Fatalf("%s: %q answered %q", h.Name, fmt.Sprintf(format, args...), f)
	}
	return n
}
