package testnet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PrebuiltBinaryEnv names a pktstat-bpf binary that BuildBinary returns
// instead of building one: the kernel matrix builds it once on the host,
// where building inside each emulated guest would take minutes.
const PrebuiltBinaryEnv = "PKTSTAT_E2E_BINARY"

// BuildBinary builds cmd/pktstat-bpf into dir and returns its path, or the
// binary that PrebuiltBinaryEnv names.
func BuildBinary(dir string) (string, error) {
	if bin := os.Getenv(PrebuiltBinaryEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s: %w", PrebuiltBinaryEnv, err)
		}
		return bin, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "pktstat-bpf")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/pktstat-bpf")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(gomod), nil
}

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
func StartTool(t testing.TB, e End, bin string, args ...string) *Tool {
	t.Helper()
	tl := &Tool{cmd: e.Command(bin, args...), ready: make(chan struct{}), done: make(chan struct{})}
	tl.cmd.Stdout = &tl.stdout
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
	case <-time.After(Patience(30 * time.Second)):
		t.Fatalf("pktstat-bpf did not start capturing within %v\nstderr:\n%s", Patience(30*time.Second), tl.Stderr())
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
	case <-time.After(Patience(timeout)):
		return 0, fmt.Errorf("pktstat-bpf still running after %s", Patience(timeout))
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

// Row is one row of the JSON report.
type Row struct {
	SrcIP     string  `json:"srcIp"`
	DstIP     string  `json:"dstIp"`
	Proto     string  `json:"proto"`
	Bytes     uint64  `json:"bytes"`
	Packets   uint64  `json:"packets"`
	Bitrate   float64 `json:"bitrate"`
	SrcPort   uint16  `json:"srcPort"`
	DstPort   uint16  `json:"dstPort"`
	VLAN      uint16  `json:"vlan"`
	Fragment  bool    `json:"fragment"`
	Malformed bool    `json:"malformed"`
	Dir       string  `json:"dir"`
	Overflow  bool    `json:"overflow"`
	// The owner, in cgroup and process modes.
	PID    uint32 `json:"pid"`
	Comm   string `json:"comm"`
	Cgroup string `json:"cgroup"`
	// On the overflow row: estimated flows without a row, and rows left
	// out by --top.
	UntrackedFlows uint64 `json:"untrackedFlows"`
	HiddenFlows    uint64 `json:"hiddenFlows"`
}

// Interval is one line of the NDJSON stream of --interval -j.
type Interval struct {
	Time     time.Time `json:"time"`
	Interval float64   `json:"interval"`
	Totals   struct {
		Packets uint64 `json:"packets"`
		Bytes   uint64 `json:"bytes"`
	} `json:"totals"`
	Overflow struct {
		Packets        uint64 `json:"packets"`
		Bytes          uint64 `json:"bytes"`
		UntrackedFlows uint64 `json:"untrackedFlows"`
		HiddenFlows    uint64 `json:"hiddenFlows"`
	} `json:"overflow"`
	Iface *struct {
		Name      string `json:"name"`
		RxPackets uint64 `json:"rxPackets"`
		TxPackets uint64 `json:"txPackets"`
		RxDropped uint64 `json:"rxDropped"`
		TxDropped uint64 `json:"txDropped"`
	} `json:"iface"`
	Rows []Row `json:"rows"`
}

// ParseIntervals decodes an NDJSON stream, one Interval a line.
func ParseIntervals(out string) ([]Interval, error) {
	var ivs []Interval
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var iv Interval
		if err := dec.Decode(&iv); err != nil {
			return nil, fmt.Errorf("decode NDJSON line %d of %q: %w", len(ivs)+1, out, err)
		}
		ivs = append(ivs, iv)
	}
	return ivs, nil
}

// ParseRows decodes a JSON report.
func ParseRows(out string) ([]Row, error) {
	var rows []Row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, fmt.Errorf("decode JSON report %q: %w", out, err)
	}
	return rows, nil
}

// Find returns the rows that match proto, source and destination (ports
// are ignored when zero).
func Find(rows []Row, proto, src, dst string, sport, dport uint16) []Row {
	var out []Row
	for _, r := range rows {
		if r.Proto == proto && r.SrcIP == src && r.DstIP == dst &&
			(sport == 0 || r.SrcPort == sport) && (dport == 0 || r.DstPort == dport) {
			out = append(out, r)
		}
	}
	return out
}

// LockedBuffer collects output that several goroutines write, such as a
// process's while it runs, and reads it at any time.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
