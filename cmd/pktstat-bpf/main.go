// Command pktstat-bpf shows per-flow traffic statistics counted by eBPF
// programs in the kernel.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pktstat-bpf/pktstat-bpf/internal/app"
	"github.com/pktstat-bpf/pktstat-bpf/internal/buildinfo"
	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
	"github.com/pktstat-bpf/pktstat-bpf/internal/completion"
	"github.com/pktstat-bpf/pktstat-bpf/internal/kernel"
)

// verifierLogLines is how much of a refusing verifier's log --debug prints.
const verifierLogLines = 20

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit code: 0 on success (a signal is a normal end), 1 on
// an error, 2 on a usage error. Errors are printed here, once, as one line.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := cli.Parse(args, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "pktstat-bpf: %v (see --help)\n", err)
		return 2
	}
	switch {
	case cfg.Help:
		return 0
	case cfg.Version:
		fmt.Fprintln(stdout, buildinfo.Read())
		return 0
	case cfg.Completion != "":
		if err := completion.Write(stdout, cfg.Completion, cli.FlagSet()); err != nil {
			fmt.Fprintf(stderr, "pktstat-bpf: %v\n", err)
			return 1
		}
		return 0
	}

	// A closed terminal (SIGHUP) and SIGQUIT end a run as SIGTERM does:
	// the report, then nothing left attached.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer stop()
	// With SIGPIPE caught, a write to a reader that has gone fails with
	// EPIPE instead of killing the process with its programs attached;
	// app.Run then detaches and ends quietly.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	level := slog.LevelInfo
	if cfg.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := app.Run(ctx, cfg, stdout, log); err != nil {
		if cfg.Debug {
			for _, r := range kernel.Refusals(err) {
				fmt.Fprintf(stderr, "the end of the verifier's log for %s:\n", r.Program)
				for _, l := range r.LogTail(verifierLogLines) {
					fmt.Fprintf(stderr, "  %s\n", l)
				}
			}
		}
		// One line, even for errors joined together.
		fmt.Fprintf(stderr, "pktstat-bpf: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		if cli.IsUsage(err) {
			return 2
		}
		return 1
	}
	return 0
}
