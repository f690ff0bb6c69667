package manpage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
)

// render writes the man page of cli.FlagSet and renders it with cmd
// (which gets the file as its last argument), returning the text.
func render(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (Debian packages groff-base, man-db)", name)
	}
	var b bytes.Buffer
	if err := Write(&b, Page{Version: "v1.2.3", Date: "2026-12-07"}, cli.FlagSet()); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "pktstat-bpf.8")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, append(args, p)...)
	cmd.Env = append(os.Environ(), "MANWIDTH=200", "LC_ALL=C.UTF-8")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	return string(out)
}

// check finds every flag of the FlagSet, long and short, in the rendered
// text, each at the start of its item and with its usage text after it.
func check(t *testing.T, text string) {
	t.Helper()
	// Rendered hyphens must be ASCII, or a flag copied from the page fails.
	if strings.ContainsAny(text, "\u2010\u2212") {
		t.Errorf("rendered page has non-ASCII hyphens")
	}
	n := 0
	cli.FlagSet().VisitAll(func(f *pflag.Flag) {
		n++
		_, usage := pflag.UnquoteUsage(f)
		head := "--" + f.Name
		if f.Shorthand != "" {
			head = "-" + f.Shorthand + ", --" + f.Name
		}
		i := strings.Index(text, "\n       "+head)
		if i < 0 {
			t.Errorf("rendered page lacks an item %q", head)
			return
		}
		words := strings.Fields(usage)
		if !strings.Contains(strings.Join(strings.Fields(text[i:]), " "), strings.Join(words[:min(len(words), 5)], " ")) {
			t.Errorf("item %q lacks its usage %q", head, usage)
		}
	})
	if n < 20 {
		t.Errorf("only %d flags", n)
	}
	for _, s := range []string{"PKTSTAT-BPF(8)", "pktstat-bpf v1.2.3", "NAME", "SYNOPSIS", "OPTIONS", "EXIT STATUS"} {
		if !strings.Contains(text, s) {
			t.Errorf("rendered page lacks %q", s)
		}
	}
}

func TestGroff(t *testing.T) {
	check(t, render(t, "groff", "-man", "-Tutf8", "-P-cbou", "-rLL=190n", "-ww"))
}

func TestMan(t *testing.T) {
	check(t, render(t, "man", "-l"))
}
