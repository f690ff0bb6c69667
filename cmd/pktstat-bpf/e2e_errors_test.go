package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testnet"
)

// binResult is how one run of the binary ended.
type binResult struct {
	code           int
	stdout, stderr string
}

// runBinary runs cmd to the end (at most 20 s) and returns its exit code
// and output. If in is not nil, cmd starts from a thread inside that
// namespace, and so runs there.
func runBinary(t *testing.T, cmd *exec.Cmd, in *testnet.End) binResult {
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
	r := binResult{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", cmd.Args, err)
	}
	return r
}

// want fails unless the run exited with code, printed no report and wrote
// exactly one line to stderr that contains every one of parts.
func (r binResult) want(t *testing.T, code int, parts ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d", r.code, code)
	}
	if !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr is not exactly one line: %q", r.stderr)
	}
	for _, p := range parts {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("stderr %q does not mention %q", r.stderr, p)
		}
	}
	for _, p := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(r.stderr, p) {
			t.Errorf("stderr %q looks like a stack trace", r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("wrote a report to stdout: %q", r.stdout)
	}
	t.Logf("exit %d, stderr: %s", r.code, strings.TrimSpace(r.stderr))
}

// TestE2EBadInput checks the errors a user meets first: each one is a
// single line and the right exit code, never a stack trace.
func TestE2EBadInput(t *testing.T) {
	bin := e2eBinary(t)
	p := testnet.NewPair(t)

	t.Run("unknown interface", func(t *testing.T) {
		r := runBinary(t, p.A.Command(bin, "-i", "doesnotexist0", "-t", "1s", "-j"), nil)
		r.want(t, 1, `"doesnotexist0"`)
	})
	t.Run("bogus tc-attach", func(t *testing.T) {
		r := runBinary(t, p.A.Command(bin, "-i", p.A.Link, "-t", "1s", "--tc-attach", "bogus"), nil)
		r.want(t, 2, "--tc-attach", "bogus")
	})
	t.Run("unprivileged", func(t *testing.T) {
		// Started from a thread inside A, so the child is in A's
		// namespace, and runs as nobody: no capabilities at all.
		cmd := exec.Command(bin, "-i", p.A.Link, "-t", "1s", "-j")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		r := runBinary(t, cmd, &p.A)
		r.want(t, 1, "root")
		if !strings.Contains(r.stderr, "CAP_") && !strings.Contains(r.stderr, "capabilit") {
			t.Errorf("stderr %q names no capability", r.stderr)
		}
		if left := ourTCX(t, p.A); len(left) != 0 {
			t.Errorf("an unprivileged run attached %v", left)
		}
	})
}
