package cli

import (
	"net"
	"net/netip"

	"github.com/spf13/pflag"
)

// ReadConfig is --read and the options that go with it.
type ReadConfig struct {
	// File is the pcap or pcapng file to replay through the programs
	// instead of watching an interface; "-" is standard input.
	File string
	// ByMAC makes frames from this MAC egress and every other ingress,
	// where the file records no direction.
	ByMAC net.HardwareAddr
	// ByNet makes packets from an address in these prefixes egress and
	// every other ingress, where the file records no direction.
	ByNet []netip.Prefix
}

// readFlags declares --read and its options on fs.
func readFlags(fs *pflag.FlagSet) (file, mac *string, nets *[]string) {
	file = fs.String("read", "", "count a pcap or pcapng file (- for standard input) with the same eBPF programs, run with BPF_PROG_TEST_RUN, instead of watching an interface; reports use the capture's clock (-r is --refresh, as in pktstat-bpf, not tcpdump's -r)")
	mac = fs.String("direction-by-mac", "", "with --read, where the file records no direction: frames from this MAC address are egress, all others ingress")
	nets = fs.StringSlice("direction-by-net", nil, "with --read, where the file records no direction: packets from an address in this CIDR (repeat or separate with commas) are egress, all others ingress")
	return file, mac, nets
}

// checkRead validates --read against the rest of the command line.
func checkRead(fs *pflag.FlagSet, cfg *Config, file, mac string, nets []string) error {
	if file == "" {
		for _, f := range []string{"direction-by-mac", "direction-by-net"} {
			if fs.Changed(f) {
				return usageErrorf("--%s needs --read", f)
			}
		}
		return nil
	}
	cfg.Read = &ReadConfig{File: file}
	if mac != "" && len(nets) > 0 {
		return usageErrorf("--direction-by-mac and --direction-by-net exclude each other")
	}
	if mac != "" {
		hw, err := net.ParseMAC(mac)
		if err != nil || len(hw) != 6 {
			return usageErrorf("invalid --direction-by-mac %q: not an Ethernet MAC address", mac)
		}
		cfg.Read.ByMAC = hw
	}
	for _, n := range nets {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return usageErrorf("invalid --direction-by-net %q: %v", n, err)
		}
		cfg.Read.ByNet = append(cfg.Read.ByNet, p.Masked())
	}
	for _, f := range []string{"iface", "cgroup", "kprobes", "process", "tui", "listen", "tc-attach", "xdp_mode", "user"} {
		if fs.Changed(f) {
			return usageErrorf("--%s does not go with --read, which attaches to nothing", f)
		}
	}
	return nil
}
