package shm

// This file uses unsafe in futexWord only: to find the 32-bit half of the
// lock word that waiters sleep on.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
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
// Owner death: the Mutex records the locking process's identity (its PID
// and start time). A process waiting for the lock checks every 50ms whether
// that process still lives; if it died (killed, crashed, or exited while
// holding the lock), the waiter takes the lock over. [Mutex.LockContext]
// then returns [ErrOwnerDead] with the lock held; [Mutex.Lock], which
// cannot return an error, takes the lock silently. Use LockContext where
// the guarded data could be left inconsistent by a crash. The start time
// guards against PID reuse: a new process that was given the dead owner's
// PID is not mistaken for it.
//
// All processes sharing a Mutex must be in the same PID namespace (on Linux,
// the same container, or the host): a process's PID means nothing in
// another namespace, and a waiter there could take for dead an owner that
// lives. Where the platform cannot tell whether a process lives, owners are
// presumed alive and a dead owner's lock is never taken over.
//
// Layout: a Mutex is 8 bytes, one 64-bit word, and must be 8-byte aligned;
// [View] checks that. Its low 32 bits are the word waiters sleep on: 0 when
// unlocked, else the owner's PID, with bit 31 set when processes may be
// waiting. The high 32 bits identify the owner's start time. A peer that
// writes garbage into the word cannot crash this process: LockContext still
// honours its context, and garbage that names no live process is taken over
// as a dead owner.
type Mutex struct {
	w atomic.Uint64
}

const (
	mutexPidMask = 1<<30 - 1
	mutexWaiters = 1 << 31
	// mutexIDMask covers the bits that identify an owner.
	mutexIDMask = 0xffffffff<<32 | mutexPidMask
	// mutexPoll bounds each sleep of a waiter, and so how soon it notices
	// an owner's death (and any wake-up lost with a dying waiter).
	mutexPoll = 50 * time.Millisecond
)

// Lock locks m, waiting as long as it takes. If the previous owner died
// holding the lock, Lock takes it over without saying so: use
// [Mutex.LockContext] to be told.
func (m *Mutex) Lock() {
	if !m.w.CompareAndSwap(0, selfOwner()) {
		m.lockWait()
	}
}

// lockWait is Lock's slow path, out of line so that Lock inlines.
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
		if lo&mutexPidMask != uint32(own) {
			if lo == 0 {
				panic("shm: Unlock of unlocked Mutex")
			}
			panic(fmt.Sprintf("shm: Unlock of Mutex held by process %d, not this process (%d)", lo&mutexPidMask, uint32(own)))
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
// is 0 (unlocked) or the owner's PID with mutexWaiters set once someone
// sleeps. A waiter that acquires sets mutexWaiters itself, since it cannot
// know whether others still sleep (U. Drepper, "Futexes Are Tricky",
// mutex #2), so the unlock that follows wakes one of them.
func (m *Mutex) lockSlow(ctx context.Context) error {
	own := selfOwner()
	ownW := own | mutexWaiters
	addr := m.futexWord()
	deadline, hasDeadline := ctx.Deadline()
	if ctx.Done() != nil {
		// Cancellation wakes every sleeper on the word; the others see a
		// spurious wake-up and sleep again.
		stop := context.AfterFunc(ctx, func() { futexWake(addr, math.MaxInt32) })
		defer stop()
	}
	lastCheck := time.Now()
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
		if lo&mutexWaiters == 0 {
			if !m.w.CompareAndSwap(v, v|mutexWaiters) {
				continue
			}
			v |= mutexWaiters
			lo |= mutexWaiters
		}
		wait := mutexPoll
		if hasDeadline {
			left := time.Until(deadline)
			if left <= 0 {
				return context.DeadlineExceeded
			}
			wait = min(wait, left)
		}
		if err := futexWait(addr, lo, wait); err != nil && err != errWaitTimeout {
			return fmt.Errorf("shm: waiting for Mutex: %w", err)
		}
		if time.Since(lastCheck) >= mutexPoll {
			lastCheck = time.Now()
			if ownerDead(v) && m.takeOver(v, ownW) {
				return ErrOwnerDead
			}
		}
	}
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

// ownerDead reports whether the owner recorded in lock word v is known to
// have died: its PID names no live process, or names one that started at
// another time (the PID was reused). An owner whose state cannot be found
// out is presumed alive.
func ownerDead(v uint64) bool {
	pid := int(uint32(v) & mutexPidMask)
	tok := uint32(v >> 32)
	start, err := processStart(pid)
	if errors.Is(err, os.ErrProcessDone) {
		return true
	}
	if err != nil {
		return false
	}
	return tok != 0 && start != 0 && foldStart(start) != tok
}

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

// self is this process's owner identity, as stored in a locked Mutex: the
// folded start time in the high 32 bits, the PID in the low. 0 until first
// use.
var self atomic.Uint64

func selfOwner() uint64 {
	if v := self.Load(); v != 0 {
		return v
	}
	return initSelfOwner()
}

func initSelfOwner() uint64 {
	pid := os.Getpid()
	if pid <= 0 || pid > mutexPidMask {
		panic(fmt.Sprintf("shm: process ID %d does not fit in a Mutex", pid))
	}
	var tok uint32
	if start, err := processStart(pid); err == nil {
		tok = foldStart(start)
	}
	v := uint64(tok)<<32 | uint64(pid)
	self.Store(v)
	return v
}
