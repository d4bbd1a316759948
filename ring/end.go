package ring

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// end is what a Producer and a Consumer share: the bookkeeping that lets
// Close, from any goroutine, stop the calls running on the end and wait
// for them, the fault guard, and the watches on peer processes.
//
// A call brackets its work with enter and leave: enter stores busy and
// then loads closing; Close stores closing and then loads busy until it is
// clear (Dekker's pattern), so either the call sees closing and touches
// nothing, or Close sees busy and waits for leave. The store-to-load order
// this needs costs the caller nothing where Close can buy it for both
// sides: on Linux/amd64 Close runs membarrier(2), which makes every thread
// of the process execute a full barrier, and the call's stores are plain
// (x86-TSO gives the rest). Elsewhere the entry store is sequentially
// consistent (on arm64 an STLR, which is that already). The end is used by
// one goroutine at a time, so no atomic read-modify-write is needed.
type end struct {
	r       *Ring
	busy    atomic.Uint32 // 1 while a call runs
	closing atomic.Bool   // Close has begun
	stop    atomic.Bool   // closing, or fault set: enter refuses
	guard   bool          // r.guard: calls catch memory faults
	pof     bool          // the running call's saved panic-on-fault setting
	fault   error         // set once a call faulted: the end is unusable
	corrupt bool          // the end's corrupt error is counted (stats.go)

	// event is set, and the sleeping call's wait cancelled, when a watched
	// peer goes or Close begins. notify touches only this process's
	// memory, so it may run at any time, also after the ring is unmapped.
	event     atomic.Bool
	mu        sync.Mutex
	cancel    context.CancelFunc // of the sleeping call's wait context
	done      bool               // Close has begun
	closeDone chan struct{}      // closed when Close has finished

	watches []watch   // peers watched with AfterPeer, by slot (consumer) or one (producer)
	checked time.Time // last look at the peers (waitState.pause)
}

func (e *end) base() *end { return e }

// markClosing makes the end's calls give up: new ones at once, a sleeping
// one within about a millisecond.
func (e *end) markClosing() {
	e.closing.Store(true)
	e.stop.Store(true)
	e.notify()
}

// A watch is an AfterPeer registration for one token.
type watch struct {
	tok  uint64
	stop func() bool
}

// enter starts a call on the end. It reports false, touching nothing
// shared, once Close has begun or a fault has made the end unusable; the
// caller then returns refuse's error.
func (e *end) enter() bool {
	storeBusy(&e.busy)
	if e.stop.Load() {
		storeRelease(&e.busy, 0)
		return false
	}
	if e.guard {
		e.pof = debug.SetPanicOnFault(true)
	}
	return true
}

// refuse is the error of a call that enter refused.
func (e *end) refuse(what string) error {
	if e.closing.Load() {
		return fmt.Errorf("shm: ring %s: %s: %w", e.r.Name(), what, fs.ErrClosed)
	}
	if e.fault != nil {
		return e.fault
	}
	return fmt.Errorf("shm: ring %s: %s: refused", e.r.Name(), what)
}

// leave ends a call begun by enter; it is deferred, so that it can turn a
// memory fault (a peer shrank the segment) into the call's error in *errp,
// after which the end refuses every call but Close. Other panics pass
// through.
func (e *end) leave(errp *error) {
	if e.guard {
		debug.SetPanicOnFault(e.pof)
	}
	if x := recover(); x != nil {
		if _, ok := x.(interface{ Addr() uintptr }); !ok {
			storeRelease(&e.busy, 0)
			panic(x)
		}
		e.fault = faultErr(e.r.Name(), nil)
		e.stop.Store(true)
		*errp = e.fault
	} else if err := *errp; err != nil && err != ErrEmpty && err != ErrFull && !e.corrupt && errors.Is(err, ErrCorrupt) {
		e.countCorrupt()
	}
	storeRelease(&e.busy, 0)
}

// exit ends a call begun by enter on an end without a guard, where no
// fault can happen and leave need not be deferred.
func (e *end) exit() { storeRelease(&e.busy, 0) }

// faultErr is the error of a call that faulted on the ring's memory.
func faultErr(name string, err error) error {
	return fmt.Errorf("shm: ring %s: %w: memory fault, the segment was shrunk by another process: %w", name, ErrCorrupt, syscall.EFAULT)
}

// catchFault runs f and turns a memory fault in it into an error, as the
// root package's catchFault does for ReadAt and WriteAt.
func catchFault(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if x := recover(); x != nil {
			if _, ok := x.(interface{ Addr() uintptr }); !ok {
				panic(x)
			}
			err = syscall.EFAULT
		}
	}()
	f()
	return nil
}

// notify wakes the end's sleeping call, if any, so that it looks again at
// its peers and at closing. It touches only this process's memory.
func (e *end) notify() {
	e.event.Store(true)
	e.mu.Lock()
	if e.cancel != nil {
		e.cancel()
	}
	e.mu.Unlock()
}

// beginClose marks the end closed and wakes its calls; it reports false
// if Close had begun already.
func (e *end) beginClose() bool {
	e.mu.Lock()
	if e.done {
		ch := e.closeDone
		e.mu.Unlock()
		<-ch // a concurrent Close (or Ring.Close) finishes first
		return false
	}
	e.done = true
	e.closeDone = make(chan struct{})
	e.mu.Unlock()
	e.markClosing()
	return true
}

// finishClose lets other Close calls return.
func (e *end) finishClose() { close(e.closeDone) }

// drain waits until no call runs on the end. After beginClose a call sees
// closing at its entry, or is woken from its sleep within about a
// millisecond (shm.WaitContext), and a call that is not asleep leaves in
// bounded time.
func (e *end) drain() {
	if asymmetric {
		heavyBarrier() // a call's busy store before it, or its closing load after it
	}
	for i := 0; e.busy.Load() != 0; i++ {
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// stopWatches ends every AfterPeer registration of the end. A callback
// already running may still call notify, which is harmless.
func (e *end) stopWatches() {
	for i := range e.watches {
		if e.watches[i].stop != nil {
			e.watches[i].stop()
		}
		e.watches[i] = watch{}
	}
}

// watchPeer makes sure that watches[i] watches tok (0: nothing).
func (e *end) watchPeer(i int, tok uint64) {
	w := &e.watches[i]
	if w.tok == tok && (w.stop != nil || tok == 0) {
		return
	}
	if w.stop != nil {
		w.stop()
	}
	*w = watch{tok: tok}
	if tok != 0 && tok != e.r.tok {
		w.stop = e.r.seg.AfterPeer(tok, e.notify)
	}
}

// waitCtx returns the context a sleep of the running call waits with: ctx,
// also cancelled by notify. The call ends it with endWait.
func (e *end) waitCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	e.cancel = cancel
	e.mu.Unlock()
	return wctx, cancel
}

// endWait forgets the running call's wait context.
func (e *end) endWait() {
	e.mu.Lock()
	if e.cancel != nil {
		e.cancel()
		e.cancel = nil
	}
	e.mu.Unlock()
}

func (e *end) errClosed() error {
	return fmt.Errorf("shm: ring %s: %w", e.r.Name(), fs.ErrClosed)
}
