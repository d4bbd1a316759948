//go:build !linux && !darwin && !freebsd

package shm

import (
	"errors"
	"time"
)

// Systems without a cross-process wait/wake call known to this package fall
// back to polling: futexWait watches the word, spinning briefly and then
// sleeping in pauses of up to a millisecond (see pollWait), and futexWake
// has nothing to do. This is correct, as every waiter re-reads the word,
// but slower to react and not free while waiting.

func futexWait(addr *uint32, val uint32, timeout time.Duration) error {
	return pollWait(addr, val, timeout)
}

func futexWake(addr *uint32, n int) (int, error) { return 0, nil }

// processStart cannot tell here whether a process lives; callers treat the
// owner as alive, so a lock held by a dead process is never taken over.
func processStart(pid int) (uint64, error) {
	return 0, errors.ErrUnsupported
}
