package e2e

// End-to-end test of the filter expression: three runs of the tool watch
// A's veth at once, with the same filter and each of the report formats,
// while the test sends UDP datagrams that the filter keeps, UDP datagrams
// that it drops and pings that it drops. The kept flow's row and the
// filtered counts must equal what the test sent. The filter keeps
// everything else, so that traffic the test did not send (IPv6 router
// solicitations, say) lands in rows of its own, never in the filtered
// counts, which are then exact.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

func TestE2EFilter(t *testing.T) {
	bin, p := harness.BinaryAndPair(t)
	const (
		nKept, nDropped, nPing = 400, 250, 7
		portKept, portDropped  = 5011, 5012
		expr                   = "not (udp and dst port 5012) and not icmp"
	)
	payload := bytes.Repeat([]byte{0x5a}, 300)
	pingData := bytes.Repeat([]byte{0xa5}, 56)
	udpFrame := uint64(harness.EthLen + harness.IPv4Len + harness.UDPLen + len(payload))
	icmpFrame := uint64(harness.EthLen + harness.IPv4Len + harness.ICMPLen + len(pingData))
	kept := harness.NewUDPFlow("UDP B->A, kept", p.B, p.A, netip.AddrPortFrom(p.B.IPv4, 41011), netip.AddrPortFrom(p.A.IPv4, portKept))
	dropped := harness.NewUDPFlow("UDP A->B, dropped", p.A, p.B, netip.AddrPortFrom(p.A.IPv4, 41012), netip.AddrPortFrom(p.B.IPv4, portDropped))

	ndjson := harness.StartTool(t, p.A, bin, "-i", p.A.Link, "-t", "0", "-j", "--interval", "1s", expr)
	plain := harness.StartTool(t, p.A, bin, "-i", p.A.Link, "-t", "0", expr)
	array := harness.StartTool(t, p.A, bin, "-i", p.A.Link, "-t", "0", "-j", expr)
	harness.SendUDPFlow(t, kept, payload, nKept)
	harness.SendUDPFlow(t, dropped, payload, nDropped)
	pg := pinger{"ip4:icmp", 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply, p.A.IPv4, p.B.IPv4}
	if err := pg.ping(p.A, nPing, pingData); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, tl := range []*harness.Tool{ndjson, plain, array} {
		harness.StopTool(t, tl, syscall.SIGINT)
	}
	wantFiltered := counts{nDropped + 2*nPing, nDropped*udpFrame + 2*nPing*icmpFrame}
	wantKept := counts{nKept, nKept * udpFrame}

	// NDJSON: every interval says what it filtered; the sums are exact.
	var (
		filtered, keptRow counts
		lines             int
	)
	for _, line := range strings.Split(strings.TrimSpace(ndjson.Stdout()), "\n") {
		var iv struct {
			Filtered *counts       `json:"filtered"`
			Rows     []harness.Row `json:"rows"`
		}
		if err := json.Unmarshal([]byte(line), &iv); err != nil {
			t.Fatalf("NDJSON line %q: %v", line, err)
		}
		if iv.Filtered == nil {
			t.Fatalf("NDJSON line without \"filtered\": %s", line)
		}
		lines++
		filtered.add(*iv.Filtered)
		for _, r := range iv.Rows {
			if r.Proto == "ICMPv4" || (r.Proto == "UDP" && r.DstPort == portDropped) {
				t.Errorf("NDJSON row of traffic the filter drops: %+v", r)
			}
			if r.Proto == "UDP" && r.DstPort == portKept {
				keptRow.add(counts{r.Packets, r.Bytes})
			}
		}
	}
	if filtered != wantFiltered || keptRow != wantKept {
		t.Errorf("NDJSON (%d lines): kept flow %+v, filtered %+v; want %+v and %+v", lines, keptRow, filtered, wantKept, wantFiltered)
	}

	// Plain: the summary line says it, once.
	m := regexp.MustCompile(`(?m)^summary: .*, filtered out: (\d+) packets, (\d+) bytes`).FindStringSubmatch(plain.Stdout())
	if m == nil {
		t.Fatalf("no \"filtered out\" in the plain summary:\n%s", plain.Stdout())
	}
	pk, _ := strconv.ParseUint(m[1], 10, 64)
	by, _ := strconv.ParseUint(m[2], 10, 64)
	if got := (counts{pk, by}); got != wantFiltered {
		t.Errorf("plain: filtered out %+v, want %+v", got, wantFiltered)
	}
	want := fmt.Sprintf("packets: %d, bytes: %d, proto: UDP, src: %s, dst: %s", nKept, nKept*udpFrame, kept.Src, kept.Dst)
	if !strings.Contains(plain.Stdout(), want) {
		t.Errorf("plain: no row %q:\n%s", want, plain.Stdout())
	}

	// JSON: the rows, then one last object with "filtered".
	var objs []json.RawMessage
	if err := json.Unmarshal([]byte(array.Stdout()), &objs); err != nil || len(objs) == 0 {
		t.Fatalf("JSON report %q: %v", array.Stdout(), err)
	}
	var last struct {
		Filtered *counts `json:"filtered"`
	}
	if err := json.Unmarshal(objs[len(objs)-1], &last); err != nil || last.Filtered == nil || *last.Filtered != wantFiltered {
		t.Errorf("JSON: last object %s, want {\"filtered\":%+v}", objs[len(objs)-1], wantFiltered)
	}
	rowsOnly, err := json.Marshal(objs[:len(objs)-1])
	if err != nil {
		t.Fatal(err)
	}
	rows, err := harness.ParseRows(string(rowsOnly))
	if err != nil {
		t.Fatal(err)
	}
	r := harness.OneRow(t, rows, "UDP", kept.Src.Addr(), kept.Dst.Addr(), kept.Src.Port(), kept.Dst.Port())
	harness.WantCounts(t, "JSON: the kept flow", r, nKept, nKept*udpFrame)
}

// counts are a packet and byte count, as the reports' "filtered" object.
type counts struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func (c *counts) add(o counts) { c.Packets += o.Packets; c.Bytes += o.Bytes }
