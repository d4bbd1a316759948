package ring

// Test harness, as in the root package: a second real process is this test
// binary re-executed in a role registered in children (see
// internal/childtest). Names carry the prefix testPrefix and are checked for
// leaks when the suite ends.

import (
	"os/exec"
	"testing"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
)

var children = map[string]func(args []string) int{}

var harness = childtest.New("ringtest", shm.Unlink, children)

func TestMain(m *testing.M) { harness.Main(m) }

// testName returns a fresh name and removes that segment when the test ends.
func testName(t testing.TB) string { return harness.Name(t) }

// startChild starts a child in role; its output is kept for failure reports.
func startChild(t testing.TB, role string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	return childtest.Start(t, role, args...)
}

type syncBuffer = childtest.Buffer

func childtestCommand(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	return childtest.Command(t, role, args...)
}

// runChild runs a child in role to completion and fails the test if it fails.
func runChild(t testing.TB, role string, args ...string) string {
	t.Helper()
	return childtest.Run(t, role, args...)
}

func childFail(format string, args ...any) int { return childtest.Fail(format, args...) }
