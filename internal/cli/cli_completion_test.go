package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestCompletionFlag(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		cfg, err := Parse([]string{"--completion", sh}, &bytes.Buffer{})
		if err != nil || cfg.Completion != sh {
			t.Errorf("--completion %s: %+v, %v", sh, cfg.Completion, err)
		}
	}
	_, err := Parse([]string{"--completion", "tcsh"}, &bytes.Buffer{})
	if !IsUsage(err) || !strings.Contains(err.Error(), `invalid --completion "tcsh"`) {
		t.Errorf("--completion tcsh: %v, want a usage error", err)
	}
}

// TestFlagSetIsHelp: FlagSet, which the man page and the completions are
// generated from, holds exactly the flags that --help lists.
func TestFlagSetIsHelp(t *testing.T) {
	var help bytes.Buffer
	if _, err := Parse([]string{"--help"}, &help); err != nil {
		t.Fatal(err)
	}
	n := 0
	FlagSet().VisitAll(func(f *pflag.Flag) {
		n++
		if !strings.Contains(help.String(), "--"+f.Name+" ") && !strings.Contains(help.String(), "--"+f.Name+"\n") {
			t.Errorf("--help lacks --%s", f.Name)
		}
	})
	// And the other way: every flag line of --help is in the FlagSet
	// (a flag defined after FlagSet's hook in parse would not be).
	fs := FlagSet()
	lines := regexp.MustCompile(`(?m)^\s+(?:-\S, )?--([^\s=]+)`).FindAllStringSubmatch(help.String(), -1)
	if len(lines) != n {
		t.Errorf("--help has %d flag lines, FlagSet %d flags", len(lines), n)
	}
	for _, m := range lines {
		if fs.Lookup(m[1]) == nil {
			t.Errorf("--help lists --%s, FlagSet lacks it", m[1])
		}
	}
	if n < 29 {
		t.Errorf("FlagSet has only %d flags", n)
	}
}
