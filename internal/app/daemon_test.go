package app

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// TestListenExposure: an address other hosts can reach is refused
// without both TLS and basic auth, unless --insecure-listen says so (with
// a warning); basic auth without TLS is warned about; loopback needs
// nothing; and an IPv4 address binds IPv4 only.
func TestListenExposure(t *testing.T) {
	dir := t.TempDir()
	authOnly := filepath.Join(dir, "auth.yml")
	// bcrypt of "x", cost 4.
	if err := os.WriteFile(authOnly, []byte("basic_auth_users:\n  prometheus: $2a$04$H0Ps8Q1mRJ9VjTfQmCNnUO1sJ4cKXbkY9R1QmB0c9S6Jm1mJ4Y0bG\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		cfg      cli.Config
		refused  bool
		warnings []string
		ipv4Only bool // serves 127.0.0.1 but not [::1]
	}{
		{name: "loopback", cfg: cli.Config{Listen: "127.0.0.1:0"}, ipv4Only: true},
		{name: "every IPv4 address", cfg: cli.Config{Listen: "0.0.0.0:0"}, refused: true},
		{name: "every IPv6 address", cfg: cli.Config{Listen: "[::]:0"}, refused: true},
		{name: "basic auth only", cfg: cli.Config{Listen: "0.0.0.0:0", WebConfigFile: authOnly}, refused: true},
		{name: "insecure", cfg: cli.Config{Listen: "0.0.0.0:0", InsecureListen: true},
			warnings: []string{"without both TLS and basic auth"}, ipv4Only: true},
		{name: "loopback, basic auth only", cfg: cli.Config{Listen: "127.0.0.1:0", WebConfigFile: authOnly},
			warnings: []string{"clear text"}, ipv4Only: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logged testnet.LockedBuffer
			ln, err := listenMetrics(c.cfg, slog.New(slog.NewTextHandler(&logged, nil)))
			if c.refused {
				var ue *cli.UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--insecure-listen") {
					t.Fatalf("listenMetrics = %v, want a usage error that names --insecure-listen", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			if c4, err := net.Dial("tcp", "127.0.0.1:"+port); err != nil {
				t.Errorf("127.0.0.1:%s: %v", port, err)
			} else {
				c4.Close()
			}
			if c6, err := net.Dial("tcp", "[::1]:"+port); err == nil {
				c6.Close()
				if c.ipv4Only {
					t.Errorf("%s also serves [::1]:%s", c.cfg.Listen, port)
				}
			}
			for _, w := range c.warnings {
				if !strings.Contains(logged.String(), w) {
					t.Errorf("no warning %q in the log:\n%s", w, logged.String())
				}
			}
			if len(c.warnings) == 0 && logged.String() != "" {
				t.Errorf("unexpected log:\n%s", logged.String())
			}
		})
	}
}

// TestLimitedLog: a flood of server errors logs errorLogLimit lines a
// minute, then one line that counts the rest.
func TestLimitedLog(t *testing.T) {
	var logged testnet.LockedBuffer
	clock := time.Unix(1_800_000_000, 0)
	l := &limitedLog{log: slog.New(slog.NewTextHandler(&logged, nil)), now: func() time.Time { return clock }}
	for range 100 {
		l.Write([]byte("http: TLS handshake error from 198.18.0.9:4000: EOF\n"))
	}
	if n := strings.Count(logged.String(), "TLS handshake error"); n != errorLogLimit {
		t.Errorf("%d lines logged in the first minute, want %d", n, errorLogLimit)
	}
	clock = clock.Add(time.Minute)
	l.Write([]byte("http: TLS handshake error from 198.18.0.9:4001: EOF\n"))
	if !strings.Contains(logged.String(), "count=90") {
		t.Errorf("no count of the 90 lines left out:\n%s", logged.String())
	}
}
