package cli

import (
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// AnyIface is the -i value that watches every interface that is up and
// not a loopback, and every one that comes up during the run.
const AnyIface = "any"

// IfaceList is the interfaces of a run that watches several: every name
// given with -i, in order, or just AnyIface for -i any. It holds them
// joined by commas, which -i splits names at, so that Config stays
// comparable.
type IfaceList string

// Names returns the names in the list; none for the empty list.
func (l IfaceList) Names() []string {
	if l == "" {
		return nil
	}
	return strings.Split(string(l), ",")
}

// MultiIface reports whether the run watches several interfaces (-i any,
// or more than one -i): its rows then name their interface.
func (c *Config) MultiIface() bool { return c.Ifaces != "" }

// AnyIfaces reports whether the run watches every interface (-i any).
func (c *Config) AnyIfaces() bool { return c.Ifaces == AnyIface }

// parseIfaces sorts out -i, which may be repeated and take a
// comma-separated list: one name is Iface, as it always was; several
// names, or any, are Ifaces.
func parseIfaces(fs *pflag.FlagSet, cfg *Config, given []string) error {
	var names []string
	for _, n := range given {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			return usageErrorf("-i (--iface) has an empty interface name: give names separated by commas, or -i more than once")
		case slices.Contains(names, n):
			return usageErrorf("-i (--iface) names interface %q twice", n)
		}
		names = append(names, n)
	}
	switch {
	case len(names) == 0:
		return nil
	case len(names) == 1 && names[0] != AnyIface:
		cfg.Iface = names[0]
		return nil
	case len(names) > 1 && slices.Contains(names, AnyIface):
		return usageErrorf("-i any watches every interface already: give it alone, not with other names")
	}
	if cfg.Mode == ModeXDP && cfg.XDPMode == XDPModeOffload {
		return usageErrorf("--xdp_mode offload binds the program to one device: give one interface with -i, not several or any")
	}
	cfg.Ifaces = IfaceList(strings.Join(names, ","))
	return nil
}
