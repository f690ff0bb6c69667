package untrusted

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileNames are names that users have put on cgroups, processes and
// interfaces to attack a terminal or a scrape.
var hostileNames = map[string]string{
	"ev\x1b[31mRED\x1b[0m\x1b]0;pwned\a\rFAKE": `ev\x1b[31mRED\x1b[0m\x1b]0;pwned\x07\x0dFAKE`,
	"x\xffy":              `x\xffy`,
	"a\u0085b\u009bc":     `a\u0085b\u009bc`,
	"safe\u202egpj.exe":   `safe\u202egpj.exe`,
	"zero\u200bwidth":     `zero\u200bwidth`,
	"tag\U000E0001":       `tag\U000e0001`,
	"del\x7f":             `del\x7f`,
	"tab\there":           `tab\x09here`,
	"café/naïve 日本":       "café/naïve 日本",
	`dev-disk-by\x2duuid`: `dev-disk-by\x2duuid`,
}

func TestVisible(t *testing.T) {
	for in, want := range hostileNames {
		if got := Visible(in); got != want {
			t.Errorf("Visible(%q) = %q, want %q", in, got, want)
		}
		if Clean(in) != (in == want) {
			t.Errorf("Clean(%q) = %v", in, Clean(in))
		}
	}
}

func TestField(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"nginx", "nginx"},
		{"/sys/fs/cgroup/system.slice/nginx.service", "/sys/fs/cgroup/system.slice/nginx.service"},
		{"x, cgroup: /a", `"x, cgroup: /a"`},
		{"a: b", `"a: b"`},
		{`say "hi"`, `"say \"hi\""`},
		{"ev\x1b[31m", `"ev\x1b[31m"`},
		{"x\xffy", `"x\xffy"`},
		{"rtl\u202e", `"rtl\u202e"`},
		{"a,b:c", "a,b:c"},
	} {
		if got := Field(c.in); got != c.want {
			t.Errorf("Field(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestEscapeJSON(t *testing.T) {
	for in := range hostileNames {
		doc, err := json.Marshal(map[string]string{"comm": in})
		if err != nil {
			t.Fatal(err)
		}
		out := EscapeJSON(doc)
		checkNoRaw(t, string(out))
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if utf8.ValidString(in) && back["comm"] != in {
			t.Errorf("%q came back as %q", in, back["comm"])
		}
	}
}

// checkNoRaw fails unless s is valid UTF-8 without a hostile character.
func checkNoRaw(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%q is not valid UTF-8", s)
	}
	for _, r := range s {
		if hostile(r) && r != '\n' {
			t.Errorf("%q holds a raw %U", s, r)
		}
	}
}

// FuzzUntrusted: whatever the input, Visible's output holds nothing
// hostile and is the input itself when that was clean; Field's output
// holds nothing hostile and gives the input back; a JSON document with
// the input, escaped, holds nothing hostile and decodes to the input
// (when it is UTF-8; JSON cannot carry other bytes).
func FuzzUntrusted(f *testing.F) {
	for in := range hostileNames {
		f.Add(in)
	}
	f.Add("")
	f.Add(`"quoted", with: separators`)
	f.Fuzz(func(t *testing.T, in string) {
		v := Visible(in)
		checkNoRaw(t, v)
		if Clean(in) && v != in {
			t.Errorf("Visible changed the clean %q into %q", in, v)
		}
		fld := Field(in)
		checkNoRaw(t, fld)
		if fld != in {
			back, err := strconv.Unquote(fld)
			if err != nil || back != in {
				t.Errorf("Field(%q) = %s, which unquotes to %q (%v)", in, fld, back, err)
			}
		} else if strings.Contains(in, ", ") || strings.Contains(in, ": ") {
			t.Errorf("Field(%q) left separators unquoted", in)
		}
		doc, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		doc = EscapeJSON(doc)
		checkNoRaw(t, string(doc))
		var back string
		if err := json.Unmarshal(doc, &back); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if utf8.ValidString(in) && back != in {
			t.Errorf("JSON of %q came back as %q", in, back)
		}
	})
}
