package shm

// Test harness: a second real process is this test binary re-executed in a
// role registered in children (see internal/childtest). Names made by tests
// carry the prefix testPrefix and are checked for leaks when the suite ends.

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/mindmeld-go/shm/internal/childtest"
)

// children maps a role to the function a child process runs. The function's
// result is the child's exit status. Register roles from init functions.
var children = map[string]func(args []string) int{}

var harness = childtest.New("shmtest", Unlink, children)

func TestMain(m *testing.M) { harness.Main(m) }

// testPrefix starts every name a test makes, so the leak check finds them and
// parallel test binaries do not collide.
var testPrefix = harness.Prefix

// testName returns a fresh name (without the leading slash) and removes the
// segment of that name, if any, when the test ends.
func testName(t testing.TB) string { return harness.Name(t) }

// leakedNames lists the test-made names left in /dev/shm.
func leakedNames() []string { return harness.Leaked() }

// childCmd returns a command that runs this test binary as a child in role.
func childCmd(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	return childtest.Command(t, role, args...)
}

// runChild runs a child in role to completion and returns its standard
// output; it fails the test if the child fails.
func runChild(t testing.TB, role string, args ...string) string {
	t.Helper()
	return childtest.Run(t, role, args...)
}

// Reasons a test cannot run under user-mode emulation (qemu-user), for
// skipIfEmulated.
const (
	// qemu-user delivers SIGBUS with a fault address of 0, which the Go
	// runtime reports as a nil dereference, without the Addr method that
	// SetPanicOnFault's panics have: the fault-guarded copy rightly re-panics.
	emuFaultAddr = "qemu-user reports a SIGBUS fault address as 0, so a fault in a shrunk segment looks like a nil dereference and cannot be recovered"
)

// skipIfEmulated skips t under user-mode emulation, saying why (see the
// emu* reasons and notes/platforms.md).
func skipIfEmulated(t testing.TB, why string) {
	t.Helper()
	childtest.SkipIfEmulated(t, why)
}

// childFail prints a message to standard error and returns the exit status
// for a failed child.
func childFail(format string, args ...any) int { return childtest.Fail(format, args...) }

// segSize is the size a segment created with size n has: n, except on macOS,
// which rounds it up to the page size (xnu bsd/kern/posix_shm.c,
// pshm_truncate).
func segSize(n int) int {
	if runtime.GOOS != "darwin" {
		return n
	}
	pg := os.Getpagesize()
	return (n + pg - 1) / pg * pg
}
