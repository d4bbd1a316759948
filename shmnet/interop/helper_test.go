package interop

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Tests that need a second process re-execute the test binary with
// childEnv naming a role, as os/exec's own tests do (the root module's
// internal/childtest, in small).
const childEnv = "SHMNET_INTEROP_CHILD"

var children = map[string]func(args []string) int{}

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		f, ok := children[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(3)
		}
		os.Exit(f(strings.Split(os.Getenv(childEnv+"_ARGS"), "\x1f")))
	}
	os.Exit(m.Run())
}

// startChild starts this binary in role and waits for it to print
// "ready"; the child is killed when the test ends.
func startChild(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, childEnv+"_ARGS="+strings.Join(args, "\x1f"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("child %s said %q, want \"ready\"", role, line)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("child %s did not get ready", role)
	}
	return cmd
}

var seq atomic.Int64

// sockPath returns a fresh, short socket path, removed with its directory
// when the test ends.
func sockPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shmnet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, fmt.Sprintf("s%d", seq.Add(1)))
}
