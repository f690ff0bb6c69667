//go:build 386 || amd64 || arm64

package capture

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
)

// loadProcessSpec returns the process object built for this architecture:
// its kprobe programs read the architecture's registers.
func loadProcessSpec() (*ebpf.CollectionSpec, error) {
	spec, err := bpfprog.LoadProcess()
	if err != nil {
		return nil, fmt.Errorf("load process object: %w", err)
	}
	return spec, nil
}
