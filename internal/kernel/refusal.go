package kernel

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
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
	if h := r.MissingHelper(); h != "" {
		return fmt.Sprintf("Linux %s has no helper %s for %s, which needs it (the verifier: %s)", release, h, prog, r.lastWord())
	}
	return fmt.Sprintf("the verifier of Linux %s refused %s: %s (--debug prints its log)", release, prog, r.lastWord())
}

// missingHelperRE matches the verifier's word for a helper call it does
// not know: "unknown func NAME#ID" where the kernel knows the helper but
// not for this program type, "invalid func unknown#ID" where it does not
// know the helper at all.
var missingHelperRE = regexp.MustCompile(`^(?:unknown|invalid) func (\S+)#(\d+)$`)

// MissingHelper names the helper that the kernel lacks (for this program
// type), when that is why the verifier refused, and is "" otherwise: a
// feature the kernel does not have, rather than code it cannot prove safe.
func (r *Refusal) MissingHelper() string {
	m := missingHelperRE.FindStringSubmatch(r.lastWord())
	if m == nil {
		return ""
	}
	if m[1] != "unknown" {
		return m[1]
	}
	id, err := strconv.ParseUint(m[2], 10, 32)
	if err != nil {
		return "helper #" + m[2]
	}
	fn, err := asm.BuiltinFuncForPlatform("linux", uint32(id))
	if err != nil {
		return "helper #" + m[2]
	}
	return helperName(fn)
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

// helperName turns asm's name of a helper (FnSockFromFile) into the
// kernel's (bpf_sock_from_file).
func helperName(fn asm.BuiltinFunc) string {
	var b strings.Builder
	b.WriteString("bpf")
	for _, c := range strings.TrimPrefix(fn.String(), "Fn") {
		if unicode.IsUpper(c) {
			b.WriteByte('_')
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
