#!/bin/sh
# Renders docs/tui.png, the README's picture: the live table (-g) in tmux
# during real traffic on a test veth, drawn by charmbracelet/freeze (a Go
# module, fetched by go run). Needs root (namespaces, eBPF) and tmux.
set -eu
cd "$(dirname "$0")/.."
exec go test -tags screenshot -count=1 -run '^TestScreenshot$' -v ./test/e2e/
