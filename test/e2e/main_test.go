// Package e2e holds the end-to-end tests: the built binary runs in test
// namespaces, cgroups and processes that the tests set up, and its reports
// must match ground truth exactly. What the tests share is in harness.
package e2e

import (
	"os"
	"testing"

	"github.com/pktstat-bpf/pktstat-bpf/test/e2e/harness"
)

// TestMain builds the binary once for every test (harness.Binary).
func TestMain(m *testing.M) {
	os.Exit(harness.Main(m))
}
