package metrics

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// EnableBPFStats asks the kernel to keep run counts and run times of every
// eBPF program for as long as the returned Closer is open. It needs
// CAP_SYS_ADMIN; the kernel keeps these statistics only on request because
// timing every run costs about 20 ns per packet.
func EnableBPFStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable eBPF run-time statistics: %w", err)
	}
	return c, nil
}

// SysctlStatsEnabled reports whether an administrator turned eBPF run-time
// statistics on for the whole system (sysctl kernel.bpf_stats_enabled=1).
func SysctlStatsEnabled() bool {
	b, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	return err == nil && string(bytes.TrimSpace(b)) == "1"
}
