package completion

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktstat-bpf/pktstat-bpf/internal/cli"
)

// script writes shell's completion script to a file and returns its path.
func script(t *testing.T, shell string) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, shell, cli.FlagSet()); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "pktstat-bpf."+shell)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// allNames is every way to write every flag, from the FlagSet that Parse
// uses: the ground truth of flag completion.
func allNames() []string {
	var n []string
	for _, f := range Flags(cli.FlagSet()) {
		n = append(n, names(f)...)
	}
	return n
}

func ifaceNames(t *testing.T) []string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	n := []string{"any"}
	for _, i := range ifs {
		n = append(n, i.Name)
	}
	return n
}

func cgroupDirs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Skipf("no /sys/fs/cgroup to complete -c from: %v", err)
	}
	var n []string
	for _, e := range ents {
		if e.IsDir() {
			n = append(n, "/sys/fs/cgroup/"+e.Name()+"/")
		}
	}
	return n
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// TestBash loads the bash script, checks `complete -p`, and runs its
// completion function on command lines, as bash does on TAB, comparing
// COMPREPLY with the flags, interfaces, cgroup directories and words.
func TestBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	path := script(t, "bash")
	out, err := exec.Command(bash, "-c", "source "+path+" && complete -p pktstat-bpf").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "complete -F _pktstat_bpf pktstat-bpf" {
		t.Fatalf("complete -p pktstat-bpf: %q, %v", out, err)
	}
	withPrefix := func(p string, w []string) []string {
		var o []string
		for _, x := range w {
			o = append(o, p+x)
		}
		return o
	}
	cases := []struct {
		words []string // after pktstat-bpf; the last is the word being completed
		want  []string
	}{
		{[]string{"-"}, allNames()},
		{[]string{"--tc"}, []string{"--tc-attach"}},
		{[]string{"--tc-attach", ""}, []string{"auto", "tcx", "legacy"}},
		{[]string{"--tc-attach", "=", "l"}, []string{"legacy"}},
		{[]string{"-x", "--xdp_mode", "d"}, []string{"driver"}},
		{[]string{"-k", "--process-backend", ""}, []string{"auto", "tracepoint", "fentry", "kprobe"}},
		{[]string{"--output", "j"}, []string{"json"}},
		{[]string{"--completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"-i", ""}, ifaceNames(t)},
		{[]string{"--iface", "lo,"}, withPrefix("lo,", ifaceNames(t))},
		{[]string{"-i", "lo", "-i", "an"}, []string{"any"}},
		{[]string{"-c", ""}, cgroupDirs(t)},
		{[]string{"--group-by", "src,d"}, []string{"src,dst", "src,dport", "src,dir"}},
		{[]string{"--timeout", ""}, nil},
		{[]string{"-j", "udp", "and", "port", "5"}, nil}, // a filter expression: nothing to offer
	}
	for _, c := range cases {
		t.Run(strings.Join(c.words, " "), func(t *testing.T) {
			words := append([]string{"pktstat-bpf"}, c.words...)
			var quoted []string
			for _, w := range words {
				quoted = append(quoted, "'"+w+"'")
			}
			prog := "source " + path + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
				strconv.Itoa(len(words)-1) + "\n_pktstat_bpf\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
			cmd := exec.Command(bash, "-c", prog)
			cmd.Dir = t.TempDir() // no file names for an unquoted word to glob
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Fields(string(out))
			if !slices.Equal(sorted(got), sorted(c.want)) {
				t.Errorf("COMPREPLY = %q, want %q", sorted(got), sorted(c.want))
			}
		})
	}
}

// TestFish asks fish itself what it completes (complete -C).
func TestFish(t *testing.T) {
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("fish is not installed (Debian package fish)")
	}
	path := script(t, "fish")
	cases := []struct {
		line string
		want []string
	}{
		{"pktstat-bpf -", allNames()},
		{"pktstat-bpf --tc-attach ", []string{"auto", "tcx", "legacy"}},
		{"pktstat-bpf -x --xdp_mode ", []string{"auto", "best", "generic", "native", "driver", "offload", "hardware"}},
		{"pktstat-bpf --process-backend ", []string{"auto", "tracepoint", "fentry", "kprobe"}},
		{"pktstat-bpf -i ", ifaceNames(t)},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {
			out, err := exec.Command(fish, "--no-config", "-c", "source "+path+"; complete -C '"+c.line+"'").Output()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
			if !slices.Equal(sorted(got), sorted(c.want)) {
				t.Errorf("complete -C %q = %q, want %q", c.line, sorted(got), sorted(c.want))
			}
		})
	}
}

// TestZsh runs zsh's completion system on command lines in a pseudo
// terminal (testdata/capture.zsh, with zsh/zpty) and compares the matches
// it offers with the FlagSet, net.Interfaces and /sys/fs/cgroup.
func TestZsh(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh is not installed (Debian package zsh)")
	}
	path := script(t, "zsh")
	if out, err := exec.Command(zsh, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	without := func(w []string, drop string) []string {
		return slices.DeleteFunc(slices.Clone(w), func(s string) bool { return s == drop })
	}
	var dirs []string
	for _, d := range cgroupDirs(t) {
		dirs = append(dirs, strings.TrimSuffix(d, "/"))
	}
	cases := []struct {
		line string
		want []string
	}{
		{"pktstat-bpf -", allNames()},
		{"pktstat-bpf --tc", []string{"--tc-attach"}},
		{"pktstat-bpf --tc-attach ", []string{"auto", "tcx", "legacy"}},
		{"pktstat-bpf -x --xdp_mode ", []string{"auto", "best", "generic", "native", "driver", "offload", "hardware"}},
		{"pktstat-bpf -k --process-backend ", []string{"auto", "tracepoint", "fentry", "kprobe"}},
		{"pktstat-bpf -i ", ifaceNames(t)},
		// _values offers the rest of the list after a comma.
		{"pktstat-bpf -i lo,", without(ifaceNames(t), "lo")},
		{"pktstat-bpf --group-by src,d", []string{"dst", "dport", "dir"}},
		{"pktstat-bpf -c /sys/fs/cgroup/", dirs},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, zsh, "-f", "testdata/capture.zsh", path, c.line)
			// The zsh in the pseudo terminal goes with its parent.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			out, err := cmd.Output()
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what zpty forked, if left
			if err != nil {
				t.Fatalf("capture.zsh: %v", err)
			}
			// zsh quotes a glob character in a match as it would insert
			// it: -? is offered as -\?.
			got := strings.Fields(strings.NewReplacer("\r", "", `\?`, "?").Replace(string(out)))
			if !slices.Equal(sorted(got), sorted(c.want)) {
				t.Errorf("zsh offers %q, want %q", sorted(got), sorted(c.want))
			}
		})
	}
}

// TestWordsAccepted holds the completed words to what cli.Parse accepts,
// and checks that Parse refuses a word that is not among them (so the
// check can fail).
func TestWordsAccepted(t *testing.T) {
	mode := map[string][]string{"xdp_mode": {"-x"}, "process-backend": {"-k"}}
	for _, f := range Flags(cli.FlagSet()) {
		v := valueOf(f)
		if v.Kind != Words {
			continue
		}
		invalid := "invalid --" + f.Name
		for _, w := range append(slices.Clone(v.Words), "bogus") {
			_, err := cli.Parse(append(slices.Clone(mode[f.Name]), "--"+f.Name+"="+w), &bytes.Buffer{})
			refused := err != nil && strings.Contains(err.Error(), invalid)
			if refused != (w == "bogus") {
				t.Errorf("--%s=%s: Parse error %v", f.Name, w, err)
			}
		}
	}
}
