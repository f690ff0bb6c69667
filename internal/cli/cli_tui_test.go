package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseTUI(t *testing.T) {
	tui := func(refresh, expire time.Duration, f func(*Config)) Config {
		c := Config{MaxEntries: DefaultMaxEntries, TCAttach: TCAttachAuto, TUI: true, Refresh: refresh, Expire: expire}
		if f != nil {
			f(&c)
		}
		return c
	}
	tests := []parseCase{
		// Timeout is 0 with -g: the table runs until the user quits.
		{"-g", []string{"-g"}, tui(time.Second, 10*time.Second, nil)},
		{"--tui", []string{"--tui"}, tui(time.Second, 10*time.Second, nil)},
		{"-r", []string{"-g", "-r", "250ms"}, tui(250*time.Millisecond, 10*time.Second, nil)},
		{"--refresh at the bound", []string{"-g", "--refresh=100ms"}, tui(100*time.Millisecond, 10*time.Second, nil)},
		{"-gr combined", []string{"-gr", "2s"}, tui(2*time.Second, 10*time.Second, nil)},
		{"--expire", []string{"-g", "--expire", "1m"}, tui(time.Second, time.Minute, nil)},
		{"--expire 0 keeps quiet flows", []string{"-g", "--expire=0"}, tui(time.Second, 0, nil)},
		{"-t is ignored", []string{"-g", "-t", "30s"}, tui(time.Second, 10*time.Second, nil)},
		{"with -i", []string{"-g", "-i", "veth0"}, tui(time.Second, 10*time.Second, func(c *Config) { c.Iface = "veth0" })},
		{"with -x", []string{"-g", "-x"}, tui(time.Second, 10*time.Second, func(c *Config) { c.Mode, c.XDPMode = ModeXDP, XDPModeAuto })},
	}
	checkParse(t, tests)
}

func TestParseTUIUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-g", "-r", "99ms"}, "invalid --refresh 99ms: must be at least 100ms"},
		{[]string{"-g", "-r", "0"}, "invalid --refresh 0s"},
		{[]string{"-g", "-r", "-1s"}, "invalid --refresh -1s"},
		{[]string{"-g", "-r", "soon"}, "invalid argument"},
		{[]string{"-g", "--expire", "-1s"}, "invalid --expire -1s"},
		{[]string{"-g", "-j"}, "-j (--json) and -g (--tui) cannot be combined"},
		{[]string{"-g", "--interval", "1s"}, "--interval and -g (--tui) cannot be combined"},
		{[]string{"-g", "--top", "5"}, "--top and -g (--tui) cannot be combined"},
		{[]string{"-r", "2s"}, "--refresh applies only to the live table: add -g (--tui)"},
		{[]string{"--expire", "2s"}, "--expire applies only to the live table: add -g (--tui)"},
	}
	for _, tt := range tests {
		wantUsageError(t, tt.args, tt.want)
	}
}

func TestHelpMentionsTUI(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"--help"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-g, --tui", "-r, --refresh duration", "(default 1s)", "--expire duration", "(default 10s)", "--timeout does not apply"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
}
