package e2e

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// TestE2EBadInput checks the errors a user meets first: each one is a
// single line and the right exit code, never a stack trace.
func TestE2EBadInput(t *testing.T) {
	bin := harness.Binary(t)
	p := testnet.NewPair(t)

	t.Run("unknown interface", func(t *testing.T) {
		r := harness.RunBinary(t, p.A.Command(bin, "-i", "doesnotexist0", "-t", "1s", "-j"), nil)
		r.Want(t, 1, `"doesnotexist0"`)
	})
	t.Run("bogus tc-attach", func(t *testing.T) {
		r := harness.RunBinary(t, p.A.Command(bin, "-i", p.A.Link, "-t", "1s", "--tc-attach", "bogus"), nil)
		r.Want(t, 2, "--tc-attach", "bogus")
	})
	t.Run("unsupported filter", func(t *testing.T) {
		r := harness.RunBinary(t, p.A.Command(bin, "-i", p.A.Link, "-t", "1s", "udp", "and", "ether", "host", "2:0:0:0:0:1"), nil)
		r.Want(t, 2, `filter "udp and ether host 2:0:0:0:0:1": "ether" is not supported`)
		if left := harness.OurTCX(t, p.A); len(left) != 0 {
			t.Errorf("a run refused at the command line attached %v", left)
		}
	})
	t.Run("unprivileged", func(t *testing.T) {
		// Started from a thread inside A, so the child is in A's
		// namespace, and runs as nobody: no capabilities at all.
		cmd := exec.Command(bin, "-i", p.A.Link, "-t", "1s", "-j")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		r := harness.RunBinary(t, cmd, &p.A)
		r.Want(t, 1, "root")
		if !strings.Contains(r.Stderr, "CAP_") && !strings.Contains(r.Stderr, "capabilit") {
			t.Errorf("stderr %q names no capability", r.Stderr)
		}
		if left := harness.OurTCX(t, p.A); len(left) != 0 {
			t.Errorf("an unprivileged run attached %v", left)
		}
	})
}
