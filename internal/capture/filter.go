package capture

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
)

// filterFunc is the stub in bpf/include/filter.h that a filter's
// instructions replace.
const filterFunc = "pktstat_filter"

// applyFilter puts f's instructions in place of the filter stub in every
// program of spec that calls it, and turns the call on. A nil f leaves
// spec as it is: filter_on stays false and the verifier drops the call.
func applyFilter(spec *ebpf.CollectionSpec, f *filter.Filter) error {
	if f == nil {
		return nil
	}
	body, err := f.Instructions()
	if err != nil {
		return err
	}
	if err := replaceFunc(spec, body, filterFunc); err != nil {
		return fmt.Errorf("install filter: %w", err)
	}
	v, ok := spec.Variables["filter_on"]
	if !ok {
		return fmt.Errorf("install filter: the object has no filter_on")
	}
	if err := v.Set(true); err != nil {
		return fmt.Errorf("install filter: set filter_on: %w", err)
	}
	return nil
}

// replaceFunc replaces the body of each function named in names, in every
// program of spec that calls it, with body. The function keeps its symbol
// and its BTF func and line metadata on the first instruction, which the
// verifier checks its callers against. A spec in which no program has any
// of them is an error: nothing would change.
func replaceFunc(spec *ebpf.CollectionSpec, body asm.Instructions, names ...string) error {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	found := false
	for _, prog := range spec.Programs {
		insns := prog.Instructions
		for i := 0; i < len(insns); i++ {
			if !want[insns[i].Symbol()] {
				continue
			}
			end := i + 1
			for end < len(insns) && insns[end].Symbol() == "" {
				end++
			}
			repl := make(asm.Instructions, len(body))
			copy(repl, body)
			repl[0] = repl[0].WithMetadata(insns[i].Metadata)
			if btf.FuncMetadata(&repl[0]) == nil {
				return fmt.Errorf("replace %s in %s: the function has no BTF", insns[i].Symbol(), prog.Name)
			}
			insns = append(insns[:i:i], append(repl, insns[end:]...)...)
			i += len(repl) - 1
			found = true
		}
		prog.Instructions = insns
	}
	if !found {
		return fmt.Errorf("no program calls any of %v", names)
	}
	return nil
}
