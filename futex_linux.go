package shm

// This file uses unsafe to pass the address of a shared word, and a
// timespec, to the futex system call.

import (
	"math"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futex(2) operations. golang.org/x/sys/unix has SYS_FUTEX but not the
// operation numbers (linux/include/uapi/linux/futex.h). We use the shared
// forms only: FUTEX_PRIVATE_FLAG (128) would key the wait on this process's
// address space, and a wake from another process would find nobody.
const (
	futexWaitOp = 0 // FUTEX_WAIT: relative timeout, CLOCK_MONOTONIC
	futexWakeOp = 1 // FUTEX_WAKE
)

// futexWait blocks while *addr == val, for at most timeout (no limit when
// timeout < 0). FUTEX_WAIT takes a relative timeout measured on
// CLOCK_MONOTONIC (futex(2)), so a change of the wall clock does not
// matter. A wait interrupted by a signal (EINTR) returns nil and the caller,
// which loops anyway, recomputes what is left of its timeout.
func futexWait(addr *uint32, val uint32, timeout time.Duration) error {
	var ts *unix.Timespec
	// A timeout past what a 32-bit time_t holds (68 years) is "no limit";
	// passing it would overflow Timespec on 386 and fail with EINVAL.
	if timeout >= 0 && timeout < math.MaxInt32*time.Second {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	// unix.Syscall6, not RawSyscall: it tells the scheduler this thread may
	// block, so other goroutines keep running.
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp,
		uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EINTR:
		// Woken, the word did not hold val, or a signal: all "look again".
		return nil
	case unix.ETIMEDOUT:
		return errWaitTimeout
	}
	return e
}

// futexWake wakes up to n waiters on addr and returns how many it woke.
func futexWake(addr *uint32, n int) (int, error) {
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	r, _, e := unix.Syscall(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, uintptr(n))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
