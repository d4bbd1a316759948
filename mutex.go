package shm

// This file uses unsafe in futexWord only: to find the 32-bit half of the
// lock word that waiters sleep on.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrOwnerDead is returned, by [Mutex.LockContext], together with the lock,
// when the process that held the lock died without unlocking it. Whatever
// the lock guarded may be half updated: check or repair it before
// unlocking. It is the EOWNERDEAD of a robust POSIX mutex.
var ErrOwnerDead = errors.New("shm: previous owner died holding the lock")

// A Mutex is a mutual exclusion lock that works between processes when it
// lies in shared memory. Place it with [View], alone or as a field of a
// struct that also holds the data it guards. It holds no pointers, and its
// zero value is an unlocked mutex, so a freshly created (zero-filled)
// segment needs no initialisation. A Mutex must not be copied after first
// use.
//
// The Mutex is held by a process, not by a goroutine: like [sync.Mutex],
// it may be unlocked by another goroutine of the process that locked it,
// and locking it twice in one process without unlocking deadlocks.
//
// Owner death: the Mutex records the locking process's token
// ([ProcessToken]). A process waiting for the lock asks the kernel, through
// the segment the Mutex lies in ([Segment.AfterPeer]), to be told when the
// owner no longer maps that segment: it was killed, crashed, exited, or
// closed the segment while holding the lock. The waiter then takes the lock
// over, within microseconds on Linux. [Mutex.LockContext] returns
// [ErrOwnerDead] with the lock held; [Mutex.Lock], which cannot return an
// error, takes the lock silently. Use LockContext where the guarded data
// could be left inconsistent by a crash. While the owner lives, a waiter
// sleeps in the kernel and looks around once a second at most.
//
// On Linux this holds across PID namespaces (containers that share
// /dev/shm) and for a process whose main thread has exited while others
// run: the proof of life is a lock the kernel keeps for the owner's open
// segment, not its PID. On macOS and FreeBSD the token is the owner's PID
// and start time, which is valid only within one PID namespace (jail), and
// death is noticed within a second. A Mutex that lies outside any Segment
// of this process (in memory mapped by other means) has no owner checks: a
// dead owner's lock is never taken over.
//
// Layout (version 2): a Mutex is 8 bytes, one 64-bit word, and must be
// 8-byte aligned; [View] checks that. Its low 32 bits are the word waiters
// sleep on: 0 when unlocked; else the low 30 bits of the owner's token,
// with bit 31 set when processes may be waiting (bit 30 is 0). The high 32
// bits hold the token's bits 30 and up. A peer that writes garbage into the
// word cannot crash this process: LockContext still honours its context,
// and garbage that names no live process is taken over as a dead owner.
type Mutex struct {
	w atomic.Uint64
}

const (
	mutexPidMask = 1<<30 - 1
	mutexWaiters = 1 << 31
	// mutexIDMask covers the bits that identify an owner.
	mutexIDMask = 0xffffffff<<32 | mutexPidMask
	// mutexPoll bounds each sleep of a waiter: the backstop for a death
	// notice that could not be had, and for a wake-up lost with a dying
	// waiter.
	mutexPoll = time.Second
)

// Lock locks m, waiting as long as it takes. If the previous owner died
// holding the lock, Lock takes it over without saying so: use
// [Mutex.LockContext] to be told.
func (m *Mutex) Lock() {
	if !m.w.CompareAndSwap(0, selfOwner()) {
		m.lockWait()
	}
}

// lockWait is Lock's slow path, out of line to keep Lock small.
func (m *Mutex) lockWait() {
	if err := m.lockSlow(context.Background()); err != nil && err != ErrOwnerDead {
		panic(err)
	}
}

// TryLock locks m if it is unlocked and reports whether it did. It does not
// wait, and so never takes over from a dead owner.
func (m *Mutex) TryLock() bool {
	v := m.w.Load()
	return uint32(v) == 0 && m.w.CompareAndSwap(v, selfOwner())
}

// LockContext locks m, waiting until ctx is done. It returns nil with the
// lock held; an error matching [ErrOwnerDead] with the lock held, when it
// took the lock over from a process that died holding it; or ctx.Err()
// (context.Canceled, context.DeadlineExceeded) without the lock. If the
// lock is free, LockContext takes it even when ctx is already done.
func (m *Mutex) LockContext(ctx context.Context) error {
	if m.w.CompareAndSwap(0, selfOwner()) {
		return nil
	}
	return m.lockSlow(ctx)
}

// Unlock unlocks m. It panics if m is not locked by this process (it is
// unlocked, or another process holds it), as unlocking a [sync.Mutex] that
// is not locked is an error; unlike sync.Mutex's, the panic can be
// recovered, because it may be another process that corrupted the word.
func (m *Mutex) Unlock() {
	if own := selfOwner(); !m.w.CompareAndSwap(own, 0) {
		m.unlockSlow(own)
	}
}

func (m *Mutex) unlockSlow(own uint64) {
	for {
		v := m.w.Load()
		lo := uint32(v)
		if v&mutexIDMask != own {
			if lo == 0 {
				panic("shm: Unlock of unlocked Mutex")
			}
			panic(fmt.Sprintf("shm: Unlock of Mutex held by another process (token %#x), not this process (%#x)", ownerToken(v), ownerToken(own)))
		}
		if m.w.CompareAndSwap(v, 0) {
			if lo&mutexWaiters != 0 {
				futexWake(m.futexWord(), 1)
			}
			return
		}
	}
}

