package capture

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/bpftest"
)

// breakFunc makes the verifier refuse the global function name in every
// program of spec: its first instruction now reads R7, which no caller
// passes.
func breakFunc(t *testing.T, spec *ebpf.CollectionSpec, name string) {
	t.Helper()
	found := false
	for _, prog := range spec.Programs {
		for i := range prog.Instructions {
			ins := &prog.Instructions[i]
			if ins.Symbol() != name {
				continue
			}
			bad := asm.Mov.Reg(asm.R0, asm.R7).WithMetadata(ins.Metadata)
			*ins = btf.WithFuncMetadata(ins.WithSymbol(""), nil)
			prog.Instructions = append(prog.Instructions[:i:i], append(asm.Instructions{bad}, prog.Instructions[i:]...)...)
			found = true
			break
		}
	}
	if !found {
		t.Fatalf("no program has a function %s", name)
	}
}

// TestL7DroppedWhenRefused loads the TC programs with a detector that the
// verifier refuses: the programs must load without it, say so in one
// warning, and still count a DNS query exactly, as a row without an
// application protocol. The same frame through the whole programs is
// found to be DNS.
func TestL7DroppedWhenRefused(t *testing.T) {
	bpftest.RequireRoot(t)
	udp := bpftest.UDP()
	udp.DstPort = 53
	frame := bpftest.Frame(t, bpftest.Eth(layers.EthernetTypeIPv4), bpftest.IPv4(layers.IPProtocolUDP), udp,
		gopacket.Payload(bpftest.DNSQuery(t)))
	for _, c := range []struct {
		name   string
		broken bool
		want   flow.L7
	}{
		{"accepted", false, flow.L7DNS},
		{"refused", true, flow.L7Unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, err := bpfprog.LoadTC()
			if err != nil {
				t.Fatal(err)
			}
			const entries = 64
			flowtable.Size(spec, entries)
			if c.broken {
				// The warning checked below proves that the verifier refused it.
				breakFunc(t, spec, "pktstat_l7_skb")
			}
			var logged bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logged, nil))
			var objs bpfprog.TCObjects
			if err := loadDegrading(spec, []extra{l7Detection}, log, func(s *ebpf.CollectionSpec) error {
				return s.LoadAndAssign(&objs, nil)
			}); err != nil {
				t.Fatal(err)
			}
			defer objs.Close()
			warned := strings.Contains(logged.String(), "level=WARN") && strings.Contains(logged.String(), l7Detection.lost) &&
				strings.Contains(logged.String(), "refused program pktstat_")
			if warned != c.broken {
				t.Errorf("warning logged: %v, want %v; log: %s", warned, c.broken, logged.String())
			}
			if n := strings.Count(logged.String(), "\n"); c.broken && n != 1 {
				t.Errorf("%d log lines, want one warning: %s", n, logged.String())
			}
			h := hookUnderTest{
				tb:   newTestTable(t, flowtable.Maps{Slot: objs.FlowTables, Flows: objs.Flows, Untracked: objs.Untracked, HLL: objs.UntrackedHll, Gen: objs.UntrackedGen, Rows: objs.ArrayRows, Cache: objs.FlowCache}, flowtable.KeyFromBPF),
				pass: tcPass(),
			}
			row := runOne(t, h, hookProg{"pktstat_ingress", objs.PktstatIngress, flow.In}, frame)
			if row.L7 != c.want {
				t.Errorf("l7 %v, want %v", row.L7, c.want)
			}
		})
	}
}
