package shm

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func init() {
	children["createmmapfail"] = childCreateMmapFail
}

// childCreateMmapFail lowers RLIMIT_AS to what the process uses plus 256 MiB
// (room for the runtime, and the race detector, to keep allocating), so
// that mapping a new 1 GiB segment fails, and reports what Create said.
func childCreateMmapFail(args []string) int {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return childFail("%v", err)
	}
	var vmKB uint64
	for _, line := range bytes.Split(status, []byte("\n")) {
		if f := bytes.Fields(line); len(f) >= 2 && string(f[0]) == "VmSize:" {
			vmKB, _ = strconv.ParseUint(string(f[1]), 10, 64)
		}
	}
	if vmKB == 0 {
		return childFail("no VmSize in /proc/self/status")
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &old); err != nil {
		return childFail("getrlimit: %v", err)
	}
	lim := unix.Rlimit{Cur: vmKB<<10 + 256<<20, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_AS, &lim); err != nil {
		return childFail("setrlimit: %v", err)
	}
	s, err := Create(args[0], 1<<30)
	unix.Setrlimit(unix.RLIMIT_AS, &old)
	if err == nil {
		s.Close()
		return childFail("Create under a low RLIMIT_AS succeeded; cannot test the failure")
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "mmap" {
		return childFail("Create under a low RLIMIT_AS = %v, want a *fs.PathError with Op mmap", err)
	}
	return 0
}

// TestCreateMmapFailLeavesNothing: a Create whose mmap fails after the name
// was published must remove the name again.
func TestCreateMmapFailLeavesNothing(t *testing.T) {
	skipIfEmulated(t, emuRlimitAS)
	name := testName(t)
	runChild(t, "createmmapfail", name)
	if ok, err := Exists(name); err != nil || ok {
		t.Fatalf("after a Create that failed in mmap, Exists(%q) = %v, %v; want false, nil", name, ok, err)
	}
}