// lockSlow waits for the lock until ctx is done. The word's low half
// is 0 (unlocked) or the owner's token with mutexWaiters set once someone
// sleeps. A waiter that acquires sets mutexWaiters itself, since it cannot
// know whether others still sleep (U. Drepper, "Futexes Are Tricky",
// mutex #2), so the unlock that follows wakes one of them.
//
// While it sleeps, the waiter has the owner's segment tell it when the
// owner goes (Segment.AfterPeer), which cancels the context it sleeps
// with; it then checks, and takes a dead owner's lock over.
func (m *Mutex) lockSlow(ctx context.Context) error {
	own := selfOwner()
	ownW := own | mutexWaiters
	addr := m.futexWord()
	seg := segmentAt(unsafe.Pointer(&m.w), 8)
	var w ownerWatch
	defer w.stop()
	for {
		v := m.w.Load()
		lo := uint32(v)
		if lo == 0 {
			if m.w.CompareAndSwap(v, ownW) {
				return nil
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		tok := ownerToken(v)
		wctx := ctx
		if seg != nil && v&mutexIDMask != own {
			if w.gone(seg, tok) {
				if m.takeOver(v, ownW) {
					return ErrOwnerDead
				}
				continue
			}
			wctx = w.watch(ctx, seg, tok)
		}
		if lo&mutexWaiters == 0 {
			if !m.w.CompareAndSwap(v, v|mutexWaiters) {
				continue
			}
			lo |= mutexWaiters
		}
		err := waitContext(wctx, addr, lo, mutexPoll)
		switch {
		case err == nil || err == errWaitTimeout:
			if err == errWaitTimeout {
				w.checkNext = true
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case err == context.DeadlineExceeded:
			return err // the sleep ended at ctx's deadline, before its timer
		case wctx.Err() != nil:
			// The owner went; gone checks at the top of the loop.
		default:
			return fmt.Errorf("shm: waiting for Mutex: %w", err)
		}
	}
}

// ownerWatch is a waiter's watch on one owner.
type ownerWatch struct {
	tok       uint64
	ctx       context.Context
	cancel    context.CancelFunc
	stopPeer  func() bool
	checkNext bool // ask the kernel on the next round (backstop)
}

// watch returns a context that is done when ctx is, or when the owner tok
// no longer maps seg.
func (w *ownerWatch) watch(ctx context.Context, seg *Segment, tok uint64) context.Context {
	if w.ctx != nil && w.tok == tok && w.ctx.Err() == nil {
		return w.ctx
	}
	w.stop()
	w.tok = tok
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.stopPeer = seg.AfterPeer(tok, w.cancel)
	return w.ctx
}

// gone reports whether owner tok is known to have let go of seg. It asks
// the kernel only when the watch fired, after a backstop timeout, or for a
// new owner; otherwise a live owner's every wake-up would cost a system
// call.
func (w *ownerWatch) gone(seg *Segment, tok uint64) bool {
	fired := w.ctx != nil && w.tok == tok && w.ctx.Err() != nil
	if w.tok == tok && w.ctx != nil && !fired && !w.checkNext {
		return false
	}
	w.checkNext = false
	return !seg.PeerAlive(tok)
}

func (w *ownerWatch) stop() {
	if w.stopPeer != nil {
		w.stopPeer()
		w.stopPeer = nil
	}
	if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
	w.ctx = nil
}

// takeOver replaces the dead owner recorded in v by ownW and reports
// whether it did. It fails if the word no longer names that owner: another
// waiter took over first, or the word changed in some other way; then the
// caller starts again from the word's new value. Only one of several
// waiters that saw the same dead owner can win the compare-and-swap.
func (m *Mutex) takeOver(v, ownW uint64) bool {
	for range 100 {
		cur := m.w.Load()
		if cur&mutexIDMask != v&mutexIDMask {
			return false
		}
		if m.w.CompareAndSwap(cur, ownW) {
			return true
		}
	}
	return false
}

// ownerToken returns the token recorded in lock word v.
func ownerToken(v uint64) uint64 { return uint64(uint32(v)&mutexPidMask) | (v>>32)<<30 }

// ownerWord returns the lock word that records token tok.
func ownerWord(tok uint64) uint64 { return tok&mutexPidMask | (tok>>30)<<32 }

// futexWord returns the address of the low 32 bits of the lock word, the
// part waiters sleep on.
func (m *Mutex) futexWord() *uint32 {
	p := unsafe.Pointer(&m.w)
	if bigEndian {
		p = unsafe.Add(p, 4)
	}
	return (*uint32)(p)
}

var bigEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()

// foldStart folds a process start time into the 32 bits the lock word has
// for it; 0 is kept for "unknown".
func foldStart(start uint64) uint32 {
	if start == 0 {
		return 0
	}
	x := uint32(start) ^ uint32(start>>32)
	if x == 0 {
		x = 1
	}
	return x
}

// self caches this process's identity as stored in a locked Mutex
// (ownerWord of its token); 0 until first use. A load of it is all the
// fast paths pay.
var self atomic.Uint64

func selfOwner() uint64 {
	if v := self.Load(); v != 0 {
		return v
	}
	return initSelfOwner()
}

func initSelfOwner() uint64 {
	v := ownerWord(selfToken())
	self.Store(v)
	return v
}
