package cli

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/pktstat-bpf/pktstat-bpf/internal/group"
)

// Grouping is the set of fields rows are added up by (group.By).
type Grouping = group.By

// groupFieldModes says in which modes each --group-by field has values:
// the owner's only where sockets have owners (cgroup and process mode);
// the VLAN and the application protocol only where frames are parsed from
// layer 2 with their payload (TC and XDP); the interface only where one
// is watched (TC and XDP). A field that is empty in every row of a mode
// would group everything into one row, so asking for it is a usage error.
var groupFieldModes = map[group.Field][]Mode{
	group.PID:    {ModeCgroup, ModeProcess},
	group.Comm:   {ModeCgroup, ModeProcess},
	group.Cgroup: {ModeCgroup, ModeProcess},
	group.VLAN:   {ModeTC, ModeXDP},
	group.App:    {ModeTC, ModeXDP},
	group.Iface:  {ModeTC, ModeXDP},
}

// parseGroupBy validates --group-by against the mode. It applies to
// reports and the live table; the metrics endpoint keeps its own labels.
func parseGroupBy(fs *pflag.FlagSet, cfg *Config, value string) error {
	if !fs.Changed("group-by") {
		return nil
	}
	by, err := group.Parse(value)
	if err != nil {
		return usageErrorf("invalid --group-by %q: %w", value, err)
	}
	for _, f := range by.Fields() {
		modes, limited := groupFieldModes[f]
		if !limited {
			continue
		}
		ok := false
		var names []string
		for _, m := range modes {
			ok = ok || m == cfg.Mode
			names = append(names, modeFlag(m))
		}
		if !ok {
			return usageErrorf("--group-by %s does not apply to %s mode: it has values only in %s", f, cfg.Mode, strings.Join(names, " and "))
		}
	}
	if cfg.NoReport {
		return usageErrorf("--group-by groups the rows of reports and of the live table, and with --listen there is no report unless -j (--json), --output or --interval asks for it")
	}
	cfg.GroupBy = by
	return nil
}

// modeFlag names a mode with the flag that selects it.
func modeFlag(m Mode) string {
	switch m {
	case ModeXDP:
		return "XDP mode (-x)"
	case ModeCgroup:
		return "cgroup mode (-c)"
	case ModeProcess:
		return "process mode (-k)"
	}
	return "TC mode"
}
