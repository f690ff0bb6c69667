// Package harness is what the end-to-end tests of test/e2e share, by role:
//
//   - build.go: the binary under test, built once (Main, Binary);
//   - tool.go, run.go, rows.go: running the tool, to a report or to an
//     error, and reading its JSON rows (Row, the one test-side type of the
//     report's rows);
//   - helper*.go: helper processes, the test binary itself re-executed,
//     that own sockets inside test cgroups and namespaces;
//   - cgroups.go: the test cgroups they are born in;
//   - offload.go: turning a veth's offloads off (internal/testkit/ethtool);
//   - capture.go, probe.go: ground truth, from an AF_PACKET capture and from
//     counter programs on the tool's hooks;
//   - traffic.go: wire sizes and known traffic;
//   - attached.go: what the tool has attached;
//   - metrics.go: scraping the metrics endpoint.
//
// Test networks themselves come from internal/testkit/testnet.
package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/internal/testkit/testnet"
)

// e2eBuild is the binary Main built for the end-to-end tests, or why
// there is none. Main sets it once, before any test runs; tests only read
// it.
var e2eBuild struct {
	path string
	err  error
}

// Main is the end-to-end tests' TestMain: it builds the binary (as root;
// without root the tests skip, so there is nothing to build) and runs the
// tests.
func Main(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "pktstat-bpf-e2e-")
		if err != nil {
			e2eBuild.err = err
		} else {
			defer os.RemoveAll(dir)
			// The unprivileged-user test runs the binary as nobody.
			if err := os.Chmod(dir, 0o755); err != nil {
				e2eBuild.err = err
			} else {
				e2eBuild.path, e2eBuild.err = BuildBinary(dir)
			}
		}
	}
	return m.Run()
}

// Binary returns the built binary; it skips without root.
func Binary(t *testing.T) string {
	t.Helper()
	testnet.RequireRoot(t)
	if e2eBuild.err != nil {
		t.Fatalf("build pktstat-bpf for the end-to-end tests: %v", e2eBuild.err)
	}
	return e2eBuild.path
}

// PrebuiltBinaryEnv names a pktstat-bpf binary that BuildBinary returns
// instead of building one: the kernel matrix builds it once on the host,
// where building inside each emulated guest would take minutes.
const PrebuiltBinaryEnv = "PKTSTAT_E2E_BINARY"

// BuildBinary builds cmd/pktstat-bpf into dir and returns its path, or the
// binary that PrebuiltBinaryEnv names.
func BuildBinary(dir string) (string, error) {
	if bin := os.Getenv(PrebuiltBinaryEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s: %w", PrebuiltBinaryEnv, err)
		}
		return bin, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "pktstat-bpf")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/pktstat-bpf")
	// Without cgo, as the README builds it: only then can the tool drop
	// every thread's capabilities after attaching.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(gomod), nil
}

// BinaryAndPair returns the built binary and a veth pair whose neighbours
// are pinned: the start of most end-to-end tests. It skips without root.
func BinaryAndPair(t *testing.T) (string, *testnet.Pair) {
	t.Helper()
	bin := Binary(t)
	p := testnet.NewPair(t)
	p.PinNeighbors(t)
	return bin, p
}
