package shm

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// waitContext is WaitContext on a raw word.
//
// Cancellation cannot change the word the sleeper compares (it is shared
// memory, and the caller's), so it wakes the sleeper instead. A wake that
// lands between the sleeper's last look at ctx and its entry into the
// kernel would be lost and the sleep would last its whole timeout, so the
// canceller repeats the wake for as long as the sleeper says it is
// sleeping. The sleeper then waits for a canceller that has started, under
// the same lock, before it returns: no wake-up is issued on the word after
// the call has returned, and the mapping may be closed at once.
func waitContext(ctx context.Context, addr *uint32, val uint32, timeout time.Duration) error {
	if ctx.Done() == nil {
		return futexWait(addr, val, timeout)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, byDeadline := ctx.Deadline()
	if byDeadline {
		left := time.Until(dl)
		if left <= 0 {
			return context.DeadlineExceeded
		}
		if timeout < 0 || left < timeout {
			timeout = left
		} else {
			byDeadline = false
		}
	}
	k := &kicker{addr: addr}
	stop := context.AfterFunc(ctx, k.kick)
	k.sleeping.Store(true)
	var err error
	if ctx.Err() == nil {
		err = futexWait(addr, val, timeout)
	}
	k.sleeping.Store(false)
	if !stop() {
		k.finish()
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err == errWaitTimeout && byDeadline {
		// The sleep ended at the deadline, a moment before the context's
		// own timer marks it done.
		return context.DeadlineExceeded
	}
	return err
}

// A kicker wakes one sleeper on a shared word from another goroutine until
// the sleeper has left its sleep. See waitContext.
type kicker struct {
	addr     *uint32
	sleeping atomic.Bool
	mu       sync.Mutex
	done     bool
}

// kick wakes the sleeper, repeating until it is no longer asleep. Waking
// every sleeper on the word is harmless: the others see a spurious
// wake-up, which Wait's callers handle. The lock is held only around each
// wake, so that the sleeper, once up, is not held back by the pauses.
// (Pauses are yields at first: on a virtual machine a 50µs time.Sleep
// lasts about a millisecond, measured here.)
func (k *kicker) kick() {
	for i := 0; ; i++ {
		k.mu.Lock()
		if k.done || !k.sleeping.Load() {
			k.mu.Unlock()
			return
		}
		futexWake(k.addr, math.MaxInt32)
		k.mu.Unlock()
		if i < 200 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// finish waits for a kick that has started and stops later ones from
// touching the word.
func (k *kicker) finish() {
	k.mu.Lock()
	k.done = true
	k.mu.Unlock()
}
