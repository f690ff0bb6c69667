package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// Tool is a running pktstat-bpf.
type Tool struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	stderr bytes.Buffer
	ready  chan struct{}
	done   chan struct{}
	err    error

	// When the process started, when its ready line was read, when the
	// first signal was sent and when it exited, and the time the ready
	// line itself gives: they bound the time its report covers (RunBounds).
	startedAt, readyAt, signaledAt, doneAt, readyLogged time.Time
}

// logTime is the time format of the tool's log lines (slog's TextHandler).
const logTime = "2006-01-02T15:04:05.000Z07:00"

// loggedAt is the time= field of a log line, or the zero time.
func loggedAt(line string) time.Time {
	v, ok := strings.CutPrefix(line, "time=")
	if !ok {
		return time.Time{}
	}
	v, _, _ = strings.Cut(v, " ")
	at, err := time.Parse(logTime, v)
	if err != nil {
		return time.Time{}
	}
	return at
}

// readyLine is what the tool logs once its programs are attached.
const readyLine = "msg=capturing"

// modeRE finds the mode in the ready line.
var modeRE = regexp.MustCompile(`mode=\S+`)

// StartTool runs bin with args inside e's namespace and waits until it
// logs that it is capturing. The process is killed in t.Cleanup if the test
// has not waited for it.
func StartTool(t testing.TB, e testnet.End, bin string, args ...string) *Tool {
	t.Helper()
	return StartToolTo(t, e, bin, nil, args...)
}

// StartToolTo is StartTool with the tool's standard output going to
// stdout (nil: a buffer that Stdout reads).
func StartToolTo(t testing.TB, e testnet.End, bin string, stdout io.Writer, args ...string) *Tool {
	t.Helper()
	tl := &Tool{cmd: e.Command(bin, args...), ready: make(chan struct{}), done: make(chan struct{})}
	tl.cmd.Stdout = &tl.stdout
	if stdout != nil {
		tl.cmd.Stdout = stdout
	}
	pr, pw := io.Pipe()
	tl.cmd.Stderr = pw
	tl.startedAt = time.Now()
	if err := tl.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			tl.mu.Lock()
			tl.stderr.WriteString(sc.Text() + "\n")
			tl.mu.Unlock()
			if strings.Contains(sc.Text(), readyLine) {
				once.Do(func() {
					tl.readyAt = time.Now()
					tl.readyLogged = loggedAt(sc.Text())
					close(tl.ready)
				})
			}
		}
	}()
	go func() {
		tl.err = tl.cmd.Wait()
		tl.doneAt = time.Now()
		pw.Close()
		close(tl.done)
	}()
	t.Cleanup(func() {
		select {
		case <-tl.done:
		default:
			_ = tl.cmd.Process.Kill()
			<-tl.done
		}
	})
	select {
	case <-tl.ready:
		// The mode it chose (tc/tcx or tc/legacy, process/BACKEND), for
		// the log and the kernel matrix's table.
		if m := modeRE.FindString(tl.Stderr()); m != "" {
			t.Logf("pktstat-bpf is capturing, %s, %v after its start", m, tl.readyAt.Sub(tl.startedAt).Round(time.Millisecond))
		}
	case <-tl.done:
		t.Fatalf("pktstat-bpf exited before capturing: %v\nstderr:\n%s", tl.err, tl.Stderr())
	case <-time.After(testnet.Patience(30 * time.Second)):
		t.Fatalf("pktstat-bpf did not start capturing within %v\nstderr:\n%s", testnet.Patience(30*time.Second), tl.Stderr())
	}
	return tl
}

// PID is the process ID of nsenter, which execs the tool in place.
func (tl *Tool) PID() int { return tl.cmd.Process.Pid }

// Signal sends sig to the tool.
func (tl *Tool) Signal(sig syscall.Signal) error {
	if tl.signaledAt.IsZero() {
		tl.signaledAt = time.Now()
	}
	return tl.cmd.Process.Signal(sig)
}

