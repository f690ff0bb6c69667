// Package completion writes bash, zsh and fish completion scripts for the
// flags of cli.FlagSet, so that every flag, including one added later,
// completes without an edit here. What a flag's value completes to is
// decided by valueOf: interface names for -i, directories for -c, the
// accepted words for the flags that take one of a few, files for string
// flags named for a file, and nothing for numbers, durations and addresses.
package completion

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Kind is what a flag's value completes to.
type Kind int

// The kinds of values.
const (
	None   Kind = iota // a bool flag: no value
	Free               // a number, a duration, an address: nothing to offer
	Words              // one of Value.Words
	Ifaces             // network interface names and "any", comma-separated
	Dirs               // a directory (a cgroup v2 directory)
	Files              // a file
	Users              // a user name
)

// Value says how one flag's value completes.
type Value struct {
	Kind  Kind
	Words []string // with Words
	List  bool     // a comma-separated list of Words
}

// valueOf is how f's value completes. The word lists are the values
// cli.Parse accepts (held to it by a test).
func valueOf(f *pflag.Flag) Value {
	switch f.Name {
	case "iface":
		return Value{Kind: Ifaces}
	case "cgroup":
		return Value{Kind: Dirs}
	case "user":
		return Value{Kind: Users}
	case "tc-attach":
		return Value{Kind: Words, Words: []string{"auto", "tcx", "legacy"}}
	case "xdp_mode":
		return Value{Kind: Words, Words: []string{"auto", "best", "generic", "native", "driver", "offload", "hardware"}}
	case "process-backend":
		return Value{Kind: Words, Words: []string{"auto", "tracepoint", "fentry", "kprobe"}}
	case "output":
		return Value{Kind: Words, Words: []string{"plain", "json"}}
	case "completion":
		return Value{Kind: Words, Words: []string{"bash", "zsh", "fish"}}
	case "group-by":
		return Value{Kind: Words, List: true, Words: []string{"src", "dst", "sport", "dport", "proto", "dir", "iface", "vlan", "app", "pid", "comm", "cgroup"}}
	}
	switch {
	case f.Value.Type() == "bool":
		return Value{Kind: None}
	case strings.HasPrefix(f.Value.Type(), "string") && (strings.Contains(f.Name, "file") || strings.Contains(f.Name, "read")):
		return Value{Kind: Files}
	}
	// Numbers, durations, addresses.
	return Value{Kind: Free}
}

// Flags returns the flags of fs that users see, in definition order.
func Flags(fs *pflag.FlagSet) []*pflag.Flag {
	var out []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Deprecated == "" {
			out = append(out, f)
		}
	})
	return out
}

// Write writes the completion script of shell for the flags of fs.
func Write(w io.Writer, shell string, fs *pflag.FlagSet) error {
	var s string
	switch shell {
	case "bash":
		s = bash(Flags(fs))
	case "zsh":
		s = zsh(Flags(fs))
	case "fish":
		s = fish(Flags(fs))
	default:
		return fmt.Errorf("no completion for shell %q", shell)
	}
	if _, err := io.WriteString(w, s); err != nil {
		return fmt.Errorf("write %s completion: %w", shell, err)
	}
	return nil
}

// names returns the ways to write f on a command line: "-i" and "--iface".
func names(f *pflag.Flag) []string {
	n := []string{"--" + f.Name}
	if f.Shorthand != "" {
		n = append([]string{"-" + f.Shorthand}, n...)
	}
	return n
}

// summary is the first clause of f's usage, for the shells that show one.
func summary(f *pflag.Flag) string {
	u := f.Usage
	if i := strings.IndexAny(u, ";("); i > 0 {
		u = u[:i]
	}
	u = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(u), ","))
	if len(u) > 70 {
		u = u[:67] + "..."
	}
	return u
}
