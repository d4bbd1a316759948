package shm

// TEMPORARY: replaced by the platforms branch (futex_darwin.go), which
// implements the native wait/wake call and processStart. The lead deletes
// this file at merge. Until then: the polling fallback and kill(pid, 0).

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func futexWait(addr *uint32, val uint32, timeout time.Duration) error {
	return pollWait(addr, val, timeout)
}

func futexWake(addr *uint32, n int) (int, error) { return 0, nil }

func processStart(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, os.ErrProcessDone
	}
	if err := unix.Kill(pid, 0); err == unix.ESRCH {
		return 0, os.ErrProcessDone
	}
	return 0, nil
}
