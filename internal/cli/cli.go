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

	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
)

// DefaultMaxEntries is the flow-table size when --max-entries is 0 or unset.
const DefaultMaxEntries = 131072

// MaxMaxEntries bounds --max-entries: 2^24 flows already lock gigabytes of
// per-CPU memory on a large machine.
const MaxMaxEntries = 1 << 24

// MinInterval is the shortest --interval: each report drains the kernel's
// table, which waits for an RCU grace period.
const MinInterval = 100 * time.Millisecond

// TCAttach says how TC programs are attached.
type TCAttach string

// The --tc-attach values.
const (
	TCAttachAuto   TCAttach = "auto"   // TCX, else legacy
	TCAttachTCX    TCAttach = "tcx"    // TCX links only (kernel 6.6+)
	TCAttachLegacy TCAttach = "legacy" // clsact qdisc + cls_bpf filters
)

// Mode is the capture mode: which hook counts the traffic. The zero value
// is the default, TC.
type Mode int

// The capture modes.
const (
	ModeTC      Mode = iota // TC programs, ingress and egress
	ModeXDP                 // an XDP program, ingress only (-x)
	ModeCgroup              // cgroup_skb programs on a cgroup v2 directory (-c)
	ModeProcess             // per-process TCP, UDP and ICMP on the whole host (-k)
)

