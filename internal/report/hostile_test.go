package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// hostileReport is one row owned by a process named comm in cgroup cg,
// on an interface named iface.
func hostileReport(comm, cg, iface string) Report {
	k := flow.Key{EtherType: flow.EtherTypeIPv4, Proto: flow.ProtoUDP, SrcPort: 1000, DstPort: 53,
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"),
		Owner: flow.NewOwner(flow.OwnerInfo{PID: 7, Comm: comm, Cgroup: cg})}
	d := time.Second
	return Report{Flows: flow.Rank(map[flow.Key]flow.Counters{k: {Packets: 1, Bytes: 100}}, d), Duration: d,
		Iface: &Iface{Name: iface}}
}

// rawHostile returns the first control or format character in out that
// is not a line end, or -1.
func rawHostile(out string) rune {
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError) {
			return r
		}
	}
	return -1
}

// plainOwner reads the comm and cgroup fields of a plain line, in order:
// each value is a Go-quoted string, or everything up to the next ", " or
// "; " or the line's end. The fields before them are the tool's own.
func plainOwner(t *testing.T, line string) (comm, cgroup string) {
	t.Helper()
	_, rest, ok := strings.Cut(line, ", comm: ")
	if !ok {
		t.Fatalf("no comm field in %q", line)
	}
	value := func() string {
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("a field of %q: %v", line, err)
			}
			rest = rest[len(q):]
			v, _ := strconv.Unquote(q)
			return v
		}
		end := len(rest)
		if i := strings.Index(rest, ", "); i >= 0 {
			end = i
		}
		v := rest[:end]
		rest = rest[end:]
		return v
	}
	comm = value()
	if rest, ok = strings.CutPrefix(rest, ", cgroup: "); !ok {
		t.Fatalf("no cgroup field after the comm in %q", line)
	}
	return comm, value()
}

// TestHostileNames: names that a user who owns a process, a delegated
// cgroup or an interface can choose reach the plain report quoted (the
// fields cannot be forged, the terminal cannot be driven) and the JSON
// report escaped, and both give the names back.
func TestHostileNames(t *testing.T) {
	for _, c := range []struct{ comm, cg, iface string }{
		{"x, cgroup: /a", "/sys/fs/cgroup/ev\x1b[31mRED\x1b[0m\x1b]0;pwned\a\rFAKE", "pa\x1b[2J"},
		{"a\u0085b\u009b2J", "/x\u202eslice", "eth0"},
		{`say "hi"`, "/ok", "p: a"},
	} {
		r := hostileReport(c.comm, c.cg, c.iface)
		var plain bytes.Buffer
		if err := WritePlain(&plain, r); err != nil {
			t.Fatal(err)
		}
		if h := rawHostile(plain.String()); h >= 0 {
			t.Errorf("plain report holds a raw %U:\n%q", h, plain.String())
		}
		line := strings.SplitN(plain.String(), "\n", 2)[0]
		if comm, cg := plainOwner(t, line); comm != c.comm || cg != c.cg {
			t.Errorf("comm %q and cgroup %q, want %q and %q, in %q", comm, cg, c.comm, c.cg, line)
		}
		var js bytes.Buffer
		if err := WriteJSON(&js, r); err != nil {
			t.Fatal(err)
		}
		var nd bytes.Buffer
		if err := WriteNDJSON(&nd, r); err != nil {
			t.Fatal(err)
		}
		for _, doc := range []string{js.String(), nd.String()} {
			if h := rawHostile(doc); h >= 0 {
				t.Errorf("JSON holds a raw %U:\n%q", h, doc)
			}
		}
		var rows []map[string]any
		if err := json.Unmarshal(js.Bytes(), &rows); err != nil {
			t.Fatal(err)
		}
		if rows[0]["comm"] != c.comm || rows[0]["cgroup"] != c.cg {
			t.Errorf("JSON row %v, want comm %q and cgroup %q", rows[0], c.comm, c.cg)
		}
	}
}

// FuzzHostileNames: whatever a process, cgroup or interface is named,
// the plain and JSON reports hold no raw control or format character, the
// plain report gives the name back, and the JSON report does too when the
// name is UTF-8 (JSON cannot carry other bytes).
func FuzzHostileNames(f *testing.F) {
	f.Add("nginx", "/sys/fs/cgroup/system.slice", "eth0")
	f.Add("x, cgroup: /a", "ev\x1b]0;t\a", "p\xff")
	f.Add("\u202e", "a: b", `"`)
	f.Fuzz(func(t *testing.T, comm, cg, iface string) {
		if comm == "" || cg == "" {
			return // an empty name is left out of a row
		}
		r := hostileReport(comm, cg, iface)
		var plain, js bytes.Buffer
		if err := WritePlain(&plain, r); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(&js, r); err != nil {
			t.Fatal(err)
		}
		for _, doc := range []string{plain.String(), js.String()} {
			if h := rawHostile(doc); h >= 0 {
				t.Fatalf("report holds a raw %U:\n%q", h, doc)
			}
		}
		line := strings.SplitN(plain.String(), "\n", 2)[0]
		if gotComm, gotCg := plainOwner(t, line); gotComm != comm || gotCg != cg {
			t.Errorf("comm %q and cgroup %q came back as %q and %q from %q", comm, cg, gotComm, gotCg, line)
		}
		var rows []map[string]any
		if err := json.Unmarshal(js.Bytes(), &rows); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(comm) && rows[0]["comm"] != comm {
			t.Errorf("JSON comm %q came back as %q", comm, rows[0]["comm"])
		}
	})
}
