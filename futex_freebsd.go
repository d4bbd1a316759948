package shm

// This file uses unsafe to pass the address of a shared 32-bit word and of a
// timeout to _umtx_op.

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Operations of _umtx_op(obj, op, val, uaddr1, uaddr2), syscall 454 (FreeBSD
// sys/sys/umtx.h). The non-_PRIVATE forms key the wait queue by the VM object
// and offset when the mapping is shared (umtx_key_get with AUTO_SHARE,
// sys/kern/kern_umtx.c), so processes mapping the same segment meet.
const (
	umtxOpWake     = 3
	umtxOpWaitUint = 11
)

// umtxTime is struct _umtx_time (sys/sys/_umtx.h): a timeout, UMTX_ABSTIME or
// 0 for a relative one, and the clock.
type umtxTime struct {
	timeout unix.Timespec
	flags   uint32
	clockid uint32
}

// futexWait blocks while *addr == val, for at most timeout (no limit if
// timeout < 0). It returns nil when woken, when the value differed, or
// spuriously, and an error matching os.ErrDeadlineExceeded on timeout.
//
// UMTX_OP_WAIT_UINT takes the timeout through uaddr2, with its size in
// uaddr1: a size larger than struct timespec means struct _umtx_time
// (umtx_copyin_umtx_time, sys/kern/kern_umtx.c). We pass a relative
// CLOCK_MONOTONIC timeout. A signal makes do_wait return EINTR, which is a
// spurious wake-up here.
//
// umtx_key_get looks the address up for writing, so waiting on a read-only
// mapping fails with EFAULT on FreeBSD.
func futexWait(addr *uint32, val uint32, timeout time.Duration) error {
	if timeout == 0 {
		if atomic.LoadUint32(addr) != val {
			return nil
		}
		return errWaitTimeout
	}
	var e unix.Errno
	if timeout < 0 {
		_, _, e = unix.Syscall6(unix.SYS__UMTX_OP, uintptr(unsafe.Pointer(addr)), umtxOpWaitUint, uintptr(val), 0, 0, 0)
	} else {
		t := umtxTime{timeout: unix.NsecToTimespec(int64(timeout)), clockid: unix.CLOCK_MONOTONIC}
		_, _, e = unix.Syscall6(unix.SYS__UMTX_OP, uintptr(unsafe.Pointer(addr)), umtxOpWaitUint, uintptr(val),
			unsafe.Sizeof(t), uintptr(unsafe.Pointer(&t)), 0)
	}
	switch e {
	case 0, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		return errWaitTimeout
	}
	return fmt.Errorf("shm: _umtx_op UMTX_OP_WAIT_UINT: %w", e)
}

// futexWake wakes up to n waiters on addr (math.MaxInt32 for all).
//
// FreeBSD does not say how many it woke: kern_umtx_wake discards the count
// from umtxq_signal and returns 0 (sys/kern/kern_umtx.c), so woken is always
// 0 here. The kernel takes n as an int, so larger n are clamped (a value
// truncated to a negative int would wake only one).
func futexWake(addr *uint32, n int) (woken int, err error) {
	if n <= 0 {
		return 0, nil
	}
	n = min(n, math.MaxInt32)
	_, _, e := unix.Syscall6(unix.SYS__UMTX_OP, uintptr(unsafe.Pointer(addr)), umtxOpWake, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, fmt.Errorf("shm: _umtx_op UMTX_OP_WAKE: %w", e)
	}
	return 0, nil
}

// Offsets in struct kinfo_proc (sys/sys/user.h) on 64-bit FreeBSD (amd64,
// arm64, riscv64; KINFO_PROC_SIZE 1088), computed from the field list:
// 2 ints, 8 pointers, 6 pid_t, 2 shorts, a uint32, 4 sigset_t (16 bytes), 5
// ids, 2 shorts, 16 gid_t, 6 longs, 2 u_shorts, 5 u_ints, a uint64, then
// ki_start (struct timeval), ki_childtime, ki_flag, ki_kiflag,
// ki_traceflag, ki_stat. x/sys has no KinfoProc for FreeBSD.
const (
	kinfoPidOff   = 72  // ki_pid, int32
	kinfoStartOff = 336 // ki_start: tv_sec int64, tv_usec int64
	kinfoStatOff  = 388 // ki_stat, char
	kinfoMinSize  = kinfoStatOff + 1
)

// processStart returns the start time of process pid, in microseconds since
// the epoch, as an identity token that changes when the pid is reused. It
// returns an error matching os.ErrProcessDone when there is no such process
// or it is a zombie.
//
// The kern.proc.pid sysctl fails with ESRCH for a pid it cannot find or may
// not see (pget with PGET_CANSEE in sysctl_kern_proc, sys/kern/kern_proc.c),
// and reports a zombie with ki_stat SZOMB (5, sys/sys/proc.h). With
// security.bsd.see_other_uids=0 or in a jail, a process of another user or
// outside the jail is invisible and so reported as done.
func processStart(pid int) (uint64, error) {
	const sZomb = 5
	if pid <= 0 || pid > math.MaxInt32 {
		return 0, fmt.Errorf("shm: process %d: %w", pid, os.ErrProcessDone)
	}
	if unsafe.Sizeof(uintptr(0)) != 8 {
		// The kinfo_proc offsets below are for LP64. On 32-bit systems
		// tell only whether the process exists (kill(2) with signal 0):
		// token 0, no protection against PID reuse.
		if err := unix.Kill(pid, 0); err == unix.ESRCH {
			return 0, fmt.Errorf("shm: process %d: %w", pid, os.ErrProcessDone)
		}
		return 0, nil
	}
	buf, err := unix.SysctlRaw("kern.proc.pid", pid)
	switch {
	case err == unix.ESRCH || (err == nil && len(buf) == 0):
		return 0, fmt.Errorf("shm: process %d: %w", pid, os.ErrProcessDone)
	case err != nil:
		return 0, fmt.Errorf("shm: sysctl kern.proc.pid.%d: %w", pid, err)
	case len(buf) < kinfoMinSize || int(int32(binary.LittleEndian.Uint32(buf))) != len(buf):
		return 0, fmt.Errorf("shm: sysctl kern.proc.pid.%d: unexpected kinfo_proc of %d bytes", pid, len(buf))
	}
	// FreeBSD runs little-endian on every architecture Go supports.
	if got := int32(binary.LittleEndian.Uint32(buf[kinfoPidOff:])); got != int32(pid) {
		return 0, fmt.Errorf("shm: sysctl kern.proc.pid.%d returned pid %d", pid, got)
	}
	if buf[kinfoStatOff] == sZomb {
		return 0, fmt.Errorf("shm: process %d is a zombie: %w", pid, os.ErrProcessDone)
	}
	sec := binary.LittleEndian.Uint64(buf[kinfoStartOff:])
	usec := binary.LittleEndian.Uint64(buf[kinfoStartOff+8:])
	return sec*1e6 + usec, nil
}
