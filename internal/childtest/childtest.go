// Package childtest is the test harness shared by this module's packages
// for tests that need a second real process: the test binary re-executes
// itself with an environment variable naming a role, as os/exec's own tests
// do, and the role's function runs instead of the tests.
//
// It also hands out segment names with a per-process prefix and, when the
// tests end, reports any such name left in /dev/shm.
package childtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	roleEnv = "SHM_TEST_CHILD"
	argsEnv = "SHM_TEST_ARGS"
)

// A Harness holds the child roles and the name prefix of one test package.
type Harness struct {
	// Prefix starts every name Name returns.
	Prefix string
	// Unlink removes a segment by name; Name registers it as a cleanup.
	Unlink func(name string) error
	// AfterRun lists functions Main calls once the tests have run, such
	// as removing files built once for many tests.
	AfterRun []func()

	roles map[string]func(args []string) int
	seq   atomic.Int64
}

// New returns a harness whose names start with kind, this process's ID and
// a dash, e.g. "shmtest-1234-". roles maps a role to the function a child
// started in it runs, whose result is the child's exit status; test files
// add to it from init functions.
func New(kind string, unlink func(string) error, roles map[string]func(args []string) int) *Harness {
	return &Harness{Prefix: fmt.Sprintf("%s-%d-", kind, os.Getpid()), Unlink: unlink, roles: roles}
}

// Main runs the child's role if this process is a child, and otherwise the
// tests, failing them if they left names with the prefix in /dev/shm.
func (h *Harness) Main(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		f, ok := h.roles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(3)
		}
		var args []string
		if a := os.Getenv(argsEnv); a != "" {
			args = strings.Split(a, "\x1f")
		}
		os.Exit(f(args))
	}
	code := m.Run()
	for _, f := range h.AfterRun {
		f()
	}
	if leaked := h.Leaked(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: tests left segments in /dev/shm: %v\n", leaked)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Name returns a fresh name (without a leading slash) and removes the
// segment of that name, if any, when the test ends.
func (h *Harness) Name(t testing.TB) string {
	name := fmt.Sprintf("%s%d", h.Prefix, h.seq.Add(1))
	t.Cleanup(func() { h.Unlink(name) })
	return name
}

// Leaked lists the names with the prefix left in /dev/shm (Linux only:
// other systems cannot list segments).
func (h *Harness) Leaked() []string {
	if runtime.GOOS != "linux" {
		return nil
	}
	ents, err := os.ReadDir("/dev/shm")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), h.Prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// Command returns a command that runs this test binary as a child in role.
func Command(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, argsEnv+"="+strings.Join(args, "\x1f"))
	return cmd
}

// Run runs a child in role to completion and returns its standard output;
// it fails the test, showing both outputs, if the child fails.
func Run(t testing.TB, role string, args ...string) string {
	t.Helper()
	cmd := Command(t, role, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s %q: %v\nstdout:\n%s\nstderr:\n%s", role, args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// Start starts a child in role, with its output collected in the returned
// buffer, and kills it when the test ends if it is still running.
func Start(t testing.TB, role string, args ...string) (*exec.Cmd, *Buffer) {
	t.Helper()
	cmd := Command(t, role, args...)
	out := new(Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", role, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out
}

// Fail prints a message to standard error and returns the exit status of a
// failed child.
func Fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

// A Buffer is a bytes.Buffer safe to read while a child writes to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
