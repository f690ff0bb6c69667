package cli

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseCgroup(t *testing.T) {
	const dir = "/sys/fs/cgroup/system.slice/nginx.service"
	want := Config{Timeout: 10 * time.Minute, MaxEntries: DefaultMaxEntries, TCAttach: TCAttachAuto, Mode: ModeCgroup, Cgroup: dir}
	checkParseAll(t, want, [][]string{
		{"-c", dir},
		{"-c" + dir},
		{"--cgroup", dir},
		{"--cgroup=" + dir},
		// -x given as false selects no mode, so it does not conflict.
		{"--xdp=false", "-c", dir},
	})
	got, err := Parse([]string{"-c", dir, "-j", "-t", "0", "--max-entries", "64"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode != ModeCgroup || got.Cgroup != dir || !got.JSON || got.Timeout != 0 || got.MaxEntries != 64 {
		t.Errorf("-c with -j -t 0 --max-entries 64 = %+v", got)
	}
	if got.Mode.String() != "cgroup" {
		t.Errorf("ModeCgroup.String() = %q, want cgroup", got.Mode.String())
	}
}

// TestParseCgroupConflicts checks that a second capture mode, or a flag
// that cgroup mode cannot honour, is a usage error that names both flags:
// never a precedence order applied in silence.
func TestParseCgroupConflicts(t *testing.T) {
	const dir = "/sys/fs/cgroup/unified"
	tests := []struct {
		name  string
		args  []string
		parts []string // the error must contain each
	}{
		{"-c then -x", []string{"-c", dir, "-x"}, []string{"-x (--xdp)", "-c (--cgroup)", "give only one"}},
		{"-x then -c", []string{"-x", "-c", dir}, []string{"-x (--xdp)", "-c (--cgroup)", "give only one"}},
		{"--xdp --cgroup=", []string{"--xdp", "--cgroup=" + dir}, []string{"-x (--xdp)", "-c (--cgroup)"}},
		{"combined short flags", []string{"-xc", dir}, []string{"-x (--xdp)", "-c (--cgroup)"}},
		{"empty path", []string{"--cgroup="}, []string{"-c (--cgroup) needs the path"}},
		{"empty path, short", []string{"-c", ""}, []string{"-c (--cgroup) needs the path"}},
		{"missing path", []string{"-c"}, []string{"flag needs an argument", "c"}},
		{"-i", []string{"-c", dir, "-i", "eth0"}, []string{"-i (--iface) does not apply to -c (--cgroup)"}},
		{"--tc-attach", []string{"-c", dir, "--tc-attach", "tcx"}, []string{"--tc-attach applies to TC mode, not to -c (--cgroup)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantUsageError(t, tt.args, tt.parts...) })
	}
}

func TestChooseMode(t *testing.T) {
	tests := []struct {
		name    string
		choices []modeChoice
		want    Mode
		err     string
	}{
		{"none given: TC", []modeChoice{{"-x", ModeXDP, false}, {"-c", ModeCgroup, false}}, ModeTC, ""},
		{"one", []modeChoice{{"-x", ModeXDP, false}, {"-c", ModeCgroup, true}}, ModeCgroup, ""},
		{"two", []modeChoice{{"-x", ModeXDP, true}, {"-c", ModeCgroup, true}}, ModeTC, "-x and -c choose different capture modes"},
		// A third mode flag (-k, when it lands) joins the same check.
		{"three", []modeChoice{{"-x", ModeXDP, true}, {"-k", Mode(99), true}, {"-c", ModeCgroup, true}}, ModeTC, "-x and -k and -c"},
	}
	for _, tt := range tests {
		got, err := chooseMode(tt.choices)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !IsUsage(err)):
			t.Errorf("%s: error %v, want a usage error containing %q", tt.name, err, tt.err)
		case got != tt.want:
			t.Errorf("%s: mode %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestHelpMentionsCgroup(t *testing.T) {
	var out strings.Builder
	if _, err := Parse([]string{"--help"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "-c, --cgroup string") {
		t.Errorf("--help does not list -c, --cgroup:\n%s", out.String())
	}
}
