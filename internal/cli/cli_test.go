package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func defaults() Config {
	return Config{Timeout: 10 * time.Minute, MaxEntries: DefaultMaxEntries, TCAttach: TCAttachAuto}
}

func TestParse(t *testing.T) {
	with := func(f func(*Config)) Config { c := defaults(); f(&c); return c }
	tests := []struct {
		name string
		args []string
		want Config
	}{
		{"defaults", nil, defaults()},
		{"no arguments", []string{}, defaults()},
		{"-i", []string{"-i", "veth0"}, with(func(c *Config) { c.Iface = "veth0" })},
		{"-i attached", []string{"-iveth0"}, with(func(c *Config) { c.Iface = "veth0" })},
		{"--iface", []string{"--iface", "veth0"}, with(func(c *Config) { c.Iface = "veth0" })},
		{"--iface=", []string{"--iface=veth0"}, with(func(c *Config) { c.Iface = "veth0" })},
		{"-t", []string{"-t", "30s"}, with(func(c *Config) { c.Timeout = 30 * time.Second })},
		{"--timeout", []string{"--timeout", "1h2m"}, with(func(c *Config) { c.Timeout = time.Hour + 2*time.Minute })},
		{"--timeout=0 runs until a signal", []string{"--timeout=0"}, with(func(c *Config) { c.Timeout = 0 })},
		{"-j", []string{"-j"}, with(func(c *Config) { c.JSON = true })},
		{"--json", []string{"--json"}, with(func(c *Config) { c.JSON = true })},
		{"--output json", []string{"--output", "json"}, with(func(c *Config) { c.JSON = true })},
		{"--output in capitals", []string{"--output=JSON"}, with(func(c *Config) { c.JSON = true })},
		{"--output plain", []string{"--output", "plain"}, defaults()},
		{"-j with --output json", []string{"-j", "--output", "json"}, with(func(c *Config) { c.JSON = true })},
		{"--max-entries 0 keeps the default", []string{"--max-entries", "0"}, defaults()},
		{"--max-entries 1", []string{"--max-entries", "1"}, with(func(c *Config) { c.MaxEntries = 1 })},
		{"--max-entries=1024", []string{"--max-entries=1024"}, with(func(c *Config) { c.MaxEntries = 1024 })},
		{"--max-entries at the bound", []string{"--max-entries", strconv.Itoa(MaxMaxEntries)}, with(func(c *Config) { c.MaxEntries = MaxMaxEntries })},
		{"--tc-attach tcx", []string{"--tc-attach", "tcx"}, with(func(c *Config) { c.TCAttach = TCAttachTCX })},
		{"--tc-attach legacy", []string{"--tc-attach=legacy"}, with(func(c *Config) { c.TCAttach = TCAttachLegacy })},
		{"--tc-attach in capitals", []string{"--tc-attach", "LEGACY"}, with(func(c *Config) { c.TCAttach = TCAttachLegacy })},
		{"--tc-attach auto", []string{"--tc-attach", "auto"}, defaults()},
		{"--version", []string{"--version"}, with(func(c *Config) { c.Version = true })},
		{"--debug", []string{"--debug"}, with(func(c *Config) { c.Debug = true })},
		{
			"everything",
			[]string{"-j", "-i", "veth1", "-t", "5s", "--max-entries", "65536", "--tc-attach", "tcx"},
			Config{Iface: "veth1", Timeout: 5 * time.Second, JSON: true, MaxEntries: 65536, TCAttach: TCAttachTCX},
		},
		{"short flags combined", []string{"-jt", "5s"}, with(func(c *Config) { c.JSON = true; c.Timeout = 5 * time.Second })},
		{"last one wins", []string{"-t", "1s", "--timeout", "2s"}, with(func(c *Config) { c.Timeout = 2 * time.Second })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			got, err := Parse(tt.args, &out)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.args, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) =\n %+v\nwant\n %+v", tt.args, got, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("Parse(%q) wrote %q; only --help writes", tt.args, out.String())
			}
		})
	}
}

func TestParseUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// every substring must appear in the message
		want []string
	}{
		{"negative --max-entries", []string{"--max-entries", "-1"}, []string{"--max-entries", "-1"}},
		{"--max-entries past the bound", []string{"--max-entries", strconv.Itoa(MaxMaxEntries + 1)}, []string{"--max-entries", strconv.Itoa(MaxMaxEntries + 1), strconv.Itoa(MaxMaxEntries)}},
		{"--max-entries past uint32", []string{"--max-entries=4294967297"}, []string{"--max-entries", "4294967297"}},
		{"--max-entries not a number", []string{"--max-entries", "lots"}, []string{"max-entries", "lots"}},
		{"negative --timeout", []string{"--timeout", "-1s"}, []string{"--timeout", "-1s"}},
		{"negative -t", []string{"-t", "-5m"}, []string{"--timeout", "-5m"}},
		{"--timeout without a unit", []string{"-t", "5"}, []string{"timeout", `"5"`}},
		{"bad --tc-attach", []string{"--tc-attach", "ebpf"}, []string{"--tc-attach", `"ebpf"`, "auto, tcx or legacy"}},
		{"empty --tc-attach", []string{"--tc-attach="}, []string{"--tc-attach", `""`}},
		{"bad --output", []string{"--output", "xml"}, []string{"--output", `"xml"`, "plain or json"}},
		{"-j contradicts --output plain", []string{"-j", "--output", "plain"}, []string{"-j (--json)", "--output plain", "-j is --output json"}},
		{"--output with -g", []string{"-g", "--output", "json"}, []string{"--output and -g (--tui) cannot be combined"}},
		{"unknown flag", []string{"--no-such-flag"}, []string{"unknown flag", "--no-such-flag"}},
		{"unknown shorthand", []string{"-z"}, []string{"unknown shorthand", "z"}},
		{"missing value", []string{"-i"}, []string{"needs an argument", "i"}},
		{"stray argument", []string{"eth0"}, []string{"filter", `"eth0" is not a supported primitive`}},
		{"stray argument after flags", []string{"-j", "-t", "1s", "veth0"}, []string{"filter", `"veth0" is not a supported primitive`}},
		{"argument after --", []string{"--", "-j"}, []string{"filter", `"-j" is not a supported primitive`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg, err := Parse(tt.args, &out)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want a usage error", tt.args, cfg)
			}
			var u *UsageError
			if !errors.As(err, &u) {
				t.Fatalf("Parse(%q) error %v is a %T, want *UsageError", tt.args, err, err)
			}
			if !IsUsage(err) {
				t.Errorf("IsUsage(%v) = false", err)
			}
			msg := err.Error()
			for _, s := range tt.want {
				if !strings.Contains(msg, s) {
					t.Errorf("Parse(%q) error %q does not mention %q", tt.args, msg, s)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans several lines; main prints it as one", msg)
			}
			if cfg != (Config{}) {
				t.Errorf("Parse(%q) returned %+v with its error, want the zero Config", tt.args, cfg)
			}
			if out.Len() != 0 {
				t.Errorf("Parse(%q) wrote %q on an error; errors are printed by main", tt.args, out.String())
			}
		})
	}
}

// wantUsageError fails unless Parse(args) is a usage error (exit 2) whose
// message contains every one of parts.
func wantUsageError(t *testing.T, args []string, parts ...string) {
	t.Helper()
	cfg, err := Parse(args, io.Discard)
	if err == nil {
		t.Errorf("Parse(%q) = %+v, want a usage error", args, cfg)
		return
	}
	if !IsUsage(err) {
		t.Errorf("Parse(%q): %v is not a usage error (exit 2)", args, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("Parse(%q) error %q does not contain %q", args, err, p)
		}
	}
}

func TestParseHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-?"}, {"-h"}, {"-j", "--help"}, {"--help", "stray"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out bytes.Buffer
			cfg, err := Parse(args, &out)
			if err != nil {
				t.Fatalf("Parse(%q): %v", args, err)
			}
			if !cfg.Help {
				t.Errorf("Parse(%q).Help = false", args)
			}
			usage := out.String()
			if !strings.HasPrefix(usage, "Usage: pktstat-bpf [flags] [filter expression]\n") {
				t.Errorf("usage does not start with the synopsis:\n%s", usage)
			}
			for _, f := range []string{
				"-i, --iface", "-t, --timeout", "-j, --json", "--max-entries", "--tc-attach",
				"--version", "-?, --help",
				"(default 10m0s)", fmt.Sprint(DefaultMaxEntries), "auto, tcx or legacy",
			} {
				if !strings.Contains(usage, f) {
					t.Errorf("usage does not mention %q:\n%s", f, usage)
				}
			}
		})
	}
}

func TestIsUsage(t *testing.T) {
	u := &UsageError{Err: errors.New("bad flag")}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("bad flag"), false},
		{u, true},
		{fmt.Errorf("start: %w", u), true},
	}
	for _, tt := range tests {
		if got := IsUsage(tt.err); got != tt.want {
			t.Errorf("IsUsage(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if u.Error() != "bad flag" || !errors.Is(u, u.Err) {
		t.Errorf("UsageError does not show or unwrap its cause: %q", u.Error())
	}
}

// parseCase is a row of the tables that check the Config Parse makes of
// args.
type parseCase struct {
	name string
	args []string
	want Config
}

// checkParse runs each case as a subtest: Parse(args) succeeds and returns
// want.
func checkParse(t *testing.T, tests []parseCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.args, io.Discard)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.args, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) =\n %+v\nwant\n %+v", tt.args, got, tt.want)
			}
		})
	}
}

// checkParseAll fails unless every one of argss, the ways to spell one
// command line, parses to want.
func checkParseAll(t *testing.T, want Config, argss [][]string) {
	t.Helper()
	for _, args := range argss {
		got, err := Parse(args, io.Discard)
		if err != nil {
			t.Errorf("Parse(%q): %v", args, err)
			continue
		}
		if got != want {
			t.Errorf("Parse(%q) = %+v, want %+v", args, got, want)
		}
	}
}
