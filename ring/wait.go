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
// wait also returns, with ctx's error, within about a millisecond of ctx
// being done, and touches the word no more once it has returned
// (shm.WaitContext).
func wait(ctx context.Context, addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	return shm.WaitContext(ctx, addr, val, timeout)
}

func wake(addr *atomic.Uint32, n int) (int, error) { return shm.Wake(addr, n) }

// Spinning before sleeping: a message usually arrives within a few
// microseconds on a busy ring, and a sleep plus wake-up costs tens of
// microseconds on a virtual machine.
const (
	spinIters  = 2000 // polls before yielding
	yieldIters = 50   // runtime.Gosched calls before sleeping
)

// waitState carries one blocking call's progress from spinning to
// sleeping, and says when the caller should look at its peers: before the
// first sleep, after a watched peer went (notify), and every sleepMax.
type waitState struct {
	e       *end
	n       int
	polling bool
	checked time.Time // last look at the peers; zero before the first
	wctx    context.Context
	cancel  context.CancelFunc
}

func (w *waitState) done() {
	if w.cancel != nil {
		w.e.endWait()
		w.cancel = nil
	}
}

// pause waits a little for the condition ready reports, announcing the
// sleep in word first so that the peer wakes us. It returns ctx's error
// once ctx is done, and an error matching fs.ErrClosed once the end is
// closing. check says that the caller should look at its peers now.
func (w *waitState) pause(ctx context.Context, word *atomic.Uint32, ready func() bool) (check bool, err error) {
	w.n++
	if w.n < spinIters {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	e := w.e
	if e.closed.Load() {
		return false, e.errClosed()
	}
	now := time.Now()
	if e.event.Swap(false) || w.checked.IsZero() || now.Sub(w.checked) >= sleepMax {
		w.checked = now
		return true, nil
	}
	if w.polling {
		if w.n%1024 == 0 {
			runtime.Gosched()
		}
		return false, nil
	}
	if w.n < spinIters+yieldIters {
		runtime.Gosched()
		return false, nil
	}
	if w.wctx == nil || w.wctx.Err() != nil {
		w.wctx, w.cancel = e.waitCtx(ctx)
		if e.event.Load() || e.closed.Load() {
			return false, nil // seen at the next pause
		}
	}
	word.Store(1)
	if ready() {
		return false, nil
	}
	wait(w.wctx, word, 1, sleepMax-now.Sub(w.checked))
	return false, ctx.Err()
}
