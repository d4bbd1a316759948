//go:build !linux

package ring

// Temporary spin-then-sleep wait for platforms without a futex here, until
// shm.Wait/shm.Wake (issue 3) are merged. A waker changes the word before
// waking, so polling the word is enough.

import (
	"os"
	"sync/atomic"
	"time"
)

func futexWait(addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for d := 50 * time.Microsecond; addr.Load() == val; d = min(2*d, 5*time.Millisecond) {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return os.ErrDeadlineExceeded
		}
		time.Sleep(d)
	}
	return nil
}

func futexWake(addr *atomic.Uint32, n int) (int, error) { return 0, nil }
