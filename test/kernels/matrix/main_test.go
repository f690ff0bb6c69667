package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A go test -v log in the shape the guests write: messages after each
// test's heading, subtests after their parent's status line.
const loadLog = `=== RUN   TestFlowTableLayout
    table_test.go:480: Linux 6.1.0-50-amd64: the array flow table
--- PASS: TestFlowTableLayout (0.50s)
=== RUN   TestTCParserTable
--- PASS: TestTCParserTable (1.00s)
=== RUN   TestXDPParserTable
=== RUN   TestXDPParserTable/frags
    xdp_prog_test.go:59: kernel lacks multi-buffer XDP
=== RUN   TestXDPParserTable/plain
--- PASS: TestXDPParserTable (2.00s)
    --- SKIP: TestXDPParserTable/frags (0.00s)
    --- PASS: TestXDPParserTable/plain (2.00s)
=== RUN   TestCgroupParserTable
--- PASS: TestCgroupParserTable (1.00s)
=== RUN   TestProcessBackendsVerify
=== RUN   TestProcessBackendsVerify/tracepoint
    process_prog_test.go:46: the tracepoint backend does not load: refused
--- FAIL: TestProcessBackendsVerify (1.00s)
    --- FAIL: TestProcessBackendsVerify/tracepoint (1.00s)
=== RUN   TestProcessSeedIterator
    process_prog_test.go:80: refused, /proc is walked instead
--- PASS: TestProcessSeedIterator (1.00s)
=== RUN   TestKprobeLosses
--- PASS: TestKprobeLosses (2.00s)
=== RUN   TestFilterMatchesTcpdump
--- PASS: TestFilterMatchesTcpdump (3.00s)
=== RUN   TestFilterCgroupMatchesTcpdump
--- PASS: TestFilterCgroupMatchesTcpdump (1.00s)
=== RUN   TestFilterProcessBackendsVerify
--- PASS: TestFilterProcessBackendsVerify (1.00s)
FAIL
`

const e2eLog = `=== RUN   TestE2EUDP
--- PASS: TestE2EUDP (1.00s)
=== RUN   TestE2EXDPModes
    e2e_xdp_test.go:410: skipped: no XDP here
--- SKIP: TestE2EXDPModes (1.00s)
=== RUN   TestE2ECgroup
--- PASS: TestE2ECgroup (1.00s)
=== RUN   TestE2EProcess
    tool.go:140: pktstat-bpf is capturing, mode=process/fentry, 20.5s after its start
--- PASS: TestE2EProcess (1.00s)
=== RUN   TestE2ENothingLeftTCX
    e2e_attach_test.go:208: skipped: this kernel has no TCX
--- SKIP: TestE2ENothingLeftTCX (0.10s)
=== RUN   TestE2ENothingLeftLegacy
--- PASS: TestE2ENothingLeftLegacy (1.00s)
=== RUN   TestE2EPrivilegeDrop
=== RUN   TestE2EPrivilegeDrop/tcx
    e2e_attach_test.go:208: skipped: this kernel has no TCX
=== RUN   TestE2EPrivilegeDrop/legacy
--- PASS: TestE2EPrivilegeDrop (1.00s)
    --- SKIP: TestE2EPrivilegeDrop/tcx (0.10s)
    --- PASS: TestE2EPrivilegeDrop/legacy (1.00s)
=== RUN   TestE2EAnyIfaceFollows
=== RUN   TestE2EAnyIfaceFollows/tcx
    e2e_ifaces_test.go:212: skipped: this kernel has no TCX
=== RUN   TestE2EAnyIfaceFollows/legacy
--- PASS: TestE2EAnyIfaceFollows (2.00s)
    --- SKIP: TestE2EAnyIfaceFollows/tcx (0.10s)
    --- PASS: TestE2EAnyIfaceFollows/legacy (1.00s)
PASS
`

func TestMatrix(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"6.1.0-50-amd64.load.log": loadLog,
		"6.1.0-50-amd64.e2e.log":  e2eLog,
		"5.10.0-32-amd64.e2e.log": "qemu: the guest never reported\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	err := run(dir, &out)
	if err == nil {
		t.Error("a failed cell did not fail the run")
	}
	got := out.String()
	for _, want := range []string{
		"| kernel | load | TC | XDP | cgroup | process | nothing left | filter | -i any |",
		// 5.10 sorts first, by version; its load tier never ran.
		"| 5.10.0-32-amd64 | FAIL | FAIL | FAIL | FAIL | FAIL | FAIL | FAIL | FAIL |\n| 6.1.0-50-amd64 | FAIL | pass | unsupported | pass | pass (process/fentry) | pass | pass | pass |",
		"- 6.1.0-50-amd64, load: TestProcessBackendsVerify: tracepoint: FAIL: process_prog_test.go:46: the tracepoint backend does not load: refused",
		"- 6.1.0-50-amd64, nothing left: TestE2ENothingLeftTCX: e2e_attach_test.go:208: skipped: this kernel has no TCX",
		"- 6.1.0-50-amd64, XDP: TestE2EXDPModes: e2e_xdp_test.go:410: skipped: no XDP here",
		"- 5.10.0-32-amd64, TC: TestE2EUDP did not run (see the log)",
		"kernel matrix: 2 kernels, 16 cells: 6 pass, 9 fail, 1 unsupported",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "XDP: TestXDPParserTable") {
		t.Errorf("a skipped subtest of the load tier shows under XDP:\n%s", got)
	}
}
