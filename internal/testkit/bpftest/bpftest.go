// Package bpftest runs the real eBPF programs through BPF_PROG_TEST_RUN:
// it loads a collection with a chosen flow-table size, runs crafted frames
// through a program, builds those frames with gopacket and derives the flow
// key a frame must produce from gopacket's decoding of the same bytes.
//
// Nothing here knows which hook a program belongs to: every helper takes the
// *ebpf.Program and the flows/untracked maps, so the TC and XDP programs are
// checked against the same frames and the same oracle.
package bpftest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/rlimit"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// FlowsMap is the name of the flow table in every pktstat object
// (bpf/include/account.h), whose max_entries Load sets.
const FlowsMap = "flows"

// FlowTablesMap is the slot that points the programs at the active flow table.
const FlowTablesMap = "flow_tables"

// capabilities a test needs to load and run networking eBPF programs.
var neededCaps = []struct {
	c    int
	name string
}{
	{unix.CAP_BPF, "CAP_BPF"},
	{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"},
	{unix.CAP_PERFMON, "CAP_PERFMON"},
}

// RequireRoot skips the test, naming what is missing, unless the process
// holds the capabilities that loading and test-running TC and XDP programs
// need (root has them all).
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if missing := missingCaps(); len(missing) > 0 {
		tb.Skipf("needs root: loading and running eBPF programs needs %s, which this process lacks",
			strings.Join(missing, ", "))
	}
	removeMemlock(tb)
}

// removeMemlock lifts RLIMIT_MEMLOCK where the kernel charges eBPF maps to
// it (before 5.11), as the tool itself does at start-up.
func removeMemlock(tb testing.TB) {
	tb.Helper()
	if err := rlimit.RemoveMemlock(); err != nil {
		tb.Fatalf("lift RLIMIT_MEMLOCK for the eBPF maps: %v", err)
	}
}

// missingCaps lists the needed capabilities absent from the effective set.
func missingCaps() []string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return []string{fmt.Sprintf("capabilities (capget: %v)", err)}
	}
	var missing []string
	for _, n := range neededCaps {
		if data[n.c/32].Effective&(1<<(uint(n.c)%32)) == 0 {
			missing = append(missing, n.name)
		}
	}
	return missing
}

// Load loads spec with its flow table sized to maxEntries into objs (a
// bpf2go objects struct such as *bpfprog.TCObjects) and closes it when the
// test ends. The spec itself is left unchanged.
func Load(tb testing.TB, spec *ebpf.CollectionSpec, maxEntries uint32, objs interface{ Close() error }) {
	tb.Helper()
	spec = spec.Copy()
	m, ok := spec.Maps[FlowsMap]
	if !ok {
		tb.Fatalf("collection has no %q map", FlowsMap)
	}
	m.MaxEntries = maxEntries
	// The slot of the double-buffered table takes only tables like its template.
	if slot, ok := spec.Maps[FlowTablesMap]; ok {
		slot.InnerMap.MaxEntries = maxEntries
	}
	if err := spec.LoadAndAssign(objs, nil); err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			tb.Skipf("kernel lacks a feature the programs need: %v", err)
		}
		// %+v prints the verifier log of a rejected program.
		tb.Fatalf("load eBPF objects: %+v", err)
	}
	tb.Cleanup(func() {
		if err := objs.Close(); err != nil {
			tb.Errorf("close eBPF objects: %v", err)
		}
	})
}

// Run runs frame once through prog with BPF_PROG_TEST_RUN and returns the
// program's return code. ctx is the program's context (e.g. *SkBuff for TC
// programs) or nil.
func Run(tb testing.TB, prog *ebpf.Program, frame []byte, ctx any) uint32 {
	tb.Helper()
	opts := &ebpf.RunOptions{Data: frame}
	if ctx != nil {
		opts.Context = ctx
	}
	ret, err := prog.Run(opts)
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			tb.Skipf("kernel cannot test-run %s programs: %v", prog.Type(), err)
		}
		tb.Fatalf("run %v: %v", prog, err)
	}
	return ret
}

