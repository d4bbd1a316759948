package shm

// Test harness: a second real process is this test binary re-executed with
// SHM_TEST_CHILD set to a role registered in children, as os/exec's own tests
// do. Names made by tests carry the prefix testPrefix and are checked for
// leaks when the suite ends.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// children maps a role to the function a child process runs. The function's
// result is the child's exit status. Register roles from init functions.
var children = map[string]func(args []string) int{}

const childEnv = "SHM_TEST_CHILD"
const childArgsEnv = "SHM_TEST_ARGS"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		f, ok := children[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(3)
		}
		var args []string
		if a := os.Getenv(childArgsEnv); a != "" {
			args = strings.Split(a, "\x1f")
		}
		os.Exit(f(args))
	}
	code := m.Run()
	if leaked := leakedNames(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: tests left segments in %s: %v\n", shmDirForLeaks(), leaked)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// testPrefix starts every name a test makes, so the leak check finds them and
// parallel test binaries do not collide.
var testPrefix = fmt.Sprintf("shmtest-%d-", os.Getpid())

var nameSeq atomic.Int64

// testName returns a fresh name (without the leading slash) and removes the
// segment of that name, if any, when the test ends.
func testName(t testing.TB) string {
	name := fmt.Sprintf("%s%d", testPrefix, nameSeq.Add(1))
	t.Cleanup(func() { Unlink(name) })
	return name
}

func shmDirForLeaks() string {
	if runtime.GOOS == "linux" {
		return "/dev/shm"
	}
	return ""
}

// leakedNames lists the test-made names left in /dev/shm (Linux only: other
// systems cannot list segments).
func leakedNames() []string {
	dir := shmDirForLeaks()
	if dir == "" {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), testPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// childCmd returns a command that runs this test binary as a child in role.
func childCmd(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, childArgsEnv+"="+strings.Join(args, "\x1f"))
	return cmd
}

// runChild runs a child in role to completion and returns its standard
// output; it fails the test if the child fails.
func runChild(t testing.TB, role string, args ...string) string {
	t.Helper()
	cmd := childCmd(t, role, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s %q: %v\nstdout:\n%s\nstderr:\n%s", role, args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// childFail prints a message to standard error and returns the exit status
// for a failed child.
func childFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

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
