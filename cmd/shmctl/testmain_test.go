//go:build linux

package main

// Test harness shared by every test file of shmctl (ls, gc, ring, lock...):
//
//   - children: roles for a second real process, this test binary
//     re-executed (internal/childtest). Test files add roles from init
//     functions: children["myrole"] = func(args []string) int { ... }.
//   - shmctlBin(t): the shmctl command, built once with "go build" into a
//     temporary directory removed when the suite ends; shmctl(t, args...)
//     runs it as a user would and returns its output and exit status.
//   - testName(t): a fresh segment name with the harness prefix, removed
//     when the test ends; the suite fails if a name with the prefix is left
//     in /dev/shm.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
)

// children maps a child role to the function the child runs.
var children = map[string]func(args []string) int{}

var harness = childtest.New("shmtest", shm.Unlink, children)

// testPrefix starts every name testName returns; gc in the tests is always
// restricted to it, so segments of other programs are never touched.
var testPrefix = harness.Prefix

func TestMain(m *testing.M) {
	harness.AfterRun = append(harness.AfterRun, func() {
		if buildDir != "" {
			os.RemoveAll(buildDir)
		}
	})
	harness.Main(m)
}

// testName returns a fresh segment name (without the leading slash),
// removed when the test ends.
func testName(t testing.TB) string { return harness.Name(t) }

var (
	buildOnce sync.Once
	buildDir  string // holds what tests built once; removed after the run
	buildErr  error
)

// tempBuildDir returns the directory shared by the files the tests build.
func tempBuildDir(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildDir, buildErr = os.MkdirTemp("", "shmctl-test-") })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  []byte
)

// shmctlBin returns the path of the shmctl command built from this
// directory with "go build", building it on first use.
func shmctlBin(t testing.TB) string {
	t.Helper()
	dir := tempBuildDir(t)
	binOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			binErr = err
			return
		}
		p := filepath.Join(dir, "shmctl")
		// go build -o, not go install: CI runs the tests with GOARCH=386 and
		// arm64 too, and go install refuses to put cross-compiled binaries in
		// a GOBIN. The binary is the one go install would make.
		binOut, binErr = exec.Command(goTool, "build", "-o", p, ".").CombinedOutput()
		binPath = p
	})
	if binErr != nil {
		t.Fatalf("building shmctl with go build: %v\n%s", binErr, binOut)
	}
	return binPath
}

// shmctl runs the built command and returns its output and exit status.
func shmctl(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(shmctlBin(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running shmctl %q: %v", args, err)
	}
	return o.String(), e.String(), code
}

// mustShmctl runs shmctl and fails the test unless it exits 0.
func mustShmctl(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, code := shmctl(t, args...)
	if code != 0 {
		t.Fatalf("shmctl %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
	}
	return out
}
