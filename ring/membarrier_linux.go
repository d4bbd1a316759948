//go:build linux && amd64 && !race

package ring

// This file uses unsafe for one plain store into a 64-bit atomic word
// (storeRelease64), the publishing store of SPEC.md RING-25's asymmetric
// form, which the sync/atomic package does not offer. It lives here, not in
// fence_amd64.go, because only registered wakers on Linux use it.

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// membarrier(2) commands (include/uapi/linux/membarrier.h).
const (
	membarrierRegisterGlobalExpedited  = 1 << 2
	membarrierPrivateExpedited         = 1 << 3
	membarrierRegisterPrivateExpedited = 1 << 4
)

// asymmetric reports whether Close can make every thread of this process
// execute a full memory barrier (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED),
// Linux 4.14), so that a call's entry needs no locked instruction: see
// end.enter. It is decided once, when the package is initialised, by
// registering the process for the command.
var asymmetric = func() bool {
	_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierRegisterPrivateExpedited, 0, 0)
	return e == 0
}()

// storeBusy stores 1 in *a as a call's entry: plain when Close runs
// heavyBarrier, sequentially consistent otherwise.
func storeBusy(a *atomic.Uint32) {
	if asymmetric {
		storeRelease(a, 1)
	} else {
		a.Store(1)
	}
}

// heavyBarrier runs a full memory barrier on every running thread of this
// process before it returns.
func heavyBarrier() {
	for {
		_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierPrivateExpedited, 0, 0)
		if e != unix.EINTR {
			return
		}
	}
}

// crossProcess reports whether this process is registered for
// membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (Linux 4.16), so that a
// sleeper in any process that issues the command makes every running
// thread of this one execute a full memory barrier. Only then may its
// wakers publish a position with a plain store (SPEC.md RING-25, the
// asymmetric form): the sleeper's barrier stands in for the waker's
// store-load fence. Registered once, when the package is initialised.
var crossProcess = func() bool {
	_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierRegisterGlobalExpedited, 0, 0)
	return e == 0
}()

// storeRelease64 stores v in *a with a plain store: release order on
// amd64 (x86-TSO keeps stores in order and a store never passes an earlier
// load), without the locked XCHG of atomic.Store; see fence_amd64.go.
func storeRelease64(a *atomic.Uint64, v uint64) {
	*(*uint64)(unsafe.Pointer(a)) = v
}

// publish stores a position (the tail, the head) that a sleeper on the
// other side may be about to re-check, before the waker loads the waiting
// word (RING-24). Registered, it is a plain store (release on x86-TSO)
// with no locked instruction; otherwise a sequentially consistent one.
func publish(a *atomic.Uint64, v uint64) {
	if crossProcess {
		storeRelease64(a, v)
	} else {
		a.Store(v)
	}
}
