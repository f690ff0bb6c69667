package harness

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// BinResult is how one run of the binary ended.
type BinResult struct {
	Code           int
	Stdout, Stderr string
}

// RunBinary runs cmd to the end (at most 20 s) and returns its exit code
// and output. If in is not nil, cmd starts from a thread inside that
// namespace, and so runs there.
func RunBinary(t *testing.T, cmd *exec.Cmd, in *testnet.End) BinResult {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := error(nil)
	if in != nil {
		err = in.Do(cmd.Start)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s still running after 20s\nstderr:\n%s", cmd.Args, errOut.String())
	}
	r := BinResult{Stdout: out.String(), Stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", cmd.Args, err)
	}
	return r
}

// Want fails unless the run exited with code, printed no report and wrote
// exactly one line to stderr that contains every one of parts.
func (r BinResult) Want(t *testing.T, code int, parts ...string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("exit code %d, want %d", r.Code, code)
	}
	if !strings.HasSuffix(r.Stderr, "\n") || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("stderr is not exactly one line: %q", r.Stderr)
	}
	for _, p := range parts {
		if !strings.Contains(r.Stderr, p) {
			t.Errorf("stderr %q does not mention %q", r.Stderr, p)
		}
	}
	for _, p := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(r.Stderr, p) {
			t.Errorf("stderr %q looks like a stack trace", r.Stderr)
		}
	}
	if r.Stdout != "" {
		t.Errorf("wrote a report to stdout: %q", r.Stdout)
	}
	t.Logf("exit %d, stderr: %s", r.Code, strings.TrimSpace(r.Stderr))
}