// EmptyProgram loads a program of type typ that only returns ret: the
// baseline that BPF_PROG_TEST_RUN costs by itself.
func EmptyProgram(tb testing.TB, typ ebpf.ProgramType, ret int32) *ebpf.Program {
	tb.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "empty",
		Type: typ,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, ret),
			asm.Return(),
		},
		License: "Dual MIT/GPL",
	})
	if err != nil {
		tb.Fatalf("load empty %s program: %v", typ, err)
	}
	tb.Cleanup(func() { prog.Close() })
	return prog
}

// ProgramID returns the kernel's ID of prog.
func ProgramID(tb testing.TB, prog *ebpf.Program) ebpf.ProgramID {
	tb.Helper()
	info, err := prog.Info()
	if err != nil {
		tb.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		tb.Fatal("the kernel gave no program ID")
	}
	return id
}

// BenchmarkMedians runs frame through each of progs repeat times, runs
// times over, taking turns so that every program sees the same machine
// state, and returns per program the median of the kernel-measured time per
// run and the program's return code.
func BenchmarkMedians(frame []byte, repeat, runs int, progs ...*ebpf.Program) ([]time.Duration, []uint32, error) {
	if runs < 1 {
		return nil, nil, fmt.Errorf("benchmark: runs must be positive, got %d", runs)
	}
	per := make([][]time.Duration, len(progs))
	rets := make([]uint32, len(progs))
	for range runs {
		for i, prog := range progs {
			ret, d, err := prog.Benchmark(frame, repeat, nil)
			if err != nil {
				return nil, nil, fmt.Errorf("benchmark %v: %w", prog, err)
			}
			rets[i] = ret
			per[i] = append(per[i], d)
		}
	}
	medians := make([]time.Duration, len(progs))
	for i, ds := range per {
		slices.Sort(ds)
		medians[i] = ds[len(ds)/2]
	}
	return medians, rets, nil
}

// CounterProgram loads a program of type typ that does the least a flow
// counter can: it looks up one fixed 48-byte key (a flow key's size) in
// a hash map of typ mapType (ebpf.Hash or ebpf.PerCPUHash), adds 1 packet
// and 60 bytes to the value, with atomic adds in a shared hash, and
// returns ret. It is the floor under the flow table's per-packet cost;
// the returned map holds the counts, as two uint64 per CPU (one value in
// a shared hash).
func CounterProgram(tb testing.TB, typ ebpf.ProgramType, ret int32, mapType ebpf.MapType) (*ebpf.Program, *ebpf.Map) {
	tb.Helper()
	const keySize = 48
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "counter", Type: mapType, KeySize: keySize, ValueSize: 16, MaxEntries: 1})
	if err != nil {
		tb.Fatalf("create %s counter map: %v", mapType, err)
	}
	tb.Cleanup(func() { m.Close() })
	var zero any = [2]uint64{}
	if mapType == ebpf.PerCPUHash {
		ncpu, err := ebpf.PossibleCPU()
		if err != nil {
			tb.Fatal(err)
		}
		zero = make([][2]uint64, ncpu)
	}
	if err := m.Put(make([]byte, keySize), zero); err != nil {
		tb.Fatalf("seed counter map: %v", err)
	}
	// The key: 48 zero bytes below the frame pointer.
	insns := asm.Instructions{asm.Mov.Imm(asm.R1, 0)}
	for off := int16(-48); off < 0; off += 8 {
		insns = append(insns, asm.StoreMem(asm.RFP, off, asm.R1, asm.DWord))
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -48),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.Mov.Imm(asm.R2, 60),
	)
	if mapType == ebpf.PerCPUHash {
		insns = append(insns,
			asm.LoadMem(asm.R3, asm.R0, 0, asm.DWord),
			asm.Add.Reg(asm.R3, asm.R1),
			asm.StoreMem(asm.R0, 0, asm.R3, asm.DWord),
			asm.LoadMem(asm.R3, asm.R0, 8, asm.DWord),
			asm.Add.Reg(asm.R3, asm.R2),
			asm.StoreMem(asm.R0, 8, asm.R3, asm.DWord),
		)
	} else {
		insns = append(insns,
			asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
			asm.AddAtomic.Mem(asm.R0, asm.R2, asm.DWord, 8),
		)
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R0, ret).WithSymbol("out"),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "counter", Type: typ, Instructions: insns, License: "Dual MIT/GPL"})
	if err != nil {
		tb.Fatalf("load %s counter program: %v", mapType, err)
	}
	tb.Cleanup(func() { prog.Close() })
	return prog, m
}
