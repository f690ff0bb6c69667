package owners

import "testing"

// TestCleanComm: a process names itself anything; the name that reaches a
// one-line report has no control characters.
func TestCleanComm(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":          "nginx",
		"evil\nrow: 1":   "evil?row: 1",
		"\x1b[2Jclear":   "?[2Jclear",
		"tab\there\x7f":  "tab?here?",
		"ünïcode-worker": "ünïcode-worker",
		"":               "",
	} {
		if got := cleanComm([]byte(in)); got != want {
			t.Errorf("cleanComm(%q) = %q, want %q", in, got, want)
		}
	}
}
