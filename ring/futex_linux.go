package ring

// Temporary: a process-shared futex for the ring until shm.Wait/shm.Wake
// (issue 3) are merged. The shared (non-private) operations are required
// across processes (futex(2)); unix.Syscall6 lets the scheduler run other
// goroutines while this thread blocks.

import (
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	futexWaitOp = 0 // FUTEX_WAIT, shared
	futexWakeOp = 1 // FUTEX_WAKE, shared
)

func futexWait(addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
	switch e {
	case 0, unix.EINTR, unix.EAGAIN:
		return nil
	case unix.ETIMEDOUT:
		return os.ErrDeadlineExceeded
	}
	return e
}

func futexWake(addr *atomic.Uint32, n int) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
