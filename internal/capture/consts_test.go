package capture

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// TestFlagsMatchBPF checks the Go flags against enum flow_flags, as bpf2go
// generated it from the object's BTF.
func TestFlagsMatchBPF(t *testing.T) {
	for _, c := range []struct {
		name  string
		goVal flow.Flags
		bpf   bpfprog.TCFlowFlags
	}{
		{"Fragment", flow.Fragment, bpfprog.TCFlowFlagsFLOW_F_FRAGMENT},
		{"Malformed", flow.Malformed, bpfprog.TCFlowFlagsFLOW_F_MALFORMED},
		{"DeepChain", flow.DeepChain, bpfprog.TCFlowFlagsFLOW_F_DEEP_CHAIN},
	} {
		if uint8(c.goVal) != uint8(c.bpf) {
			t.Errorf("flow.%s = %#x, the eBPF program's is %#x", c.name, c.goVal, c.bpf)
		}
	}
}

// TestTypesMatchMaps checks the generated key and value types against the
// sizes the object's maps declare, and that the key has no padding the
// compiler added: the kernel hashes the key as raw bytes, so a hidden gap
// with garbage in it would split one flow into several rows.
func TestTypesMatchMaps(t *testing.T) {
	spec, err := bpfprog.LoadTC()
	if err != nil {
		t.Fatalf("load TC spec: %v", err)
	}
	flows := spec.Maps[bpfprog.TCMapFlows]
	untracked := spec.Maps[bpfprog.TCMapUntracked]
	cache := spec.Maps[bpfprog.TCMapFlowCache]
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		{"flows key (FlowKey)", unsafe.Sizeof(bpfprog.FlowKey{}), uintptr(flows.KeySize)},
		{"flows value (TCFlowVal)", unsafe.Sizeof(bpfprog.FlowVal{}), uintptr(flows.ValueSize)},
		{"untracked key (uint32)", unsafe.Sizeof(uint32(0)), uintptr(untracked.KeySize)},
		{"untracked value (TCFlowVal)", unsafe.Sizeof(bpfprog.FlowVal{}), uintptr(untracked.ValueSize)},
		{"flow cache value (FlowCacheEntry)", unsafe.Sizeof(bpfprog.FlowCacheEntry{}), uintptr(cache.ValueSize)},
	} {
		if c.got != c.want {
			t.Errorf("%s: Go size %d, map spec %d", c.what, c.got, c.want)
		}
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[bpfprog.FlowKey](), reflect.TypeFor[bpfprog.FlowVal](), reflect.TypeFor[bpfprog.FlowCacheEntry]()} {
		var sum uintptr
		for i := range typ.NumField() {
			sum += typ.Field(i).Type.Size()
		}
		if sum != typ.Size() {
			t.Errorf("%s: fields add up to %d bytes, the type is %d: implicit padding", typ, sum, typ.Size())
		}
	}
}
