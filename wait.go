package shm

// This file uses unsafe in wordAddr only: to hand the word inside an
// atomic.Uint32 to the wait and wake system calls.

import (
	"math"
	"os"
	"sync/atomic"
	"time"
	"unsafe"
)

// Wait blocks while the 32-bit word at addr holds val, for at most timeout
// (a negative timeout means no limit). It is the building block of [Mutex]
// and [Semaphore], exported so that programs can build their own
// primitives on words in shared memory; another process wakes it with
// [Wake] on the same word, through its own mapping.
//
// Wait returns nil when it was woken, when the word did not hold val on
// entry, or spuriously (a signal, a wake meant for another value): callers
// must re-check the word in a loop. On timeout it returns an error matching
// os.ErrDeadlineExceeded. The comparison and the sleep are atomic with
// respect to Wake: a Wake issued after the word changed is never missed.
//
// On Linux Wait is futex(2) FUTEX_WAIT in its process-shared form, on macOS
// __ulock_wait with UL_COMPARE_AND_WAIT_SHARED, on FreeBSD _umtx_op
// UMTX_OP_WAIT_UINT. Elsewhere it polls the word, spinning briefly and then
// sleeping with growing pauses of up to a millisecond; Wake is then a no-op.
// A blocked Wait occupies one OS thread, as any blocking system call does;
// other goroutines keep running.
//
// addr must be 4-byte aligned (an atomic.Uint32 in a struct placed with
// [View] is). It need not be in shared memory.
func Wait(addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	return futexWait(wordAddr(addr), val, timeout)
}

// Wake wakes up to n goroutines, in this or any other process, blocked in
// [Wait] on the word at addr, and returns how many it woke (0 where the
// platform cannot tell, or in the polling fallback). Pass math.MaxInt32 to
// wake all. Change the word before calling Wake, so that a waiter that has
// not yet gone to sleep sees the new value instead.
func Wake(addr *atomic.Uint32, n int) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	return futexWake(wordAddr(addr), n)
}

// wordAddr returns the address of the word inside an atomic.Uint32, for
// the system calls.
func wordAddr(a *atomic.Uint32) *uint32 { return (*uint32)(unsafe.Pointer(a)) }

// errWaitTimeout is what futexWait returns on timeout.
var errWaitTimeout error = waitTimeoutError{}

type waitTimeoutError struct{}

func (waitTimeoutError) Error() string        { return "shm: wait timed out" }
func (waitTimeoutError) Timeout() bool        { return true }
func (waitTimeoutError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

// ProcessStart returns a token that identifies the running process pid: its
// start time, as the platform records it (on Linux, field 22 of
// /proc/PID/stat; on macOS and FreeBSD, the kern.proc.pid sysctl). A later
// process given the same PID gets a different token, so a program that
// stores a PID in shared memory can store the token beside it and tell a
// dead peer from a reused PID.
//
// Prefer [ProcessToken] with [Segment.PeerAlive]: a PID is meaningless in
// another PID namespace, and a process whose main thread has exited shows
// as a zombie here while its other threads run. On macOS and FreeBSD the
// library's own tokens are built from this start time.
//
// It returns an error matching os.ErrProcessDone if pid names no process,
// or a zombie. A token of 0 means the platform gives no start time (only
// whether the process exists). Any other error means the answer is unknown:
// treat the process as alive. Where the platform cannot tell at all, the
// error matches errors.ErrUnsupported. Tokens are comparable only on one
// host and within one PID namespace.
func ProcessStart(pid int) (uint64, error) { return processStart(pid) }
