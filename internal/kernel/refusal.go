package kernel

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// Refusal is the verifier's refusal of one program: what the kernel said,
// not a missing capability. Its message names the program and the kernel,
// and ends with the verifier's last word; LogTail gives more of its log.
type Refusal struct {
	Program string // "" when the loader's error did not name it
	Release string // the running kernel's release
	Err     *ebpf.VerifierError
	wrapped error
}

// programName finds the program that cilium/ebpf names when it wraps a
// load error: "program NAME: ...".
var programName = regexp.MustCompile(`(?:^|: )program ([A-Za-z0-9_]+): `)

// AsRefusal returns err as a *Refusal when a verifier refused a program
// somewhere in its chain, and nil otherwise.
func AsRefusal(err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return nil
	}
	r = &Refusal{Err: ve, wrapped: err}
	if m := programName.FindStringSubmatch(err.Error()); m != nil {
		r.Program = m[1]
	}
	r.Release, _ = Release()
	return r
}

func (r *Refusal) Error() string {
	prog := "a program"
	if r.Program != "" {
		prog = "program " + r.Program
	}
	release := r.Release
	if release == "" {
		release = "(release unknown)"
	}
	return fmt.Sprintf("the verifier of Linux %s refused %s: %s (--debug prints its log)", release, prog, r.lastWord())
}

// Unwrap gives the loader's own error, so that errors.Is still finds the
// errno behind it.
func (r *Refusal) Unwrap() error {
	if r.wrapped != nil {
		return r.wrapped
	}
	return r.Err
}

// lastWord is the line of the verifier's log that says why, without the
// instruction-count summary it ends with.
func (r *Refusal) lastWord() string {
	for _, l := range slices.Backward(r.Err.Log) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "processed ") || strings.HasPrefix(l, "verification time") ||
			strings.HasPrefix(l, "stack depth") {
			continue
		}
		return l
	}
	return r.Err.Cause.Error()
}

// LogTail returns the last n lines of the verifier's log.
func (r *Refusal) LogTail(n int) []string {
	log := r.Err.Log
	if len(log) > n {
		log = log[len(log)-n:]
	}
	return log
}

// Refusals returns every verifier refusal in err's tree, in order: a mode
// that tried several ways to load may have met more than one.
func Refusals(err error) []*Refusal {
	switch e := err.(type) {
	case nil:
		return nil
	case *Refusal:
		return []*Refusal{e}
	case *ebpf.VerifierError:
		return []*Refusal{AsRefusal(e)}
	case interface{ Unwrap() []error }:
		var out []*Refusal
		for _, u := range e.Unwrap() {
			out = append(out, Refusals(u)...)
		}
		return out
	case interface{ Unwrap() error }:
		return Refusals(e.Unwrap())
	}
	return nil
}
