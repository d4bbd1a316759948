package ring

// Test harness, as in the root package: a second real process is this test
// binary re-executed with RING_TEST_CHILD set to a role registered in
// children. Names carry the prefix testPrefix and are checked for leaks when
// the suite ends.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mindmeld-go/shm"
)

var children = map[string]func(args []string) int{}

const childEnv = "RING_TEST_CHILD"
const childArgsEnv = "RING_TEST_ARGS"

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
		fmt.Fprintf(os.Stderr, "FAIL: tests left segments in /dev/shm: %v\n", leaked)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

var testPrefix = fmt.Sprintf("ringtest-%d-", os.Getpid())

var nameSeq atomic.Int64

// testName returns a fresh name and removes that segment when the test ends.
func testName(t testing.TB) string {
	name := fmt.Sprintf("%s%d", testPrefix, nameSeq.Add(1))
	t.Cleanup(func() { shm.Unlink(name) })
	return name
}

func leakedNames() []string {
	ents, err := os.ReadDir("/dev/shm")
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

// startChild starts a child in role; its output is kept for failure reports.
func startChild(t testing.TB, role string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := childCmd(t, role, args...)
	out := new(syncBuffer)
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

// runChild runs a child in role to completion and fails the test if it fails.
func runChild(t testing.TB, role string, args ...string) string {
	t.Helper()
	cmd := childCmd(t, role, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s %q: %v\noutput:\n%s", role, args, err, out.String())
	}
	return out.String()
}

func childFail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

// syncBuffer is a bytes.Buffer safe to read while a child writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
