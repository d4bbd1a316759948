package shm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// ErrSemaphoreOverflow is returned by [Semaphore.Post] when the count is
// already at its maximum, math.MaxInt32 (sem_post's EOVERFLOW).
var ErrSemaphoreOverflow = errors.New("shm: semaphore count at its maximum")

// A Semaphore is a counting semaphore that works between processes when it
// lies in shared memory, like a POSIX semaphore made with
// sem_init(sem, 1, 0). Place it with [View], alone or in a struct. Its zero
// value has a count of 0. It is 8 bytes, two 32-bit words: the count, which
// waiters sleep on, and the number of processes that may be sleeping, so
// that [Semaphore.Post] makes a system call only when someone waits. A
// Semaphore must not be copied after first use.
//
// Post and a Wait that finds a positive count use atomic operations only.
// A sleeping waiter wakes at least once a second to look at the count again,
// so a wake-up lost with a process that died while being woken delays the
// others by that much at most. A peer that writes garbage into the words
// can make the count wrong, but cannot make a call crash, and cannot make
// [Semaphore.WaitContext] overstay its context.
type Semaphore struct {
	count   atomic.Uint32
	waiters atomic.Uint32
}

// semPoll bounds each sleep of a waiter.
const semPoll = time.Second

// Post adds one to the count, waking one waiter if any sleeps. It returns
// [ErrSemaphoreOverflow], changing nothing, if the count is already
// math.MaxInt32.
func (s *Semaphore) Post() error {
	for {
		c := s.count.Load()
		if c >= math.MaxInt32 {
			return fmt.Errorf("%w (%d)", ErrSemaphoreOverflow, c)
		}
		if s.count.CompareAndSwap(c, c+1) {
			break
		}
	}
	if s.waiters.Load() != 0 {
		futexWake(wordAddr(&s.count), 1)
	}
	return nil
}

// TryWait takes one from the count if it is positive, and reports whether
// it did. It never waits.
func (s *Semaphore) TryWait() bool {
	for {
		c := s.count.Load()
		if c == 0 {
			return false
		}
		if s.count.CompareAndSwap(c, c-1) {
			return true
		}
	}
}

// Wait takes one from the count, waiting as long as it takes for the count
// to be positive.
func (s *Semaphore) Wait() {
	if s.TryWait() {
		return
	}
	if err := s.waitSlow(context.Background()); err != nil {
		panic(err) // the futex call itself failed: the word is not usable memory
	}
}

// WaitContext takes one from the count, waiting until the count is positive
// or ctx is done. It returns nil when it took one, or ctx.Err() having taken
// nothing. If the count is positive, it takes one even when ctx is already
// done.
func (s *Semaphore) WaitContext(ctx context.Context) error {
	if s.TryWait() {
		return nil
	}
	return s.waitSlow(ctx)
}

// Value returns the count: how many Wait calls would not block now.
func (s *Semaphore) Value() int {
	return int(min(s.count.Load(), math.MaxInt32))
}

// waitSlow sleeps on the count while it is 0. The waiter announces itself
// in s.waiters before looking at the count, and Post changes the count
// before looking at s.waiters; sync/atomic's operations are sequentially
// consistent, so either the waiter sees the new count or Post sees the
// waiter and wakes it, and the futex compares and sleeps atomically.
func (s *Semaphore) waitSlow(ctx context.Context) error {
	addr := wordAddr(&s.count)
	deadline, hasDeadline := ctx.Deadline()
	s.waiters.Add(1)
	for {
		if s.TryWait() {
			s.waiters.Add(^uint32(0))
			return nil
		}
		wait := semPoll
		err := ctx.Err()
		if err == nil && hasDeadline {
			wait = min(wait, time.Until(deadline))
			if wait <= 0 {
				err = context.DeadlineExceeded
			}
		}
		if err != nil {
			s.leave()
			return err
		}
		if err := waitContext(ctx, addr, 0, wait); err != nil && err != errWaitTimeout {
			s.leave()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err == context.DeadlineExceeded {
				return err // the sleep ended at ctx's deadline, before its timer
			}
			return fmt.Errorf("shm: waiting for Semaphore: %w", err)
		}
	}
}

// leave withdraws a waiter that gives up. A Post may have chosen it to wake
// just before; if the count is still positive and others sleep, it passes
// that wake-up on, so none is lost.
func (s *Semaphore) leave() {
	s.waiters.Add(^uint32(0))
	if s.count.Load() != 0 && s.waiters.Load() != 0 {
		futexWake(wordAddr(&s.count), 1)
	}
}
