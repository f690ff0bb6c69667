package capture

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/pktstat-bpf/pktstat-bpf/internal/bpfprog"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
	"github.com/pktstat-bpf/pktstat-bpf/internal/flowtable"
	"github.com/pktstat-bpf/pktstat-bpf/internal/pipeline"
	"github.com/pktstat-bpf/pktstat-bpf/internal/tui"
)

// tableSource drains a flowtable.Table as a capture session does.
type tableSource struct {
	tb *flowtable.Table[bpfprog.FlowKey]
}

func (s tableSource) Drain() (flow.Snapshot, error) { return s.tb.Drain(nil) }

// BenchmarkTUIRefresh100k measures a whole refresh of the live table at
// 100,000 flows, the kernel included: the drain of a kernel flow table of
// 100,000 rows (default size) through the pipeline, the tracker's update,
// and the drawing of an 80x24 screen sorted by bitrate, in each layout.
// The table is filled again, untimed, before each refresh. Target: 50 ms.
//
//	go test -run '^$' -bench TUIRefresh100k -benchtime 10x ./internal/capture/
func BenchmarkTUIRefresh100k(b *testing.B) {
	const n = 100_000
	for _, l := range layouts {
		b.Run(l.String(), func(b *testing.B) {
			h := loadHook(b, tcHook, testLoad{layout: l})
			pipe := pipeline.New(tableSource{h.tb}, nil)
			m := tui.NewModel(pipe, tui.Options{Iface: "pa1", Mode: "tc/tcx", Start: time.Now(), Refresh: time.Nanosecond, MaxEntries: 131072})
			m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
			next := m.Init()
			var took time.Duration
			var filler tableFiller
			for i := range b.N {
				b.StopTimer()
				filler.fill(b, h.tb, n)
				b.StartTimer()
				t0 := time.Now()
				_, next = m.Update(next())
				view := m.View()
				took += time.Since(t0)
				if i == 0 && !strings.Contains(view, "flows 100000 shown") {
					b.Fatalf("the header does not show 100000 flows:\n%s", view)
				}
			}
			b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "ms/refresh")
		})
	}
}
