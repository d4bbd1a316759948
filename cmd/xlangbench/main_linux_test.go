//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mindmeld-go/shm/internal/childtest"
)

// runMainEnv makes the test binary run main, as the command would.
const runMainEnv = "XLANGBENCH_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" || os.Getenv(runMainEnv) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// command returns the test binary set to run main with args; the
// repository is found upward from this package's directory.
func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	return cmd
}

func needGCC(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not found")
	}
	childtest.SkipIfEmulated(t, "five pairs of busy processes under qemu-user take minutes")
}

// leftovers lists what a run of the process pid left behind: segments
// named after it in /dev/shm, its temporary directory, and processes whose
// command line names either (every child's does).
func leftovers(t *testing.T, pid int) []string {
	t.Helper()
	prefix := fmt.Sprintf("xlangbench-%d-", pid)
	var left []string
	ents, err := os.ReadDir("/dev/shm")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			left = append(left, "/dev/shm/"+e.Name())
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	left = append(left, dirs...)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(prefix)) {
			left = append(left, "process "+filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return left
}

// TestRun: a short run prints every row and ratio and leaves nothing.
func TestRun(t *testing.T) {
	needGCC(t)
	cmd := command(t, "-n", "1000", "-batches", "1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("xlangbench -n 1000 -batches 1: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"C baseline ring", "c/shm.h ring, C → C", "package ring, Go → Go", "Go → C", "C → Go",
		"(b)/(a)", "(d)/(c)", "(e)/(c)", "machine: nproc",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output has no %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "met") + strings.Count(out, "MISSED"); n != 3 {
		t.Errorf("output has %d verdicts (met or MISSED), want 3:\n%s", n, out)
	}
	if left := leftovers(t, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("xlangbench left %v", left)
	}
}

// TestRowMedian: the median of an odd count is the middle run, of an even
// count the mean of the middle two, whatever the order of the runs.
func TestRowMedian(t *testing.T) {
	var r Row
	for i, tc := range []struct{ x, best, median float64 }{
		{3, 3, 3}, {1, 3, 2}, {10, 10, 3}, {2, 10, 2.5},
	} {
		r.add(tc.x)
		if r.Best != tc.best || r.Median != tc.median {
			t.Errorf("after %d runs %v: best %v, median %v, want %v and %v", i+1, r.Runs, r.Best, r.Median, tc.best, tc.median)
		}
	}
}

// TestJSON: -json gives five rows with one figure each and three ratios.
func TestJSON(t *testing.T) {
	needGCC(t)
	cmd := command(t, "-n", "1000", "-batches", "1", "-json")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xlangbench -json: %v\n%s", err, out)
	}
	var rep Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("xlangbench -json printed %q: %v", out, err)
	}
	if len(rep.Rows) != 5 || len(rep.Ratios) != 3 {
		t.Fatalf("xlangbench -json: %d rows and %d ratios, want 5 and 3:\n%s", len(rep.Rows), len(rep.Ratios), out)
	}
	for _, r := range rep.Rows {
		if len(r.Runs) != 1 || r.Best <= 0 || r.Best != r.Runs[0] || r.Median != r.Runs[0] {
			t.Errorf("row %s: best %v, median %v of runs %v, want one positive run", r.Key, r.Best, r.Median, r.Runs)
		}
	}
}

// TestInterrupt: SIGINT while the baseline runs (its consumer is a fork of
// its own) and while a pair of peers runs on a ring exits 130 and leaves
// no segment, directory or process.
func TestInterrupt(t *testing.T) {
	needGCC(t)
	for _, tc := range []struct {
		name, n, while string
	}{
		{"baseline", "2000000000", "baseline\x00ring\x00"},
		{"ring", "20000000", "\x00produce\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, "-n", tc.n, "-batches", "1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprintf("xlangbench-%d-", cmd.Process.Pid)
			deadline := time.Now().Add(60 * time.Second)
			for children(prefix, tc.while) == 0 {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("no child with %q in its command line 60 s after the start\nstderr:\n%s", tc.while, stderr.String())
				}
				time.Sleep(2 * time.Millisecond)
			}
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if cmd.ProcessState.ExitCode() != 130 {
					t.Errorf("after SIGINT: %v (exit status %d), want exit status 130\nstderr:\n%s", err, cmd.ProcessState.ExitCode(), stderr.String())
				}
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatal("still running 20 s after SIGINT")
			}
			// A killed process can outlive its parent's wait by a moment.
			var left []string
			for range 100 {
				if left = leftovers(t, cmd.Process.Pid); len(left) == 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(left) > 0 {
				t.Errorf("xlangbench left %v after SIGINT", left)
			}
		})
	}
}

// children counts the processes whose command line names prefix (the
// run's rings and directory) and has what in it.
func children(prefix, what string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(prefix)) && bytes.Contains(b, []byte(what)) {
			n++
		}
	}
	return n
}

// TestNoGCC: without gcc on PATH the command says so.
func TestNoGCC(t *testing.T) {
	cmd := command(t, "-n", "1000", "-batches", "1")
	cmd.Env = append(cmd.Env, "PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "gcc not found") {
		t.Fatalf("xlangbench without gcc: %v, %q; want a failure saying gcc not found", err, out)
	}
}

// TestUsage: stray arguments and bad sizes are refused with a message.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"extra"}, {"-size", "4"}, {"-n", "1"}} {
		cmd := command(t, args...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("xlangbench %q succeeded, want a failure; output %q", args, out)
			continue
		}
		if s := bufio.NewScanner(bytes.NewReader(out)); !s.Scan() || !strings.Contains(s.Text(), "xlangbench") && !strings.Contains(s.Text(), "usage") {
			t.Errorf("xlangbench %q printed %q, want a message naming the command or its usage", args, out)
		}
	}
}
