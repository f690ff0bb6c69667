package cli

import (
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// TestRead: --read and its direction options parse, and what cannot go
// with a file is a usage error naming the flag.
func TestRead(t *testing.T) {
	cfg, err := Parse([]string{"--read", "x.pcap", "--direction-by-net", "198.18.0.1/15,2001:2::/48", "-j"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("2001:2::/48")}
	if cfg.Read == nil || cfg.Read.File != "x.pcap" || len(cfg.Read.ByNet) != 2 || cfg.Read.ByNet[0] != want[0] || cfg.Read.ByNet[1] != want[1] {
		t.Fatalf("parsed %+v", cfg.Read)
	}
	cfg, err = Parse([]string{"--read", "-", "--direction-by-mac", "02:00:00:00:00:0a"}, io.Discard)
	if err != nil || cfg.Read.File != "-" || cfg.Read.ByMAC.String() != "02:00:00:00:00:0a" {
		t.Fatalf("stdin with a MAC: %+v, %v", cfg.Read, err)
	}
	if cfg, err := Parse(nil, io.Discard); err != nil || cfg.Read != nil {
		t.Fatalf("without --read: %+v, %v", cfg.Read, err)
	}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--direction-by-mac", "02:00:00:00:00:0a"}, "--direction-by-mac needs --read"},
		{[]string{"--direction-by-net", "198.18.0.0/15"}, "--direction-by-net needs --read"},
		{[]string{"--read", "f", "--direction-by-mac", "nope"}, "invalid --direction-by-mac"},
		{[]string{"--read", "f", "--direction-by-net", "198.18.0.1"}, "invalid --direction-by-net"},
		{[]string{"--read", "f", "--direction-by-mac", "02:00:00:00:00:0a", "--direction-by-net", "198.18.0.0/15"}, "exclude each other"},
		{[]string{"--read", "f", "-g"}, "--tui does not go with --read"},
		{[]string{"--read", "f", "-i", "eth0"}, "--iface does not go with --read"},
		{[]string{"--read", "f", "--listen", ":9864"}, "--listen does not go with --read"},
	} {
		_, err := Parse(c.args, io.Discard)
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%v: %v, want a usage error saying %q", c.args, err, c.says)
		}
	}
	// -r stays --refresh.
	cfg, err = Parse([]string{"-g", "-r", "2s"}, io.Discard)
	if err != nil || cfg.Refresh.Seconds() != 2 || cfg.Read != nil {
		t.Fatalf("-g -r 2s: refresh %v, read %+v, %v", cfg.Refresh, cfg.Read, err)
	}
}
