package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseProcess(t *testing.T) {
	want := Config{Timeout: 10 * time.Minute, MaxEntries: DefaultMaxEntries, TCAttach: TCAttachAuto, Mode: ModeProcess, ProcessBackend: ProcessBackendAuto}
	checkParseAll(t, want, [][]string{
		{"-k"},
		{"--kprobes"},
		{"--process"},
		// The alias and the flag name the same mode: no conflict.
		{"-k", "--process"},
		{"-k", "--process-backend", "auto"},
		{"--process", "--process-backend=AUTO"},
		// -x given as false selects no mode.
		{"--xdp=false", "-k"},
	})
	for _, b := range []ProcessBackend{ProcessBackendTracepoint, ProcessBackendFentry, ProcessBackendKprobe} {
		got, err := Parse([]string{"-k", "--process-backend", string(b), "-j", "-t", "0"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode != ModeProcess || got.ProcessBackend != b || !got.JSON || got.Timeout != 0 {
			t.Errorf("-k --process-backend %s -j -t 0 = %+v", b, got)
		}
	}
	if ModeProcess.String() != "process" {
		t.Errorf("ModeProcess.String() = %q, want process", ModeProcess.String())
	}
	// -k with the live table: rows carry owners there too.
	if got, err := Parse([]string{"-k", "-g"}, io.Discard); err != nil || !got.TUI || got.Mode != ModeProcess {
		t.Errorf("-k -g = %+v, %v", got, err)
	}
}

// TestParseProcessConflicts: another capture mode, or a flag that process
// mode cannot honour, is a usage error that names the flags.
func TestParseProcessConflicts(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		parts []string
	}{
		{"-k then -x", []string{"-k", "-x"}, []string{"-x (--xdp)", "-k (--kprobes, --process)", "give only one"}},
		{"-x then --process", []string{"-x", "--process"}, []string{"-x (--xdp)", "-k (--kprobes, --process)", "give only one"}},
		{"-k and -c", []string{"-k", "-c", "/sys/fs/cgroup"}, []string{"-c (--cgroup)", "-k (--kprobes, --process)", "give only one"}},
		{"combined short flags", []string{"-kx"}, []string{"-x (--xdp)", "-k (--kprobes, --process)"}},
		{"-i", []string{"-k", "-i", "eth0"}, []string{"-i (--iface) does not apply to -k (--kprobes)"}},
		{"--tc-attach", []string{"-k", "--tc-attach", "tcx"}, []string{"--tc-attach applies to TC mode, not to -k (--kprobes)"}},
		{"--xdp_mode", []string{"-k", "--xdp_mode", "native"}, []string{"--xdp_mode native applies only to XDP mode"}},
		{"--no-arp", []string{"-k", "--no-arp"}, []string{"--no-arp applies to TC and XDP modes"}},
		{"bad backend", []string{"-k", "--process-backend", "ebpf"}, []string{`invalid --process-backend "ebpf"`, "auto, tracepoint, fentry or kprobe"}},
		{"empty backend", []string{"-k", "--process-backend="}, []string{`invalid --process-backend ""`}},
		{"backend without -k", []string{"--process-backend", "fentry"}, []string{"--process-backend applies only to process mode: add -k"}},
		{"backend with -x", []string{"-x", "--process-backend", "kprobe"}, []string{"--process-backend applies only to process mode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantUsageError(t, tt.args, tt.parts...) })
	}
}

// TestHelpNamesProcessFlags: --help lists -k, its alias and the backend flag.
func TestHelpNamesProcessFlags(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"--help"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"-k, --kprobes", "--process ", "--process-backend string", "tracepoint, fentry or kprobe"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("--help does not mention %q:\n%s", s, out.String())
		}
	}
}
