package app

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
)

// TestRunAs checks which account a run becomes after attaching, against
// this system's user database and files the test creates with the owners
// and modes it gives them.
func TestRunAs(t *testing.T) {
	nobody, err := lookupUser("nobody")
	if err != nil {
		t.Skipf("skipped: this system has no user nobody: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to give the test's files to root alone (run as root)")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("open.crt", "", 0o644)
	write("open.key", "", 0o644)
	write("secret.key", "", 0o600)
	open := write("open.yml", "tls_server_config:\n  cert_file: open.crt\n  key_file: open.key\n", 0o644)
	secret := write("secret.yml", "tls_server_config:\n  cert_file: open.crt\n  key_file: secret.key\n", 0o644)

	for _, c := range []struct {
		name    string
		cfg     cli.Config
		euid    int
		want    string // the account, "" for none
		wantErr string
		logged  string
	}{
		{name: "root becomes nobody", euid: 0, want: "nobody"},
		{name: "a user with capabilities stays itself", euid: 1000},
		{name: "--user root stays root", cfg: cli.Config{User: "root"}},
		{name: "--user names the account", cfg: cli.Config{User: "nobody"}, euid: 1000, want: "nobody"},
		{name: "a missing --user account is an error", cfg: cli.Config{User: "pktstat-no-such-user"}, wantErr: "--user pktstat-no-such-user: "},
		{name: "nobody reads the web config and its files", cfg: cli.Config{WebConfigFile: open}, want: "nobody"},
		{name: "a key only root reads keeps root", cfg: cli.Config{WebConfigFile: secret}, logged: filepath.Join(dir, "secret.key")},
		{name: "--user that cannot read the key is an error", cfg: cli.Config{WebConfigFile: secret, User: "nobody"}, wantErr: "--user nobody cannot read " + filepath.Join(dir, "secret.key")},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logged strings.Builder
			u, err := runAs(c.cfg, c.euid, slog.New(slog.NewTextHandler(&logged, nil)))
			if c.wantErr != "" {
				var usage *cli.UsageError
				if err == nil || !errors.As(err, &usage) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want a usage error with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if u != nil {
				got = u.Name
				if u.UID != nobody.UID || u.GID != nobody.GID {
					t.Errorf("ids %d:%d, want nobody's %d:%d", u.UID, u.GID, nobody.UID, nobody.GID)
				}
			}
			if got != c.want {
				t.Errorf("runs as %q, want %q", got, c.want)
			}
			if !strings.Contains(logged.String(), c.logged) {
				t.Errorf("log %q does not name %q", logged.String(), c.logged)
			}
		})
	}
}
