package app

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/netif"
	"github.com/pktstat-bpf/pktstat-bpf/internal/tui"
)

// runTUI shows the live table (-g) on the terminal until the user quits or
// ctx ends; there is no report at the end. Counting began at begin.
func runTUI(ctx context.Context, cfg cli.Config, ifc netif.Interface, mode string, pipe tui.Pipe, begin time.Time, out io.Writer) error {
	o := tui.Options{
		Iface:      ifc.Name,
		Mode:       mode,
		Start:      begin,
		Refresh:    cfg.Refresh,
		Expire:     cfg.Expire,
		MaxEntries: cfg.MaxEntries,
		// Twice the kernel table: room for the flows of a full table and
		// for as many that have gone quiet.
		MaxFlows: 2 * int(cfg.MaxEntries),
		Owners:   cfg.Mode == cli.ModeCgroup || cfg.Mode == cli.ModeProcess,
		GroupBy:  cfg.GroupBy,
		In:       os.Stdin,
		Out:      out,
	}
	if cfg.Mode == cli.ModeCgroup {
		o.Iface = "all (cgroup " + cfg.Cgroup + ")"
	}
	if cfg.Mode == cli.ModeProcess {
		o.Iface = "all (every process)"
	}
	return tui.Run(ctx, pipe, o)
}

// checkTerminal refuses -g without a terminal, before anything is attached.
func checkTerminal(cfg cli.Config, out io.Writer) error {
	if cfg.TUI && (!isTerminal(os.Stdin) || !isTerminal(out)) {
		return errors.New("-g (--tui) needs a terminal on standard input and output; without one, leave out -g to get a report")
	}
	return nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
