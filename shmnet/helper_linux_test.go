package shmnet_test

// Helpers of the Linux-only tests.

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/mindmeld-go/shm/internal/childtest"
)

// countFds returns the number of open descriptors of this process (Linux).
func countFds(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// shmMappings returns the number of this process's mappings of shared
// memory objects: memfds and files in /dev/shm (Linux).
func shmMappings(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("cannot read /proc/self/maps: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "/memfd:") || strings.Contains(line, "/dev/shm/") {
			n++
		}
	}
	return n
}

// shmNames returns the names in /dev/shm (Linux).
func shmNames(t testing.TB) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/dev/shm")
	if err != nil {
		t.Skipf("cannot list /dev/shm: %v", err)
	}
	m := map[string]bool{}
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m
}

// harnessCommand returns a command running this test binary as a child in
// role.
func harnessCommand(t testing.TB, role string, args ...string) *exec.Cmd {
	return childtest.Command(t, role, args...)
}
