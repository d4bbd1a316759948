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
	spinIters  = 2000                   // polls before yielding
	yieldIters = 50                     // runtime.Gosched calls before sleeping, at least
	yieldTime  = 100 * time.Microsecond // and for at least this long
	soonSleep  = 10 * time.Millisecond
	// barrierlessSleep bounds each sleep when sleeperBarrier fails (RING-23).
	barrierlessSleep = time.Millisecond
)

// waitState carries one blocking call's progress from spinning to
// sleeping, and says when the caller should look at its peers (asking
// whether each lives): before the end first sleeps, after a watched peer
// went (notify), and every sleepMax. The time of the last look is kept in
// the end, so a busy end's calls do not each pay for one.
type waitState struct {
	e       *end
	n       int
	polling bool
	watch   func()         // before each sleep: watch peers that appeared (no system call unless one did)
	soon    *bool          // while *soon, sleep at most soonSleep (a dead producer's claim is pending)
	sleeps  *atomic.Uint64 // the statistics word counting this side's sleeps
	wctx    context.Context
	cancel  context.CancelFunc
	yield0  time.Time // when the yielding began
}

// oneCPU: this process may run on one CPU at a time (GOMAXPROCS follows the
// CPU set and, since Go 1.25, the cgroup's CPU limit).
var oneCPU = runtime.GOMAXPROCS(0) == 1

// yielding reports whether the call has yielded for less than yieldTime:
// a peer that takes tens of microseconds per message (a Python producer
// filling a megabyte) then finds this end awake, and its commit needs no
// system call to wake it.
func (w *waitState) yielding() bool {
	if oneCPU {
		// runtime.Gosched yields to goroutines, not to the peer process
		// that may need this CPU: do not hold it.
		return false
	}
	now := time.Now()
	if w.yield0.IsZero() {
		w.yield0 = now
	}
	return now.Sub(w.yield0) < yieldTime
}

func (w *waitState) done() {
	if w.cancel != nil {
		w.e.endWait()
		w.cancel = nil
	}
}

// A step is what pause tells its caller to do next.
type step int

const (
	pollAgain step = iota // it spun or yielded: poll again
	lookAgain             // it slept, or found ready, or polled 1024 times: look at everything again, the peers' states included
	lookPeers             // lookAgain, and ask whether the peers live
)

// pause waits a little for the condition ready reports, announcing the
// sleep in word first so that the peer wakes us. It returns ctx's error
// once ctx is done, and an error matching fs.ErrClosed once the end is
// closing.
//
// A peer that changes what the caller waits for (its state, not a
// position: a producer's close, say) wakes it only if the caller looks
// after it announced its sleep, so ready must test those changes too, and
// after any sleep the caller must look again at everything (lookAgain):
// the wake that ended this sleep may have been the last one coming.
func (w *waitState) pause(ctx context.Context, word *atomic.Uint32, ready func() bool) (step, error) {
	w.n++
	if w.n < spinIters {
		return pollAgain, nil
	}
	if err := ctx.Err(); err != nil {
		return pollAgain, err
	}
	e := w.e
	if e.closing.Load() {
		return pollAgain, e.errClosed()
	}
	if w.polling {
		if w.n%1024 != 0 {
			return pollAgain, nil
		}
		runtime.Gosched()
	} else if w.n < spinIters+yieldIters || w.yielding() {
		runtime.Gosched()
		return pollAgain, nil
	}
	// About to sleep (or, polling, every 1024 polls): look at the peers
	// first if one was reported gone, before the first sleep, and every
	// sleepMax.
	now := time.Now()
	if e.event.Swap(false) || e.checked.IsZero() || now.Sub(e.checked) >= sleepMax {
		e.checked = now
		return lookPeers, nil
	}
	if w.watch != nil {
		w.watch()
	}
	if w.polling {
		return lookAgain, nil
	}
	if w.wctx == nil || w.wctx.Err() != nil {
		w.wctx, w.cancel = e.waitCtx(ctx)
		if e.event.Load() || e.closing.Load() {
			return pollAgain, nil // seen at the next pause
		}
	}
	word.Store(1)
	// Between the announcement and the re-check, the barrier that stands
	// in for the wakers' own store-load fence (RING-23 step 1, RING-25).
	fenced := sleeperBarrier()
	if ready() {
		return lookAgain, nil
	}
	timeout := sleepMax - now.Sub(e.checked)
	if !fenced {
		// A waker that skips its fence could go unseen: bound the cost.
		timeout = min(timeout, barrierlessSleep)
	}
	if w.soon != nil && *w.soon {
		// A live process's stale claim announcement (it lost the tail
		// CAS and has not yet withdrawn it) can hold up the recovery of
		// a dead one's claim, and its withdrawal wakes nobody.
		timeout = min(timeout, soonSleep)
	}
	w.sleeps.Add(1)
	wait(w.wctx, word, 1, timeout)
	return lookAgain, ctx.Err()
}
