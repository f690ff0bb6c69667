// Package cli turns the command line into a validated Config. Flags and
// their defaults follow pktstat-bpf, so its users keep their muscle memory.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// DefaultMaxEntries is the flow-table size when --max-entries is 0 or unset.
const DefaultMaxEntries = 131072

// MaxMaxEntries bounds --max-entries: 2^24 flows already lock gigabytes of
// per-CPU memory on a large machine.
const MaxMaxEntries = 1 << 24

// TCAttach says how TC programs are attached.
type TCAttach string

// The --tc-attach values.
const (
	TCAttachAuto   TCAttach = "auto"   // TCX, else legacy
	TCAttachTCX    TCAttach = "tcx"    // TCX links only (kernel 6.6+)
	TCAttachLegacy TCAttach = "legacy" // clsact qdisc + cls_bpf filters
)

// Config is the validated command line.
type Config struct {
	Iface      string        // interface to watch; "" picks the default
	Timeout    time.Duration // capture time; 0 runs until a signal
	JSON       bool          // JSON instead of plain text
	MaxEntries uint32        // flow-table size
	TCAttach   TCAttach
	Version    bool // print the version and exit
	Help       bool // print usage and exit
}

// UsageError is a command line that cannot run; main exits 2 on it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Parse parses args (without the program name). Usage text for --help goes
// to out.
func Parse(args []string, out io.Writer) (Config, error) {
	var (
		cfg        Config
		maxEntries int64
		tcAttach   string
	)
	fs := pflag.NewFlagSet("pktstat-bpf", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned and printed once, by main
	fs.SortFlags = false
	fs.StringVarP(&cfg.Iface, "iface", "i", "", "interface to watch (default: the default route's interface)")
	fs.DurationVarP(&cfg.Timeout, "timeout", "t", 10*time.Minute, "capture time; 0 runs until SIGINT or SIGTERM")
	fs.BoolVarP(&cfg.JSON, "json", "j", false, "print the report as JSON")
	fs.Int64Var(&maxEntries, "max-entries", 0, fmt.Sprintf("flow table size; 0 keeps the default of %d", DefaultMaxEntries))
	fs.StringVar(&tcAttach, "tc-attach", string(TCAttachAuto), "how to attach TC programs: auto, tcx or legacy")
	fs.BoolVar(&cfg.Version, "version", false, "print the version and exit")
	fs.BoolVarP(&cfg.Help, "help", "?", false, "show this help")

	if err := fs.Parse(args); err != nil {
		// pflag answers -h, which no flag claims, with ErrHelp: users who
		// type -h ask for help, so give it rather than a usage error.
		if !errors.Is(err, pflag.ErrHelp) {
			return Config{}, &UsageError{Err: err}
		}
		cfg.Help = true
	}
	if cfg.Help {
		fmt.Fprintf(out, "Usage: pktstat-bpf [flags]\n\nShows per-flow traffic statistics, counted by eBPF programs in the kernel.\n\nFlags:\n%s", fs.FlagUsages())
		return cfg, nil
	}
	if fs.NArg() > 0 {
		return Config{}, usageErrorf("unexpected argument %q: all options are flags (see --help)", fs.Arg(0))
	}
	if cfg.Timeout < 0 {
		return Config{}, usageErrorf("invalid --timeout %s: must be 0 (no limit) or positive", cfg.Timeout)
	}
	switch {
	case maxEntries == 0:
		cfg.MaxEntries = DefaultMaxEntries
	case maxEntries < 0 || maxEntries > MaxMaxEntries:
		return Config{}, usageErrorf("invalid --max-entries %d: must be between 1 and %d (0 keeps the default %d)", maxEntries, MaxMaxEntries, DefaultMaxEntries)
	default:
		cfg.MaxEntries = uint32(maxEntries)
	}
	switch a := TCAttach(strings.ToLower(tcAttach)); a {
	case TCAttachAuto, TCAttachTCX, TCAttachLegacy:
		cfg.TCAttach = a
	default:
		return Config{}, usageErrorf("invalid --tc-attach %q: must be auto, tcx or legacy", tcAttach)
	}
	return cfg, nil
}

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}