func (m Mode) String() string {
	switch m {
	case ModeTC:
		return "tc"
	case ModeXDP:
		return "xdp"
	case ModeCgroup:
		return "cgroup"
	case ModeProcess:
		return "process"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// XDPMode says how the XDP program is attached.
type XDPMode string

// The --xdp_mode values; pktstat-bpf's aliases map onto them.
const (
	XDPModeAuto    XDPMode = "auto"    // native, else generic; alias best
	XDPModeGeneric XDPMode = "generic" // in the core stack, any driver
	XDPModeNative  XDPMode = "native"  // in the driver; alias driver
	XDPModeOffload XDPMode = "offload" // on the NIC; alias hardware
)

var xdpModeAliases = map[string]XDPMode{
	"auto": XDPModeAuto, "best": XDPModeAuto,
	"generic": XDPModeGeneric,
	"native":  XDPModeNative, "driver": XDPModeNative,
	"offload": XDPModeOffload, "hardware": XDPModeOffload,
}

// Config is the validated command line.
type Config struct {
	Iface   string        // interface to watch; "" picks the default
	Timeout time.Duration // capture time; 0 runs until a signal
	JSON    bool          // JSON instead of plain text (-j, --output json)
	// NoReport is set when the daemon (--listen) writes no report: none
	// of -j, --output or --interval asks for one.
	NoReport   bool
	MaxEntries uint32 // flow-table size
	TCAttach   TCAttach
	Mode       Mode    // capture mode
	XDPMode    XDPMode // how -x attaches; set only in ModeXDP
	Cgroup     string  // cgroup v2 directory to watch; set only in ModeCgroup
	NoARP      bool    // --no-arp: count ARP without its opcode and addresses (TC and XDP)
	// TUI shows the live table (-g) instead of a report at the end; it
	// runs until the user quits, so Timeout is 0 with it.
	TUI      bool
	Refresh  time.Duration // time between readings, over which rates are; set only with TUI
	Expire   time.Duration // quiet time after which a flow leaves, 0 never; set only with TUI
	Interval time.Duration // report every Interval; 0 reports once, at the end
	Top      int           // rows per report; 0 shows every row
	Version  bool          // print the version and exit
	// Debug logs at debug level and, when a verifier refuses a program,
	// prints the end of its log (--debug).
	Debug bool
	Help  bool // print usage and exit
	// Completion names the shell whose completion script to print
	// (--completion); the run does nothing else.
	Completion string

	// GroupBy adds rows up by these fields (--group-by), in reports and
	// the live table; the zero value shows flows.
	GroupBy Grouping

	// ProcessBackend is how -k hooks the kernel; set only in ModeProcess.
	ProcessBackend ProcessBackend

	// Ifaces are the interfaces of a run that watches several (iface.go);
	// empty with one or none, which Iface names.
	Ifaces IfaceList

	// Listen is the address of the Prometheus endpoint (--listen); with
	// it the tool runs as a daemon. See listen.go.
	Listen        string
	MetricsTop    int    // top flows exported as series; set only with Listen
	WebConfigFile string // exporter-toolkit web config (TLS, basic auth); only with Listen
	// InsecureListen allows a Listen address other than loopback without
	// both TLS and basic auth (--insecure-listen); only with Listen.
	InsecureListen bool
	// User is the account to switch to after attaching, when started as
	// root (--user); empty means nobody where the run allows it, "root"
	// keeps root.
	User string
	// Filter is the filter expression of the trailing arguments, tested
	// in the kernel on every packet; nil counts every packet.
	Filter *filter.Filter
	// Read replays a capture file instead of watching (--read; read.go);
	// nil watches.
	Read *ReadConfig
	// BPFStats turns on the kernel's run-time statistics of every eBPF
	// program while the daemon runs (--bpf-stats); only with Listen.
	BPFStats bool
	// IPFIX exports flow records to a collector (--ipfix); see ipfix.go.
	IPFIX IPFIX
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
	return parse(args, out, nil)
}

// FlagSet returns the flags Parse knows, unparsed: the one source of
// --help, the man page and the shell completions.
func FlagSet() *pflag.FlagSet {
	var fs *pflag.FlagSet
	_, _ = parse(nil, io.Discard, func(f *pflag.FlagSet) { fs = f })
	return fs
}

// parse is Parse; a non-nil inspect gets the defined flags instead, and
// nothing is parsed.
func parse(args []string, out io.Writer, inspect func(*pflag.FlagSet)) (Config, error) {
	var (
		cfg        Config
		maxEntries int64
		tcAttach   string
		xdp        bool
		xdpMode    string
		refresh    time.Duration
		expire     time.Duration
		kprobes    bool
		process    bool
		procBack   string
		output     string
	)
	fs := pflag.NewFlagSet("pktstat-bpf", pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned and printed once, by main
	fs.SortFlags = false
	ifaces := fs.StringSliceP("iface", "i", nil, "interface to watch (default: the default route's interface, else the first up, non-loopback interface with a MAC address); repeat -i or separate names with commas to watch several, or give any for every up, non-loopback interface, including those that appear later (rows then name their interface)")
	fs.DurationVarP(&cfg.Timeout, "timeout", "t", 10*time.Minute, "capture time; 0 runs until SIGINT or SIGTERM")
	fs.BoolVarP(&cfg.JSON, "json", "j", false, "print the report as JSON")
	fs.StringVar(&output, "output", "plain", "report format: plain or json (-j is --output json); with --listen, asks for a report of the whole run at the end")
	fs.Int64Var(&maxEntries, "max-entries", 0, fmt.Sprintf("flow table size; 0 keeps the default of %d", DefaultMaxEntries))
	fs.StringVar(&tcAttach, "tc-attach", string(TCAttachAuto), "how to attach TC programs: auto, tcx or legacy")
	fs.DurationVar(&cfg.Interval, "interval", 0, "write a report of every interval (at least 100ms) instead of one at the end; NDJSON with -j")
	fs.IntVar(&cfg.Top, "top", 0, "show only the N fastest rows of each report, plus an overflow row for the rest (default: every row)")
	groupBy := fs.String("group-by", "", "add rows up by these comma-separated fields: src, dst, sport, dport, proto, dir, iface, vlan, app (TC, XDP), pid, comm, cgroup (-c, -k); a row per distinct value, the other fields left out")
	fs.BoolVarP(&xdp, "xdp", "x", false, "count with XDP instead of TC: the fastest hook, but ingress only")
	fs.StringVar(&xdpMode, "xdp_mode", string(XDPModeAuto), "with -x, how to attach: auto (alias best), generic, native (alias driver) or offload (alias hardware)")
	fs.StringVarP(&cfg.Cgroup, "cgroup", "c", "", "count the traffic of the processes in this cgroup v2 directory and below it, with their PID and name")
	fs.BoolVarP(&kprobes, "kprobes", "k", false, "count TCP, UDP and ICMP per process on the whole host, with each row's PID, process name and cgroup (alias --process); no kprobes needed")
	fs.BoolVar(&process, "process", false, "the same as -k (--kprobes)")
	fs.StringVar(&procBack, "process-backend", string(ProcessBackendAuto), "with -k, how to hook the kernel: auto (the first that works), tracepoint, fentry or kprobe")
	fs.BoolVar(&cfg.NoARP, "no-arp", false, "count ARP frames in one row per VLAN and direction, without their opcode and addresses (TC and XDP)")
	readFile, readMAC, readNets := readFlags(fs)
	fs.BoolVarP(&cfg.TUI, "tui", "g", false, "show a live, full-screen table of flows with their current rates; quit with q (--timeout does not apply)")
	fs.DurationVarP(&refresh, "refresh", "r", time.Second, fmt.Sprintf("with -g, time between refreshes, over which rates are measured (at least %s); -r stays --refresh, as in pktstat-bpf: files are read with --read", MinRefresh))
	fs.DurationVar(&expire, "expire", 10*time.Second, "with -g, remove a flow from the table once it has been quiet this long; 0 keeps quiet flows")
	fs.StringVar(&cfg.Listen, "listen", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9864; a bare :PORT binds to loopback) and run until SIGINT or SIGTERM")
	fs.IntVar(&cfg.MetricsTop, "metrics-top", DefaultMetricsTop, fmt.Sprintf("with --listen, export the N fastest flows as series of their own (0 to %d)", MaxMetricsTop))
	fs.StringVar(&cfg.WebConfigFile, "web.config.file", "", "with --listen, a Prometheus exporter web config file that enables TLS and/or basic auth")
	fs.StringVar(&cfg.User, "user", "", "when started as root, run as this user once attached, keeping only the capabilities the run still needs (default nobody, unless nobody cannot read the --web.config.file files; root keeps root)")
	fs.BoolVar(&cfg.InsecureListen, "insecure-listen", false, "with --listen on an address other than loopback, serve even without both TLS and basic auth in --web.config.file: anyone who reaches it reads the top flows and makes the tool drain")
	fs.BoolVar(&cfg.BPFStats, "bpf-stats", false, "with --listen, turn on the kernel's run-time statistics of eBPF programs and export them (needs CAP_SYS_ADMIN; times every run of every eBPF program on the host)")
	addIPFIXFlags(fs, &cfg.IPFIX)
	fs.BoolVar(&cfg.Version, "version", false, "print the version and exit")
	fs.BoolVar(&cfg.Debug, "debug", false, "log every step, and print the end of the verifier's log when the kernel refuses a program")
	fs.BoolVarP(&cfg.Help, "help", "?", false, "show this help")
	fs.StringVar(&cfg.Completion, "completion", "", "print the completion script for this shell (bash, zsh or fish) and exit")

	if inspect != nil {
		inspect(fs)
		return Config{}, nil
	}

	if err := fs.Parse(args); err != nil {
		// pflag answers -h, which no flag claims, with ErrHelp: users who
		// type -h ask for help, so give it rather than a usage error.
		if !errors.Is(err, pflag.ErrHelp) {
			return Config{}, &UsageError{Err: err}
		}
		cfg.Help = true
	}
	if cfg.Help {
		fmt.Fprintf(out, "Usage: pktstat-bpf [flags] [filter expression]\n\nShows per-flow traffic statistics, counted by eBPF programs in the kernel.\n\nFlags:\n%s", fs.FlagUsages())
		return cfg, nil
	}
	if cfg.Completion != "" {
		return cfg, checkCompletion(cfg.Completion)
	}
	// The arguments after the flags are a filter expression, as tcpdump's.
	f, err := filter.Parse(fs.Args())
	if err != nil {
		return Config{}, &UsageError{Err: err}
	}
	cfg.Filter = f
	if cfg.Timeout < 0 {
		return Config{}, usageErrorf("invalid --timeout %s: must be 0 (no limit) or positive", cfg.Timeout)
	}
	if fs.Changed("interval") && cfg.Interval < MinInterval {
		return Config{}, usageErrorf("invalid --interval %s: must be at least %s", cfg.Interval, MinInterval)
	}
	if err := parseOutput(fs, &cfg, output); err != nil {
		return Config{}, err
	}
	if fs.Changed("top") && cfg.Top < 1 {
		return Config{}, usageErrorf("invalid --top %d: must be at least 1", cfg.Top)
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
	mode, err := chooseMode([]modeChoice{
		{"-x (--xdp)", ModeXDP, xdp},
		{"-c (--cgroup)", ModeCgroup, fs.Changed("cgroup")},
		{"-k (--kprobes, --process)", ModeProcess, kprobes || process},
	})
	if err != nil {
		return Config{}, err
	}
	cfg.Mode = mode
	if err := checkCgroupMode(fs, &cfg); err != nil {
		return Config{}, err
	}
	if err := checkProcessMode(fs, &cfg, procBack); err != nil {
		return Config{}, err
	}
	if err := parseXDPMode(fs, &cfg, xdpMode); err != nil {
		return Config{}, err
	}
	if err := parseIfaces(fs, &cfg, *ifaces); err != nil {
		return Config{}, err
	}
	if err := checkTUI(fs, &cfg, refresh, expire); err != nil {
		return Config{}, err
	}
	if err := checkListen(fs, &cfg); err != nil {
		return Config{}, err
	}
	if err := checkRead(fs, &cfg, *readFile, *readMAC, *readNets); err != nil {
		return Config{}, err
	}
	if err := parseGroupBy(fs, &cfg, *groupBy); err != nil {
		return Config{}, err
	}
	if err := checkIPFIX(fs, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseOutput validates --output, which -j must not contradict.
func parseOutput(fs *pflag.FlagSet, cfg *Config, output string) error {
	switch strings.ToLower(output) {
	case "plain":
		if cfg.JSON && fs.Changed("output") {
			return usageErrorf("-j (--json) and --output %s cannot be combined: -j is --output json", output)
		}
	case "json":
		cfg.JSON = true
	default:
		return usageErrorf("invalid --output %q: must be plain or json", output)
	}
	return nil
}

// MinRefresh bounds -r: faster refreshes measure rates over too few
// packets, and reading a large flow table takes time.
const MinRefresh = 100 * time.Millisecond

// checkTUI validates -g and its flags. As in pktstat-bpf, the TUI has no
// timeout: it runs until the user quits, so -t is ignored with it.
func checkTUI(fs *pflag.FlagSet, cfg *Config, refresh, expire time.Duration) error {
	if !cfg.TUI {
		for _, f := range []string{"refresh", "expire"} {
			if fs.Changed(f) {
				return usageErrorf("--%s applies only to the live table: add -g (--tui)", f)
			}
		}
		return nil
	}
	switch {
	case fs.Changed("output"):
		return usageErrorf("--output and -g (--tui) cannot be combined: --output formats reports, and the live table prints none")
	case cfg.JSON:
		return usageErrorf("-j (--json) and -g (--tui) cannot be combined: JSON is a report printed at the end")
	case fs.Changed("interval"):
		return usageErrorf("--interval and -g (--tui) cannot be combined: --interval writes reports, and the live table refreshes every -r (--refresh)")
	case fs.Changed("top"):
		return usageErrorf("--top and -g (--tui) cannot be combined: --top limits reports, and the live table shows every flow, scrolling")
	case refresh < MinRefresh:
		return usageErrorf("invalid --refresh %s: must be at least %s", refresh, MinRefresh)
	case expire < 0:
		return usageErrorf("invalid --expire %s: must be 0 (keep quiet flows) or positive", expire)
	}
	cfg.Refresh, cfg.Expire, cfg.Timeout = refresh, expire, 0
	return nil
}

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// parseXDPMode validates --xdp_mode, and refuses the flags that cannot go
// with the capture mode instead of silently ignoring them.
func parseXDPMode(fs *pflag.FlagSet, cfg *Config, value string) error {
	m, ok := xdpModeAliases[strings.ToLower(value)]
	if !ok {
		return usageErrorf("invalid --xdp_mode %q: must be auto (or best), generic, native (or driver), or offload (or hardware)", value)
	}
	switch {
	case cfg.Mode != ModeXDP && fs.Changed("xdp_mode"):
		return usageErrorf("--xdp_mode %s applies only to XDP mode: add -x (--xdp)", value)
	case cfg.Mode == ModeXDP && fs.Changed("tc-attach"):
		return usageErrorf("--tc-attach applies to TC mode, not to -x (--xdp); use --xdp_mode to choose how XDP attaches")
	}
	if cfg.Mode == ModeXDP {
		cfg.XDPMode = m
	}
	return nil
}

// modeChoice is a flag that selects a capture mode, and whether it was given.
type modeChoice struct {
	flag  string
	mode  Mode
	given bool
}

// chooseMode returns the one mode the command line selects, TC if none.
// pktstat-bpf silently applies a precedence order when several are given;
// here that is a usage error, because the user cannot have meant both.
func chooseMode(choices []modeChoice) (Mode, error) {
	var given []string
	mode := ModeTC
	for _, c := range choices {
		if c.given {
			given = append(given, c.flag)
			mode = c.mode
		}
	}
	if len(given) > 1 {
		return ModeTC, usageErrorf("%s choose different capture modes: give only one", strings.Join(given, " and "))
	}
	return mode, nil
}

// checkCgroupMode validates -c and refuses the flags that mean nothing in
// cgroup mode, which sees every interface and attaches no TC programs.
func checkCgroupMode(fs *pflag.FlagSet, cfg *Config) error {
	if cfg.Mode != ModeCgroup {
		return nil
	}
	switch {
	case cfg.Cgroup == "":
		return usageErrorf("-c (--cgroup) needs the path of a cgroup v2 directory, such as /sys/fs/cgroup/system.slice/nginx.service")
	case fs.Changed("iface"):
		return usageErrorf("-i (--iface) does not apply to -c (--cgroup): cgroup mode counts the cgroup's traffic on every interface")
	case fs.Changed("tc-attach"):
		return usageErrorf("--tc-attach applies to TC mode, not to -c (--cgroup)")
	case cfg.NoARP:
		return usageErrorf("--no-arp applies to TC and XDP modes: cgroup mode (-c) sees no ARP")
	}
	return nil
}
