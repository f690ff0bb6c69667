package app

import (
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"

	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
	"github.com/pktstat-bpf/pktstat-bpf/internal/privs"
)

// afterAttach is what the rest of a run needs once src is attached:
// CAP_NET_ADMIN to take legacy tc filters off at the end (TCX, XDP and
// cgroup links go with their file descriptors), and CAP_BPF on kernels
// before 6.5, where every bpf() command needs it while unprivileged BPF is
// off (6.5 checks only where maps are created and programs loaded). The
// drains read and update maps the run already holds, and name owners from
// /proc and the cgroup file system, which need neither. With -i any
// (follow), interfaces that appear during the run are attached to then,
// which takes both for the whole run.
func afterAttach(mode, release string, follow bool) privs.Set {
	var keep privs.Set
	// "tc/legacy", or on several interfaces "tc/legacy,tcx".
	if strings.Contains(mode, "legacy") || follow {
		keep |= privs.Of(privs.CapNetAdmin)
	}
	if kernel.Before(release, 6, 5) || follow {
		keep |= privs.Of(privs.CapBPF)
	}
	return keep
}

// dropPrivileges gives up every capability the rest of the run does not
// need (afterAttach), the ambient and bounding sets where it may, and the
// right to gain privileges, and becomes as when it is not nil. A binary
// that cannot (built with cgo) says so and runs on with what it has.
func dropPrivileges(mode string, follow bool, as *privs.User, log *slog.Logger) {
	release, _ := kernel.Release()
	r, err := privs.Drop(afterAttach(mode, release, follow), as)
	if err != nil {
		log.Warn("could not drop privileges after attaching; the run keeps them", "error", err)
		return
	}
	attrs := []any{"kept", r.Kept.String(), "dropped", r.Dropped.String(), "bounding_set_cleared", r.Bounding}
	if r.User != nil {
		attrs = append(attrs, "user", r.User.Name, "uid", r.User.UID, "gid", r.User.GID)
	}
	if st, err := privs.Status(0); err == nil {
		// What the kernel says is left, as a reader of /proc would see it.
		attrs = append(attrs, "CapEff", fmt.Sprintf("%#x", st["CapEff"]), "CapBnd", fmt.Sprintf("%#x", st["CapBnd"]), "NoNewPrivs", st["NoNewPrivs"])
	}
	log.Debug("dropped the privileges the rest of the run does not need", attrs...)
}

// defaultUser is the account a run started as root becomes after
// attaching, unless --user names another.
const defaultUser = "nobody"

// runAs returns the account a run with euid becomes once attached: none
// unless it runs as root (a run given capabilities as another user keeps
// its user), --user's account, else nobody. The default gives way, with a
// note, where nobody could not serve the run: exporter-toolkit reads the
// web config and its certificate and key again at every TLS handshake, so
// they must stay readable. Asked for by name, an account that is missing
// or cannot read them is an error, before anything is attached.
func runAs(cfg cli.Config, euid int, log *slog.Logger) (*privs.User, error) {
	name := cfg.User
	if name == "root" || (name == "" && euid != 0) {
		return nil, nil
	}
	if name == "" {
		name = defaultUser
	}
	u, err := lookupUser(name)
	if err != nil {
		if cfg.User == "" {
			log.Info("staying root after attaching: there is no user "+defaultUser+" (--user names another)", "error", err)
			return nil, nil
		}
		return nil, &cli.UsageError{Err: fmt.Errorf("--user %s: %w", name, err)}
	}
	for _, f := range webConfigFiles(cfg.WebConfigFile) {
		if u.CanRead(f) {
			continue
		}
		if cfg.User == "" {
			log.Info("staying root after attaching: user "+defaultUser+" cannot read a file the metrics server reads at every TLS handshake (--user names another)", "file", f)
			return nil, nil
		}
		return nil, &cli.UsageError{Err: fmt.Errorf("--user %s cannot read %s, which the metrics server reads at every TLS handshake", name, f)}
	}
	return u, nil
}

// lookupUser finds an account in the user database (/etc/passwd in the
// static build).
func lookupUser(name string) (*privs.User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("gid %q: %w", u.Gid, err)
	}
	return &privs.User{Name: name, UID: uid, GID: gid}, nil
}

// webConfigFiles lists the files the metrics server reads during the run:
// the web config at path and the certificate, key and client CA files it
// names, relative to its directory as exporter-toolkit takes them.
func webConfigFiles(path string) []string {
	if path == "" {
		return nil
	}
	files := []string{path}
	raw, err := os.ReadFile(path)
	if err != nil {
		return files
	}
	var c web.Config
	if yaml.Unmarshal(raw, &c) != nil {
		return files
	}
	c.TLSConfig.SetDirectory(filepath.Dir(path))
	for _, f := range []string{c.TLSConfig.TLSCertPath, c.TLSConfig.TLSKeyPath, c.TLSConfig.ClientCAs} {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}
