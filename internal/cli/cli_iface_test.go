package cli

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestParseIfaces: -i repeated or with a comma-separated list watches
// several interfaces, -i any every one; a single -i X is what it always
// was (Iface set, Ifaces empty).
func TestParseIfaces(t *testing.T) {
	with := func(f func(*Config)) Config { c := defaults(); f(&c); return c }
	tests := []parseCase{
		{"one -i is Iface", []string{"-i", "veth0"}, with(func(c *Config) { c.Iface = "veth0" })},
		{"repeated", []string{"-i", "veth0", "-i", "veth1"}, with(func(c *Config) { c.Ifaces = "veth0,veth1" })},
		{"comma list", []string{"-i", "veth0,veth1,veth2"}, with(func(c *Config) { c.Ifaces = "veth0,veth1,veth2" })},
		{"list and repeat, in order", []string{"--iface=b,a", "-ic"}, with(func(c *Config) { c.Ifaces = "b,a,c" })},
		{"spaces around names", []string{"-i", "veth0, veth1"}, with(func(c *Config) { c.Ifaces = "veth0,veth1" })},
		{"any", []string{"-i", "any"}, with(func(c *Config) { c.Ifaces = AnyIface })},
		{"any with XDP", []string{"-x", "-i", "any"}, with(func(c *Config) { c.Mode, c.XDPMode, c.Ifaces = ModeXDP, XDPModeAuto, AnyIface })},
		{"several with XDP native", []string{"-x", "--xdp_mode", "native", "-i", "a,b"}, with(func(c *Config) {
			c.Mode, c.XDPMode, c.Ifaces = ModeXDP, XDPModeNative, "a,b"
		})},
	}
	checkParse(t, tests)

	for _, c := range []struct {
		args  []string
		multi bool
		any   bool
		names []string
	}{
		{[]string{"-i", "veth0"}, false, false, nil},
		{nil, false, false, nil},
		{[]string{"-i", "a", "-i", "b"}, true, false, []string{"a", "b"}},
		{[]string{"-i", "any"}, true, true, []string{"any"}},
	} {
		cfg, err := Parse(c.args, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if cfg.MultiIface() != c.multi || cfg.AnyIfaces() != c.any || !slices.Equal(cfg.Ifaces.Names(), c.names) {
			t.Errorf("%q: MultiIface %v, AnyIfaces %v, Names %q; want %v, %v, %q",
				c.args, cfg.MultiIface(), cfg.AnyIfaces(), cfg.Ifaces.Names(), c.multi, c.any, c.names)
		}
	}
}

// TestParseIfacesUsageErrors: an empty name, a name given twice, any with
// other names, several interfaces where a mode cannot have them.
func TestParseIfacesUsageErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"empty in list", []string{"-i", "veth0,"}, "empty interface name"},
		{"twice", []string{"-i", "veth0", "-i", "veth0"}, `names interface "veth0" twice`},
		{"any and a name", []string{"-i", "any,veth0"}, "-i any watches every interface already"},
		{"offload", []string{"-x", "--xdp_mode", "offload", "-i", "a,b"}, "offload binds the program to one device"},
		{"offload any", []string{"-x", "--xdp_mode", "offload", "-i", "any"}, "offload binds the program to one device"},
		{"cgroup", []string{"-c", "/sys/fs/cgroup/x", "-i", "a,b"}, "-i (--iface) does not apply to -c"},
		{"process", []string{"-k", "-i", "any"}, "-i (--iface) does not apply to -k"},
	} {
		_, err := Parse(c.args, &bytes.Buffer{})
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse(%q) = %v, want a usage error containing %q", c.name, c.args, err, c.want)
		}
	}
}
