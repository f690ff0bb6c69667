package report

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// TestFilteredInReports checks the three formats' "filtered" parts, and
// that a report without a filter (Filtered nil) has none: the golden
// files hold those byte for byte.
func TestFilteredInReports(t *testing.T) {
	r := topReport()
	r.Filtered = &flow.Counters{Packets: 7, Bytes: 684}
	var plain, js, nd bytes.Buffer
	if err := WritePlain(&plain, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteNDJSON(&nd, r); err != nil {
		t.Fatal(err)
	}
	const summary = "summary: packets: 38, bytes: 4800, rows: 2, flows beyond --top: 3, flows not tracked (flow table full): about 4, filtered out: 7 packets, 684 bytes; veth0 counted rx packets: 30, tx packets: 8, rx dropped: 1, tx dropped: 0\n"
	if !strings.HasSuffix(plain.String(), summary) {
		t.Errorf("plain report ends\n%s\nwant\n%s", plain.String(), summary)
	}
	if !strings.HasSuffix(js.String(), `"hiddenFlows":3},{"filtered":{"packets":7,"bytes":684}}]`+"\n") {
		t.Errorf("JSON report does not end with the filtered object:\n%s", js.String())
	}
	if !strings.HasSuffix(nd.String(), `"rows":[`+rowsOf(t, r)+`],"filtered":{"packets":7,"bytes":684}}`+"\n") {
		t.Errorf("NDJSON line does not end with the filtered object:\n%s", nd.String())
	}

	r.Filtered = nil
	for _, w := range []func(io.Writer, Report) error{WritePlain, WriteJSON, WriteNDJSON} {
		var b bytes.Buffer
		if err := w(&b, r); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "filtered") {
			t.Errorf("a report without a filter mentions it:\n%s", b.String())
		}
	}
}

// rowsOf is the NDJSON rows of r, as WriteJSON writes them without the
// overflow row.
func rowsOf(t *testing.T, r Report) string {
	t.Helper()
	r.Hidden, r.Untracked, r.Filtered = flow.Counters{}, flow.Counters{}, nil
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(strings.TrimPrefix(b.String(), "["), "]\n")
}
