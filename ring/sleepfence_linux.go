package ring

import "golang.org/x/sys/unix"

// sleeperBarrier runs membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED): once it
// returns, every running thread of every process registered for it (any
// peer's wakers that publish with a plain store) has executed a full
// memory barrier, so the re-check that follows the waiting word's store
// either sees their position or they see the word (SPEC.md RING-25,
// membarrier(2), kernel/sched/membarrier.c). It reports false when the
// call fails otherwise (a seccomp filter): the sleeper cannot order a
// registered waker and must sleep at most barrierlessSleep. ENOSYS (no
// membarrier) and EINVAL (a kernel without the command, before 4.16) mean
// that no process on this kernel can have registered: nothing to order.
func sleeperBarrier() bool {
	for {
		_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierGlobalExpeditedCmd, 0, 0)
		if e != unix.EINTR {
			return e == 0 || e == unix.ENOSYS || e == unix.EINVAL
		}
	}
}

// membarrierGlobalExpeditedCmd is MEMBARRIER_CMD_GLOBAL_EXPEDITED
// (include/uapi/linux/membarrier.h).
const membarrierGlobalExpeditedCmd = 1 << 1
