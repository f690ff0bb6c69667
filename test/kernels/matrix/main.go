// Command matrix reads the logs of the kernel-matrix tiers (go test -v
// output, one file per kernel and tier, named RELEASE.TIER.log) and prints
// a table: kernel × mode → pass, fail or unsupported, then the reason for
// every cell that is not a plain pass. It exits 1 if any cell failed.
//
//	go run ./test/kernels/matrix LOGDIR
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// column is one mode of the table, the tier whose logs hold it, and the
// top-level tests that decide it.
type column struct {
	name  string
	tier  string
	tests []string
}

// columns are the table's modes, in order. A cell passes when each of its
// tests ran and passed; it is unsupported when none failed and one skipped
// (the test says what the kernel lacks); it fails when one failed or none
// ran.
var columns = []column{
	{"load", "load", []string{"TestFlowTableLayout", "TestTCParserTable", "TestXDPParserTable", "TestCgroupParserTable", "TestProcessBackendsVerify", "TestProcessSeedIterator", "TestKprobeLosses"}},
	{"TC", "e2e", []string{"TestE2EUDP"}},
	{"XDP", "e2e", []string{"TestE2EXDPModes"}},
	{"cgroup", "e2e", []string{"TestE2ECgroup"}},
	{"process", "e2e", []string{"TestE2EProcess"}},
	{"nothing left", "e2e", []string{"TestE2ENothingLeftTCX", "TestE2ENothingLeftLegacy", "TestE2EPrivilegeDrop"}},
	{"filter", "load", []string{"TestFilterMatchesTcpdump", "TestFilterCgroupMatchesTcpdump", "TestFilterProcessBackendsVerify"}},
	{"-i any", "e2e", []string{"TestE2EAnyIfaceFollows"}},
}

// result is what one test's lines in a log say.
type result struct {
	status string   // PASS, FAIL or SKIP
	lines  []string // what the test logged, trimmed
	subs   []string // "name: STATUS: first line" of each subtest that did not pass
}

var (
	statusRE  = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(`)
	headingRE = regexp.MustCompile(`^=== (?:RUN|CONT|NAME|PAUSE)\s+(\S+)`)
	logName   = regexp.MustCompile(`^(.+)\.(load|e2e)\.log$`)
)

// parse reads go test -v output: a test's messages follow its "=== RUN"
// (or "=== CONT") heading, and its "--- STATUS" line ends it; messages that
// go test prints after that line belong to it too.
func parse(r io.Reader) map[string]*result {
	status := map[string]string{}
	lines := map[string][]string{}
	var names []string
	current := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := headingRE.FindStringSubmatch(line); m != nil {
			current = m[1]
			continue
		}
		if m := statusRE.FindStringSubmatch(line); m != nil {
			current = m[2]
			if _, seen := status[current]; !seen {
				names = append(names, current)
			}
			status[current] = m[1]
			continue
		}
		if text := strings.TrimSpace(line); text != "" && current != "" && strings.HasPrefix(line, " ") {
			lines[current] = append(lines[current], text)
		}
	}
	out := map[string]*result{}
	for _, name := range names {
		top, _, isSub := strings.Cut(name, "/")
		if !isSub {
			r := out[top]
			if r == nil {
				r = &result{}
				out[top] = r
			}
			r.status, r.lines = status[name], lines[name]
			continue
		}
		if status[name] == "PASS" {
			continue
		}
		r := out[top]
		if r == nil {
			r = &result{}
			out[top] = r
		}
		sub := strings.TrimPrefix(name, top+"/") + ": " + status[name]
		if l := lines[name]; len(l) > 0 {
			sub += ": " + l[0]
		}
		r.subs = append(r.subs, sub)
	}
	return out
}

// modeRE finds the mode a test's tool ran in, which the tests log when it
// starts ("pktstat-bpf is capturing, mode=tc/legacy, ...").
var modeRE = regexp.MustCompile(`capturing, mode=(\S+),`)

// cell decides one column for one kernel. A column of several tests passes
// when none failed and one passed (TCX's test skips where legacy tc's
// runs); it is unsupported when every test skipped. A pass names the mode
// the tool chose, when its tests logged it.
func cell(c column, res map[string]*result) (status, why string) {
	status = "unsupported"
	mode := ""
	var whys []string
	defer func() {
		if status == "pass" && mode != "" {
			status += " (" + mode + ")"
		}
	}()
	for _, name := range c.tests {
		r, ok := res[name]
		if !ok || r.status == "" {
			return "FAIL", name + " did not run (see the log)"
		}
		switch r.status {
		case "FAIL":
			msg := "failed"
			switch {
			case len(r.lines) > 0:
				msg = r.lines[0]
			case len(r.subs) > 0:
				msg = strings.Join(r.subs, "; ")
			}
			return "FAIL", name + ": " + msg
		case "PASS":
			status = "pass"
			for _, l := range r.lines {
				if m := modeRE.FindStringSubmatch(l); m != nil && mode == "" {
					mode = m[1]
				}
			}
		case "SKIP":
			msg := "skipped"
			if len(r.lines) > 0 {
				msg = r.lines[len(r.lines)-1]
			}
			whys = append(whys, name+": "+msg)
		}
		for _, s := range r.subs {
			whys = append(whys, name+"/"+s)
		}
	}
	return status, strings.Join(whys, "; ")
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: matrix LOGDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "matrix:", err)
		os.Exit(1)
	}
}

func run(dir string, w io.Writer) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return err
	}
	kernels := map[string]map[string]*result{}
	tiers := map[string]bool{}
	var order []string
	for _, f := range files {
		m := logName.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		res := parse(fh)
		fh.Close()
		tiers[m[2]] = true
		if kernels[m[1]] == nil {
			kernels[m[1]] = map[string]*result{}
			order = append(order, m[1])
		}
		for k, v := range res {
			kernels[m[1]][k] = v
		}
	}
	if len(order) == 0 {
		return fmt.Errorf("no RELEASE.TIER.log in %s", dir)
	}
	slices.SortFunc(order, compareReleases)

	var shown []column
	header := []string{"kernel"}
	for _, c := range columns {
		if tiers[c.tier] {
			shown = append(shown, c)
			header = append(header, c.name)
		}
	}
	fmt.Fprintln(w, "| "+strings.Join(header, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(header)))
	var notes []string
	count := map[string]int{}
	for _, k := range order {
		row := []string{k}
		for _, c := range shown {
			st, why := cell(c, kernels[k])
			row = append(row, st)
			count[strings.Fields(st)[0]]++
			if why != "" {
				notes = append(notes, fmt.Sprintf("- %s, %s: %s", k, c.name, why))
			}
		}
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	fmt.Fprintf(w, "\nkernel matrix: %d kernels, %d cells: %d pass, %d fail, %d unsupported\n",
		len(order), len(order)*len(shown), count["pass"], count["FAIL"], count["unsupported"])
	if count["FAIL"] > 0 {
		return fmt.Errorf("some kernels failed a mode they have")
	}
	return nil
}

// compareReleases orders kernel releases by their version numbers.
func compareReleases(a, b string) int {
	num := regexp.MustCompile(`\d+`)
	na, nb := num.FindAllString(a, 3), num.FindAllString(b, 3)
	for i := 0; i < len(na) && i < len(nb); i++ {
		if c := cmpNum(na[i], nb[i]); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

func cmpNum(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
