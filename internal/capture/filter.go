package capture

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/pktstat-bpf/pktstat-bpf/internal/filter"
)

// filterFunc is the stub in bpf/include/filter.h that a filter's
// instructions replace.
const filterFunc = "pktstat_filter"

// applyFilter puts f's instructions in place of every call of the filter
// stub in every program of spec, and turns the test on. A nil f leaves
// spec as it is: filter_on stays false and the verifier drops the call.
func applyFilter(spec *ebpf.CollectionSpec, f *filter.Filter) error {
	if f == nil {
		return nil
	}
	body, err := f.Instructions()
	if err != nil {
		return err
	}
	if err := inlineFunc(spec, body, filterFunc); err != nil {
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

// inlineFunc puts body in place of every call of the function name, in
// every program of spec, and takes the function out. body is a function's
// body as replaceFunc takes it (R1 the argument, R0 the result, only R0 to
// R5 written, one slot per instruction, jumps forward and within it): each
// of its exits becomes a jump to what follows the call. A call costs more
// than a short filter (a return goes through the kernel's return thunk on
// CPUs that need one), and the verifier walks the same instructions
// either way. The program's own jumps are moved to span the longer code.
func inlineFunc(spec *ebpf.CollectionSpec, body asm.Instructions, name string) error {
	for _, ins := range body {
		if ins.Size() != asm.InstructionSize || ins.IsFunctionCall() || ins.Reference() != "" {
			return fmt.Errorf("inline %s: the body must be plain one-slot instructions: %v", name, ins)
		}
	}
	found := false
	for _, prog := range spec.Programs {
		out, n, err := inlineCalls(prog.Instructions, body, name)
		if err != nil {
			return fmt.Errorf("inline %s in %s: %w", name, prog.Name, err)
		}
		if n > 0 {
			prog.Instructions = out
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no program calls %s", name)
	}
	return nil
}

// isJump reports whether ins is a jump within its function that the
// inliner must move: a conditional or unconditional jump by offset, not a
// call or an exit.
func isJump(ins asm.Instruction) bool {
	if !ins.OpCode.Class().IsJump() {
		return false
	}
	switch ins.OpCode.JumpOp() {
	case asm.Call, asm.Exit, asm.InvalidJumpOp:
		return false
	}
	return true
}

// inlineCalls returns insns with body in place of each call of name and
// name's own instructions left out, and how many calls it replaced.
func inlineCalls(insns asm.Instructions, body asm.Instructions, name string) (asm.Instructions, int, error) {
	// Where each instruction starts, in slots, before and after.
	oldAt := make([]int, len(insns)+1)
	for i, ins := range insns {
		oldAt[i+1] = oldAt[i] + int(ins.Size()/asm.InstructionSize)
	}
	inFunc := make([]bool, len(insns))
	calls := 0
	for i := 0; i < len(insns); i++ {
		if insns[i].Symbol() != name {
			continue
		}
		for j := i; j < len(insns) && (j == i || insns[j].Symbol() == ""); j++ {
			inFunc[j] = true
		}
	}
	newAt := map[int]int{} // old slot -> new slot, for every kept instruction
	var out asm.Instructions
	slot := 0
	type moved struct{ out, oldSrc int }
	var jumps []moved
	for i, ins := range insns {
		if inFunc[i] {
			continue
		}
		newAt[oldAt[i]] = slot
		if ins.IsFunctionCall() && ins.Reference() == name {
			calls++
			for j, b := range body {
				if b.OpCode.JumpOp() == asm.Exit {
					b = asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Ja), Offset: int16(len(body) - 1 - j)}
				}
				if j == 0 {
					b = b.WithSource(ins.Source()) // the call's line
				}
				out = append(out, b)
			}
			slot += len(body)
			continue
		}
		if isJump(ins) && ins.OpCode.Class() == asm.Jump32Class && ins.OpCode.JumpOp() == asm.Ja {
			return nil, 0, errors.New("a gotol (32-bit Ja) in the program: its offset is not moved")
		}
		if isJump(ins) && ins.Reference() == "" {
			jumps = append(jumps, moved{len(out), oldAt[i]})
		}
		out = append(out, ins)
		slot += int(ins.Size() / asm.InstructionSize)
	}
	newAt[oldAt[len(insns)]] = slot
	if calls == 0 {
		return insns, 0, nil
	}
	// Each jump kept goes where its target went.
	outAt := make([]int, len(out))
	for i, s := 1, 0; i < len(out); i++ {
		s += int(out[i-1].Size() / asm.InstructionSize)
		outAt[i] = s
	}
	for _, j := range jumps {
		ins := &out[j.out]
		target, ok := newAt[j.oldSrc+1+int(ins.Offset)]
		if !ok {
			return nil, 0, fmt.Errorf("a jump at slot %d lands inside %s or an instruction", j.oldSrc, name)
		}
		off := target - outAt[j.out] - 1
		if off < -1<<15 || off >= 1<<15 {
			return nil, 0, fmt.Errorf("a jump at slot %d does not reach its target once %s is inlined", j.oldSrc, name)
		}
		ins.Offset = int16(off)
	}
	return out, calls, nil
}
