package app

import (
	"log/slog"

	"github.com/pktstat-bpf/pktstat-bpf/internal/capture"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
)

// startProcess starts process mode (-k) and logs which backend carries it
// and why the ones tried before it could not.
func startProcess(cfg cli.Config, log *slog.Logger) (Source, error) {
	p, err := capture.StartProcess(capture.ProcessOptions{
		Backend:    capture.ProcessBackend(cfg.ProcessBackend),
		MaxEntries: cfg.MaxEntries,
		Log:        log,
		Filter:     cfg.Filter,
	})
	if err != nil {
		return nil, err
	}
	var tried []string
	for _, t := range p.Tried() {
		tried = append(tried, string(t.Backend))
	}
	log.Info("process backend", "backend", string(p.Backend()), "requested", string(cfg.ProcessBackend), "tried", tried)
	return p, nil
}
