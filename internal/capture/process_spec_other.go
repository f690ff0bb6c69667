//go:build !(386 || amd64 || arm64)

package capture

import (
	"errors"

	"github.com/cilium/ebpf"
)

// loadProcessSpec: the process object is built for amd64 and arm64 only
// (see internal/bpfprog/gen.go).
func loadProcessSpec() (*ebpf.CollectionSpec, error) {
	return nil, errors.New("process mode (-k) is built for amd64 and arm64 only")
}