// RunBounds bounds the capture time of a report written at the end of a
// run that a signal ended. The tool starts its clock before it logs that
// it is capturing, and stops it after the signal arrives and before it
// exits. The start is also at most readySlack before the ready line's own
// time, which is cut to the millisecond; without that time, the process's
// start bounds it. Call it after Wait.
func (tl *Tool) RunBounds() (lo, hi time.Duration, err error) {
	select {
	case <-tl.done:
	default:
		return 0, 0, fmt.Errorf("pktstat-bpf is still running")
	}
	if tl.signaledAt.IsZero() {
		return 0, 0, fmt.Errorf("pktstat-bpf was not stopped by a signal")
	}
	begin := tl.startedAt
	if at := tl.readyLogged.Add(-readySlack); at.After(begin) {
		begin = at
	}
	return tl.signaledAt.Sub(tl.readyAt), tl.doneAt.Sub(begin), nil
}

// readySlack is how long before its ready line's time the tool may have
// started its clock: the line is logged right after, so this allows for
// the millisecond cut and a preemption in between.
const readySlack = 50 * time.Millisecond

// Wait waits up to timeout (stretched by Patience) for the tool to exit
// and returns its exit code (-1 if a signal killed it).
func (tl *Tool) Wait(timeout time.Duration) (int, error) {
	select {
	case <-tl.done:
	case <-time.After(testnet.Patience(timeout)):
		return 0, fmt.Errorf("pktstat-bpf still running after %s", testnet.Patience(timeout))
	}
	if tl.err == nil {
		return 0, nil
	}
	if ee, ok := tl.err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	return 0, tl.err
}

// Stdout is everything the tool wrote to stdout; read it after Wait.
func (tl *Tool) Stdout() string { return tl.stdout.String() }

// Stderr is what the tool has logged so far.
func (tl *Tool) Stderr() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.stderr.String()
}

// ToolWait bounds how long a tool may take to print its report and exit.
const ToolWait = 15 * time.Second

// StartCapture runs the tool on e's veth with a JSON report, without a
// timeout unless extra sets one.
func StartCapture(t *testing.T, e testnet.End, bin string, extra ...string) *Tool {
	t.Helper()
	return StartCaptureTo(t, e, bin, nil, extra...)
}

// StartCaptureTo is StartCapture with the report going to stdout.
func StartCaptureTo(t *testing.T, e testnet.End, bin string, stdout io.Writer, extra ...string) *Tool {
	t.Helper()
	args := append([]string{"-i", e.Link, "-t", "0", "-j"}, extra...)
	return StartToolTo(t, e, bin, stdout, args...)
}

// StopTool sends sig and expects exit code 0.
func StopTool(t *testing.T, tl *Tool, sig syscall.Signal) {
	t.Helper()
	if err := tl.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
	waitExitZero(t, tl)
}

// StopCapture sends sig, expects exit code 0 and returns the parsed report.
func StopCapture(t *testing.T, tl *Tool, sig syscall.Signal) []Row {
	t.Helper()
	if err := tl.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
	return WaitReport(t, tl)
}

// WaitReport waits for the tool to exit 0 and parses its report.
func WaitReport(t *testing.T, tl *Tool) []Row {
	t.Helper()
	waitExitZero(t, tl)
	return Report(t, tl)
}

// waitExitZero waits for the tool to exit, and fails unless it exits 0.
func waitExitZero(t *testing.T, tl *Tool) {
	t.Helper()
	code, err := tl.Wait(ToolWait)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, tl.Stderr())
	}
	if code != 0 {
		t.Fatalf("pktstat-bpf exited %d, want 0\nstderr:\n%s", code, tl.Stderr())
	}
}

// StopIntervals sends sig, expects exit code 0 and returns the interval
// reports (--interval).
func StopIntervals(t *testing.T, tl *Tool, sig syscall.Signal) []Interval {
	t.Helper()
	StopTool(t, tl, sig)
	ivs, err := ParseIntervals(tl.Stdout())
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, tl.Stderr())
	}
	return ivs
}

// EndCapture ends a run the given way: "timeout" waits for -t to pass,
// a signal name sends that signal. It returns the exit code.
func EndCapture(t *testing.T, tl *Tool, how string) int {
	t.Helper()
	if how != "timeout" {
		sig := unix.SignalNum(how)
		if sig == 0 {
			t.Fatalf("unknown ending %q", how)
		}
		if err := tl.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	code, err := tl.Wait(ToolWait)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, tl.Stderr())
	}
	return code
}

// WantExit is the exit code of each ending (-1: killed by a signal).
func WantExit(how string) int {
	if how == "SIGKILL" {
		return -1
	}
	return 0
}
