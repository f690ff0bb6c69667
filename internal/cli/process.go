package cli

import (
	"strings"

	"github.com/spf13/pflag"
)

// ProcessBackend says how process mode (-k) hooks the kernel.
type ProcessBackend string

// The --process-backend values.
const (
	ProcessBackendAuto       ProcessBackend = "auto"       // the first of the others that works
	ProcessBackendTracepoint ProcessBackend = "tracepoint" // tp_btf sock_send_length/sock_recv_length
	ProcessBackendFentry     ProcessBackend = "fentry"     // fexit on inet{,6}_{send,recv}msg
	ProcessBackendKprobe     ProcessBackend = "kprobe"     // kprobes on the same functions
)

// checkProcessMode validates -k and --process-backend, and refuses the
// flags that mean nothing in process mode, which sees every interface of
// every network namespace and attaches no TC programs.
func checkProcessMode(fs *pflag.FlagSet, cfg *Config, backend string) error {
	b := ProcessBackend(strings.ToLower(backend))
	switch b {
	case ProcessBackendAuto, ProcessBackendTracepoint, ProcessBackendFentry, ProcessBackendKprobe:
	default:
		return usageErrorf("invalid --process-backend %q: must be auto, tracepoint, fentry or kprobe", backend)
	}
	if cfg.Mode != ModeProcess {
		if fs.Changed("process-backend") {
			return usageErrorf("--process-backend applies only to process mode: add -k (--kprobes)")
		}
		return nil
	}
	switch {
	case fs.Changed("iface"):
		return usageErrorf("-i (--iface) does not apply to -k (--kprobes): process mode counts every interface of every network namespace")
	case fs.Changed("tc-attach"):
		return usageErrorf("--tc-attach applies to TC mode, not to -k (--kprobes)")
	case cfg.NoARP:
		return usageErrorf("--no-arp applies to TC and XDP modes: process mode (-k) sees no ARP")
	}
	cfg.ProcessBackend = b
	return nil
}
