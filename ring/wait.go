package ring

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/mindmeld-go/shm"
)

// wait and wake are the cross-process wait/wake the ring sleeps on:
// futex on Linux, __ulock on macOS, _umtx_op on FreeBSD (see shm.Wait).
func wait(addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	return shm.Wait(addr, val, timeout)
}

func wake(addr *atomic.Uint32, n int) (int, error) { return shm.Wake(addr, n) }

// Spinning before sleeping: a message usually arrives within a few
// microseconds on a busy ring, and a sleep plus wake-up costs tens of
// microseconds on a virtual machine.
const (
	spinIters  = 2000 // polls before yielding
	yieldIters = 50   // runtime.Gosched calls before sleeping
)

// waitState carries one blocking call's progress from spinning to sleeping,
// and says when a liveness check of the peer is due.
type waitState struct {
	n       int
	since   time.Time // when this call started to yield or sleep
	checked time.Time // last liveness check
	stop    func() bool
	due     bool // a liveness check is due
	polling bool
}

func (w *waitState) done() {
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
}

// pause waits a little for the condition ready reports, announcing the
// sleep in word first so the peer wakes us. It returns ctx's error once ctx
// is done. After it returns, w.due says whether the caller should check on
// its peer.
func (w *waitState) pause(ctx context.Context, word *atomic.Uint32, ready func() bool) error {
	w.n++
	w.due = false
	if w.n < spinIters {
		return nil
	}
	if w.polling {
		if w.n%1024 != 0 {
			return nil
		}
		runtime.Gosched()
		if err := ctx.Err(); err != nil {
			return err
		}
		w.checkDue(time.Now())
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.n < spinIters+yieldIters {
		runtime.Gosched()
		return nil
	}
	now := time.Now()
	if w.checkDue(now) {
		return nil
	}
	if w.stop == nil && ctx.Done() != nil {
		w.stop = context.AfterFunc(ctx, func() {
			word.Store(0)
			wake(word, 1<<31-1)
		})
	}
	word.Store(1)
	if ready() {
		return nil
	}
	timeout := livenessEvery - now.Sub(w.checked)
	if dl, ok := ctx.Deadline(); ok && dl.Sub(now) < timeout {
		timeout = max(dl.Sub(now), 0)
	}
	wait(word, 1, timeout)
	return ctx.Err()
}

// checkDue sets w.due when livenessEvery has passed since the last check
// (or since waiting began).
func (w *waitState) checkDue(now time.Time) bool {
	if w.since.IsZero() {
		w.since, w.checked = now, now
		return false
	}
	if now.Sub(w.checked) >= livenessEvery {
		w.checked = now
		w.due = true
	}
	return w.due
}
