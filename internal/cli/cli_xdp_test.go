package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestParseXDP: -x selects XDP mode, and --xdp_mode takes pktstat-bpf's
// values and aliases, in any case.
func TestParseXDP(t *testing.T) {
	xdp := func(m XDPMode) Config {
		c := defaults()
		c.Mode, c.XDPMode = ModeXDP, m
		return c
	}
	tests := []parseCase{
		{"no -x is TC", nil, defaults()},
		{"-x defaults to auto", []string{"-x"}, xdp(XDPModeAuto)},
		{"--xdp", []string{"--xdp"}, xdp(XDPModeAuto)},
		{"--xdp=true", []string{"--xdp=true"}, xdp(XDPModeAuto)},
		{"auto", []string{"-x", "--xdp_mode", "auto"}, xdp(XDPModeAuto)},
		{"best is auto", []string{"-x", "--xdp_mode", "best"}, xdp(XDPModeAuto)},
		{"generic", []string{"-x", "--xdp_mode=generic"}, xdp(XDPModeGeneric)},
		{"native", []string{"-x", "--xdp_mode", "native"}, xdp(XDPModeNative)},
		{"driver is native", []string{"-x", "--xdp_mode", "driver"}, xdp(XDPModeNative)},
		{"offload", []string{"-x", "--xdp_mode", "offload"}, xdp(XDPModeOffload)},
		{"hardware is offload", []string{"--xdp_mode", "hardware", "-x"}, xdp(XDPModeOffload)},
		{"capitals", []string{"-x", "--xdp_mode", "Driver"}, xdp(XDPModeNative)},
		{"combined short flags", []string{"-xj"}, func() Config { c := xdp(XDPModeAuto); c.JSON = true; return c }()},
		{"with the other flags", []string{"-x", "-i", "veth0", "-t", "5s", "--max-entries", "1000"}, func() Config {
			c := xdp(XDPModeAuto)
			c.Iface, c.Timeout, c.MaxEntries = "veth0", 5*time.Second, 1000
			return c
		}()},
	}
	checkParse(t, tests)
}

// TestParseXDPUsageErrors: an unknown --xdp_mode, --xdp_mode without -x,
// and --tc-attach with -x are usage errors, not silent no-ops.
func TestParseXDPUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown mode", []string{"-x", "--xdp_mode", "turbo"}, []string{"--xdp_mode", `"turbo"`, "generic", "native", "offload", "best", "driver", "hardware"}},
		{"empty mode", []string{"-x", "--xdp_mode="}, []string{"--xdp_mode", `""`}},
		{"numeric mode", []string{"-x", "--xdp_mode", "2"}, []string{"--xdp_mode", `"2"`}},
		{"--xdp_mode without -x", []string{"--xdp_mode", "native"}, []string{"--xdp_mode native", "-x"}},
		{"--xdp_mode auto without -x", []string{"--xdp_mode", "auto"}, []string{"--xdp_mode auto", "-x"}},
		{"--xdp_mode with -x off", []string{"--xdp=false", "--xdp_mode", "generic"}, []string{"--xdp_mode", "-x"}},
		{"unknown mode without -x", []string{"--xdp_mode", "turbo"}, []string{"--xdp_mode", `"turbo"`}},
		{"--tc-attach with -x", []string{"-x", "--tc-attach", "legacy"}, []string{"--tc-attach", "-x", "--xdp_mode"}},
		{"--tc-attach auto with -x", []string{"--tc-attach", "auto", "-x"}, []string{"--tc-attach"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg, err := Parse(tt.args, &out)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want a usage error", tt.args, cfg)
			}
			if !IsUsage(err) {
				t.Fatalf("Parse(%q) error %v is not a usage error", tt.args, err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Parse(%q) error %q does not mention %q", tt.args, err, s)
				}
			}
			if cfg != (Config{}) || out.Len() != 0 {
				t.Errorf("Parse(%q) returned %+v and wrote %q with its error", tt.args, cfg, out.String())
			}
		})
	}
}

// TestHelpShowsXDP: the help lists both flags and every --xdp_mode value.
func TestHelpShowsXDP(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"--help"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"-x, --xdp", "--xdp_mode", "ingress only", "auto", "best", "generic", "native", "driver", "offload", "hardware"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("help does not mention %q:\n%s", s, out.String())
		}
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{ModeTC: "tc", ModeXDP: "xdp", Mode(42): "Mode(42)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}
