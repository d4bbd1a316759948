package shm

import (
	"golang.org/x/sys/unix"
)

// checkShared checks that a received descriptor is shared memory and
// returns its size. On Linux that is a regular file on tmpfs or hugetlbfs
// (statfs(2) magic): a memfd lives on the kernel's internal tmpfs mount, and
// a POSIX segment on /dev/shm. A file on disk is refused, since touching a
// mapping of it beyond its end, or during an I/O error, faults.
func checkShared(fd int) (int, error) {
	size, err := fdSize(fd)
	if err == errNotSegment {
		return 0, rejected("the descriptor is not shared memory (not a regular file: %s)", fdKind(fd))
	}
	if err != nil {
		return 0, rejected("fstat of the descriptor: %v", err)
	}
	var sfs unix.Statfs_t
	if err := ignoringEINTR(func() error { return unix.Fstatfs(fd, &sfs) }); err != nil {
		return 0, rejected("fstatfs of the descriptor: %v", err)
	}
	switch uint32(sfs.Type) {
	case unix.TMPFS_MAGIC, unix.HUGETLBFS_MAGIC:
		return size, nil
	}
	return 0, rejected("the descriptor is not shared memory (a file on a filesystem with magic %#x, not tmpfs)", uint32(sfs.Type))
}

// checkPathOnly refuses a descriptor opened with O_PATH, which F_GETFL
// reports on Linux: fstat and fstatfs work on it, but mmap (and F_GET_SEALS)
// fail with EBADF.
func checkPathOnly(fl int) error {
	if fl&unix.O_PATH != 0 {
		return rejected("the descriptor is path-only (O_PATH): it cannot be mapped")
	}
	return nil
}
