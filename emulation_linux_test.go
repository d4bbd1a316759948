package shm

// Reasons only Linux tests need, for skipIfEmulated (see helper_test.go).
const (
	// qemu-user does not pass RLIMIT_AS on to the host (it would limit
	// qemu itself), so a low limit makes no mmap fail.
	emuRlimitAS = "qemu-user does not apply RLIMIT_AS to the emulated process, so mmap cannot be made to fail with it"
	// Measured with qemu-aarch64 7.2: after MADV_POPULATE_WRITE on a 1 MiB
	// memfd mapping, mincore shows 0 of 256 pages; after touching them, 256.
	emuMadvise = "qemu-user accepts madvise (MADV_POPULATE_READ/WRITE included) and does nothing, so Prefault populates no page"
	// Measured with qemu-aarch64 7.2: 100 descriptors sent, room for 64:
	// 64 arrive, no MSG_CTRUNC, and 36 are left open in the process.
	emuCtrunc = "qemu-user's recvmsg takes descriptors into a control buffer larger than the caller's and drops those that do not fit without MSG_CTRUNC, leaving them open"
	// qemu-user fabricates /proc/self/stat (and /proc/PID/stat of itself)
	// per thread: the state field never shows the leader's exit.
	emuProcStat = "qemu-user fabricates /proc/self/stat per thread, so a process cannot see its own leader thread exit (state Z)"
)
