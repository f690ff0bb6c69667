package kernel

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

func TestBefore(t *testing.T) {
	for _, c := range []struct {
		release      string
		major, minor int
		want         bool
	}{
		{"6.18.44-fc-v657", 5, 9, false},
		{"5.8.0-63-generic", 5, 9, true},
		{"5.9.0", 5, 9, false},
		{"5.10", 5, 9, false},
		{"4.19.0-27-amd64", 5, 7, true},
		{"5.6-rc1", 5, 7, true},
		{"6.6.0", 6, 6, false},
		{"garbage", 5, 9, false},
		{"", 5, 9, false},
	} {
		if got := Before(c.release, c.major, c.minor); got != c.want {
			t.Errorf("Before(%q, %d, %d) = %v, want %v", c.release, c.major, c.minor, got, c.want)
		}
	}
}

func TestRelease(t *testing.T) {
	r, err := Release()
	if err != nil || !strings.Contains(r, ".") {
		t.Fatalf("Release() = %q, %v", r, err)
	}
	// This kernel is not older than itself, and no kernel is older than 0.0.
	if h := Hint("TC mode", 0, 0); h != "" {
		t.Errorf("Hint(0, 0) = %q, want nothing", h)
	}
	if h := Hint("TC mode", 99, 0); h != "; TC mode needs Linux 99.0 or later, and this kernel is "+r {
		t.Errorf("Hint(99, 0) = %q", h)
	}
}

// TestRefusal has the real verifier refuse a program that reads a register
// it never wrote, and checks what the error says: the program, the
// kernel, the verifier's reason, and no capability advice.
func TestRefusal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (CAP_BPF) to have the verifier check a program")
	}
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"reads_r2": {
			Type:         ebpf.SocketFilter,
			License:      "MIT",
			Instructions: asm.Instructions{asm.Mov.Reg(asm.R0, asm.R2), asm.Return()},
		},
	}}
	coll, err := ebpf.NewCollection(spec)
	if err == nil {
		coll.Close()
		t.Fatal("the verifier accepted a read of an uninitialised register")
	}
	r := AsRefusal(err)
	if r == nil {
		t.Fatalf("%v: not seen as a verifier refusal", err)
	}
	release, _ := Release()
	if r.Program != "reads_r2" || r.Release != release {
		t.Errorf("program %q on %q, want reads_r2 on %q", r.Program, r.Release, release)
	}
	msg := r.Error()
	// The verifier's own words vary ("R2 !read_ok"; 7.3 adds "Initialize
	// R2 on every path before this instruction."), but name the register.
	for _, want := range []string{"the verifier of Linux " + release + " refused program reads_r2: ", "R2", "--debug"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "CAP_") || strings.Contains(msg, "MEMLOCK") {
		t.Errorf("%q blames capabilities or a limit for a refusal", msg)
	}
	if tail := r.LogTail(20); len(tail) == 0 || len(tail) > 20 {
		t.Errorf("log tail has %d lines, want 1 to 20", len(tail))
	}
	if !errors.Is(err, unix.EACCES) || !errors.Is(r, unix.EACCES) {
		t.Errorf("the refusal hides the kernel's EACCES: %v", err)
	}
	joined := fmt.Errorf("a: %w; b: %w", r, fmt.Errorf("wrapped: %w", r))
	if got := Refusals(joined); len(got) != 2 || got[0] != r || got[1] != r {
		t.Errorf("Refusals found %v in a tree of two", got)
	}
	if got := Refusals(errors.New("no verifier here")); got != nil {
		t.Errorf("Refusals found %v where there is none", got)
	}
}

// TestMissingHelper reads the verifier's two words for a helper the kernel
// lacks: one it knows, but not for this program type (5.10's tracing
// programs and bpf_sk_storage_get), and one it does not know at all (5.10
// and bpf_sock_from_file, helper 162).
func TestMissingHelper(t *testing.T) {
	for _, c := range []struct{ last, want string }{
		{"unknown func bpf_sk_storage_get#107", "bpf_sk_storage_get"},
		{"invalid func unknown#162", "bpf_sock_from_file"},
		{"R2 !read_ok", ""},
	} {
		r := &Refusal{Program: "p", Release: "5.10.0-32-amd64", Err: &ebpf.VerifierError{Cause: unix.EINVAL, Log: []string{"0: (85) call", c.last, "processed 3 insns"}}}
		if got := r.MissingHelper(); got != c.want {
			t.Errorf("%q: missing helper %q, want %q", c.last, got, c.want)
		}
		if c.want != "" && !strings.Contains(r.Error(), "Linux 5.10.0-32-amd64 has no helper "+c.want+" for program p") {
			t.Errorf("%q: error %q does not name the kernel and the helper", c.last, r.Error())
		}
	}
}
