//go:build !linux && !darwin && !freebsd

package shm

import (
	"errors"
	"runtime"
	"sync/atomic"
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

// pollWait is the portable fallback for futexWait: it watches *addr,
// spinning (yielding the processor) for a few rounds, then sleeping with a
// pause that doubles from 1µs up to 1ms. It cannot be woken early, so a
// change is seen at most about a millisecond late.
func pollWait(addr *uint32, val uint32, timeout time.Duration) error {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	pause := time.Microsecond
	for i := 0; ; i++ {
		if atomic.LoadUint32(addr) != val {
			return nil
		}
		if timeout >= 0 && !time.Now().Before(deadline) {
			return errWaitTimeout
		}
		if i < 50 {
			runtime.Gosched()
			continue
		}
		d := pause
		if timeout >= 0 {
			d = min(d, time.Until(deadline))
		}
		time.Sleep(d)
		pause = min(2*pause, time.Millisecond)
	}
}
