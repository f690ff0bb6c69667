package main

import (
	"bytes"
	"strings"
	"testing"
)

// These cases end before anything is loaded into the kernel, so they need
// no privileges; the e2e tests run the real binary for the rest.

func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// oneLine fails unless s is exactly one newline-terminated line.
func oneLine(t *testing.T, what, s string) {
	t.Helper()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Errorf("%s is not exactly one line: %q", what, s)
	}
	if strings.Count(s, "(see --help)") > 1 {
		t.Errorf("%s says \"(see --help)\" more than once: %q", what, s)
	}
}

func TestRunHelp(t *testing.T) {
	for _, flag := range []string{"--help", "-?", "-h"} {
		code, stdout, stderr := runArgs(flag)
		if code != 0 {
			t.Errorf("run(%s) = %d, want 0", flag, code)
		}
		if !strings.HasPrefix(stdout, "Usage: pktstat-bpf") {
			t.Errorf("run(%s) stdout does not start with the usage line:\n%s", flag, stdout)
		}
		for _, f := range []string{"--iface", "--timeout", "--json", "--max-entries", "--tc-attach", "--version", "--help"} {
			if !strings.Contains(stdout, f) {
				t.Errorf("run(%s) usage does not mention %s", flag, f)
			}
		}
		if stderr != "" {
			t.Errorf("run(%s) wrote to stderr: %q", flag, stderr)
		}
	}
}

func TestRunVersion(t *testing.T) {
	code, stdout, stderr := runArgs("--version")
	if code != 0 {
		t.Errorf("run(--version) = %d, want 0", code)
	}
	oneLine(t, "--version output", stdout)
	if v, ok := strings.CutPrefix(strings.TrimSpace(stdout), "pktstat-bpf "); !ok || v == "" {
		t.Errorf("--version printed %q, want \"pktstat-bpf <version>\"", stdout)
	}
	if stderr != "" {
		t.Errorf("run(--version) wrote to stderr: %q", stderr)
	}
}

func TestRunUsageError(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"--no-such-flag"}, "--no-such-flag"},
		{[]string{"-j", "eth0"}, `"eth0"`},
		{[]string{"--max-entries", "-1"}, "--max-entries"},
		{[]string{"--timeout=-1s"}, "--timeout"},
		{[]string{"--tc-attach", "ebpf"}, "--tc-attach"},
		{[]string{"-i"}, "needs an argument"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runArgs(tt.args...)
		if code != 2 {
			t.Errorf("run(%q) = %d, want 2", tt.args, code)
		}
		oneLine(t, "stderr", stderr)
		if !strings.HasPrefix(stderr, "pktstat-bpf: ") || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "--help") {
			t.Errorf("run(%q) stderr = %q, want \"pktstat-bpf: ...%s... (see --help)\"", tt.args, stderr, tt.want)
		}
		if stdout != "" {
			t.Errorf("run(%q) wrote to stdout: %q", tt.args, stdout)
		}
	}
}

func TestRunMissingInterface(t *testing.T) {
	const name = "doesnotexist0"
	for _, args := range [][]string{{"-i", name}, {"--json", "--iface", name, "-t", "1s"}} {
		code, stdout, stderr := runArgs(args...)
		if code != 1 {
			t.Errorf("run(%q) = %d, want 1", args, code)
		}
		oneLine(t, "stderr", stderr)
		if !strings.HasPrefix(stderr, "pktstat-bpf: ") || !strings.Contains(stderr, `"`+name+`"`) {
			t.Errorf("run(%q) stderr = %q, want one error line naming %q", args, stderr, name)
		}
		if stdout != "" {
			t.Errorf("run(%q) wrote a report for a missing interface: %q", args, stdout)
		}
	}
}

// TestXDPUsageErrors: flag combinations that cannot run are usage errors
// (exit 2, one line), found before anything is loaded.
func TestXDPUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-x", "--xdp_mode", "turbo"}, `invalid --xdp_mode "turbo"`},
		{[]string{"-x", "--xdp_mode="}, `invalid --xdp_mode ""`},
		{[]string{"--xdp_mode", "native"}, "add -x"},
		{[]string{"--xdp_mode", "auto"}, "add -x"},
		{[]string{"-x", "--tc-attach", "tcx"}, "--tc-attach"},
	} {
		code, stdout, stderr := runArgs(c.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want 2 and an error with %q", c.args, code, stdout, stderr, c.want)
			continue
		}
		oneLine(t, "stderr", stderr)
	}
}
