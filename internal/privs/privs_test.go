package privs

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

func TestSet(t *testing.T) {
	s := Of(CapNetAdmin, CapBPF)
	if !s.Has(CapBPF) || !s.Has(CapNetAdmin) || s.Has(CapPerfmon) || s != 1<<12|1<<39 {
		t.Errorf("Of(CAP_NET_ADMIN, CAP_BPF) = %#x", uint64(s))
	}
	if got := s.String(); got != "CAP_NET_ADMIN CAP_BPF" {
		t.Errorf("String() = %q", got)
	}
	if got := Set(0).String(); got != "none" {
		t.Errorf("String() of the empty set = %q", got)
	}
}

// TestDrop runs Drop in a child process (the test would lose its own
// capabilities otherwise) that keeps CAP_NET_ADMIN, and reads what the
// kernel says the child has left in /proc/self/status: CAP_NET_ADMIN
// alone in every set but the ambient one, which is empty, and
// no_new_privs.
func TestDrop(t *testing.T) {
	if os.Getenv("PKTSTAT_PRIVS_CHILD") != "" {
		r, err := Drop(Of(CapNetAdmin))
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error())
			os.Exit(1)
		}
		st, err := Status(0)
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error())
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(map[string]any{"bounding": r.Bounding, "status": st})
		os.Exit(0)
	}
	eff, err := Effective()
	if err != nil {
		t.Fatal(err)
	}
	if !eff.Has(CapNetAdmin) {
		t.Skip("skipped: needs CAP_NET_ADMIN to see it kept (run as root)")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestDrop$")
	cmd.Env = append(os.Environ(), "PKTSTAT_PRIVS_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	var child struct {
		Bounding bool
		Status   map[string]uint64
	}
	if err := json.Unmarshal(out, &child); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	st := child.Status
	want := uint64(Of(CapNetAdmin))
	for _, k := range []string{"CapEff", "CapPrm"} {
		if st[k] != want {
			t.Errorf("%s = %#x, want %#x (CAP_NET_ADMIN)", k, st[k], want)
		}
	}
	if st["CapAmb"] != 0 || st["CapInh"] != 0 || st["NoNewPrivs"] != 1 {
		t.Errorf("CapAmb %#x, CapInh %#x, NoNewPrivs %d; want 0, 0, 1", st["CapAmb"], st["CapInh"], st["NoNewPrivs"])
	}
	if child.Bounding && st["CapBnd"] != want {
		t.Errorf("CapBnd = %#x after clearing it, want %#x", st["CapBnd"], want)
	}
}
