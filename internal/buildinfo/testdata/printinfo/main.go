// Command printinfo prints buildinfo.Read(), for TestLinkedVersion. It
// imports cilium/ebpf so that the module is among the binary's deps.
package main

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/buildinfo"
)

var _ = ebpf.ErrNotSupported

func main() { fmt.Println(buildinfo.Read()) }
