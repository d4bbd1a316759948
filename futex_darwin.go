package shm

// This file uses unsafe to pass the address of a shared 32-bit word to
// __ulock_wait/__ulock_wake in libSystem, called as in shm_darwin.go.

import (
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Constants from xnu bsd/sys/ulock.h.
const (
	// ulCompareAndWaitShared waits on a 32-bit word keyed by the memory
	// object and offset, so waiters and wakers in different processes
	// mapping the same segment meet (macOS 10.15 and later).
	ulCompareAndWaitShared = 3
	// ulfWakeAll wakes every waiter instead of one.
	ulfWakeAll = 0x00000100
	// wakeAllAbove: futexWake asks for ULF_WAKE_ALL instead of waking one
	// waiter at a time when n exceeds it. Waking more than n is a spurious
	// wake-up for the extra waiters, which futexWait callers tolerate.
	wakeAllAbove = 64
)

var (
	shmpkg_ulock_wait_trampoline_addr uintptr
	shmpkg_ulock_wake_trampoline_addr uintptr
)

// __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us)
// __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value)
// exported by libsystem_kernel since macOS 10.12 (xnu bsd/sys/ulock.h).

//go:cgo_import_dynamic shmpkg_ulock_wait __ulock_wait "/usr/lib/libSystem.B.dylib"
//go:cgo_import_dynamic shmpkg_ulock_wake __ulock_wake "/usr/lib/libSystem.B.dylib"

// futexWait blocks while *addr == val, for at most timeout (no limit if
// timeout < 0). It returns nil when woken, when the value differed, or
// spuriously, and an error matching os.ErrDeadlineExceeded on timeout.
//
// __ulock_wait takes its timeout in microseconds in a uint32, with 0 meaning
// no limit (sys_ulock_wait, xnu bsd/kern/sys_ulock.c), so a timeout is
// rounded up to a whole microsecond and longer ones (over about 71 minutes)
// are waited in pieces.
func futexWait(addr *uint32, val uint32, timeout time.Duration) error {
	if timeout == 0 {
		if atomic.LoadUint32(addr) != val {
			return nil
		}
		return os.ErrDeadlineExceeded
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	faults := 0
	for {
		var us uint32 // 0: no limit
		last := true
		if timeout > 0 {
			rem := time.Until(deadline)
			if rem <= 0 {
				return os.ErrDeadlineExceeded
			}
			u := (rem + time.Microsecond - 1) / time.Microsecond
			if u > math.MaxUint32 {
				u, last = math.MaxUint32, false
			}
			us = uint32(u)
		}
		_, _, e := libcSyscall6(shmpkg_ulock_wait_trampoline_addr, ulCompareAndWaitShared,
			uintptr(unsafe.Pointer(addr)), uintptr(val), uintptr(us), 0, 0)
		switch e {
		case 0, unix.EINTR:
			// Woken, value differed (the call returns the number of
			// remaining waiters, >= 0), or interrupted: all fine for a
			// caller that re-checks the word.
			return nil
		case unix.ETIMEDOUT:
			if last {
				return os.ErrDeadlineExceeded
			}
		case unix.EFAULT:
			// xnu reads the word with the ulock's spinlock held, so any
			// page fault fails the read and it returns EFAULT "to let the
			// user level code fault it in" (sys_ulock_wait2,
			// bsd/kern/sys_ulock.c): a page of a fresh segment not yet
			// touched, or one paged out. Touch it and try again; if the
			// value has changed there is nothing to wait for.
			if atomic.LoadUint32(addr) != val {
				return nil
			}
			if faults++; faults > 100 {
				return nil // a spurious wake-up; the caller re-checks
			}
		default:
			return fmt.Errorf("shm: __ulock_wait: %w", e)
		}
	}
}

// futexWake wakes up to n waiters on addr and reports how many it woke.
//
// __ulock_wake returns 0 when it woke a waiter and ENOENT when nobody waits
// (ull_get with ULL_MUST_EXIST, bsd/kern/sys_ulock.c); it does not count.
// For n up to wakeAllAbove we wake one at a time, which gives the count; for
// larger n (math.MaxInt32 means all) one ULF_WAKE_ALL call wakes everyone
// and woken is 1 if anyone was waiting.
func futexWake(addr *uint32, n int) (woken int, err error) {
	if n <= 0 {
		return 0, nil
	}
	op := uintptr(ulCompareAndWaitShared)
	if n > wakeAllAbove {
		op |= ulfWakeAll
		n = 1
	}
	for woken < n {
		_, _, e := libcSyscall(shmpkg_ulock_wake_trampoline_addr, op, uintptr(unsafe.Pointer(addr)), 0)
		switch e {
		case 0:
			woken++
		case unix.ENOENT:
			return woken, nil
		case unix.EINTR:
		default:
			return woken, fmt.Errorf("shm: __ulock_wake: %w", e)
		}
	}
	return woken, nil
}

// processStart returns the start time of process pid, in microseconds since
// the epoch, as an identity token that changes when the pid is reused. It
// returns an error matching os.ErrProcessDone when there is no such process
// or it is a zombie.
//
// The kern.proc.pid sysctl copies out nothing for a pid it cannot find
// (sysctl_prochandle, xnu bsd/kern/kern_sysctl.c, which walks the live and
// zombie lists), which unix.SysctlKinfoProc reports as EIO. A zombie has
// p_stat SZOMB (5, bsd/sys/proc.h).
func processStart(pid int) (uint64, error) {
	const sZomb = 5
	if pid <= 0 || pid > math.MaxInt32 {
		return 0, fmt.Errorf("shm: process %d: %w", pid, os.ErrProcessDone)
	}
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	switch {
	case err == unix.EIO || err == unix.ESRCH:
		return 0, fmt.Errorf("shm: process %d: %w", pid, os.ErrProcessDone)
	case err != nil:
		return 0, fmt.Errorf("shm: sysctl kern.proc.pid.%d: %w", pid, err)
	case kp.Proc.P_pid != int32(pid):
		return 0, fmt.Errorf("shm: sysctl kern.proc.pid.%d returned pid %d", pid, kp.Proc.P_pid)
	case kp.Proc.P_stat == sZomb:
		return 0, fmt.Errorf("shm: process %d is a zombie: %w", pid, os.ErrProcessDone)
	}
	st := kp.Proc.P_starttime
	return uint64(st.Sec)*1e6 + uint64(st.Usec), nil
}
