package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestParseNoARP: --no-arp, as in pktstat-bpf, in TC and XDP mode; cgroup
// mode sees no ARP, so there it is a usage error rather than ignored.
func TestParseNoARP(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		noARP bool
		mode  Mode
	}{
		{nil, false, ModeTC},
		{[]string{"--no-arp"}, true, ModeTC},
		{[]string{"--no-arp=false"}, false, ModeTC},
		{[]string{"-x", "--no-arp"}, true, ModeXDP},
	} {
		cfg, err := Parse(tc.args, &bytes.Buffer{})
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if cfg.NoARP != tc.noARP || cfg.Mode != tc.mode {
			t.Errorf("%q: NoARP %v, mode %v; want %v, %v", tc.args, cfg.NoARP, cfg.Mode, tc.noARP, tc.mode)
		}
	}
	_, err := Parse([]string{"-c", "/sys/fs/cgroup/unified", "--no-arp"}, &bytes.Buffer{})
	if !IsUsage(err) || !strings.Contains(err.Error(), "--no-arp") {
		t.Errorf("--no-arp with -c: %v, want a usage error that names --no-arp", err)
	}
}
