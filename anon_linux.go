package shm

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// createAnonymous makes a memfd (memfd_create(2)). MFD_NOEXEC_SEAL (Linux
// 6.3) makes it non-executable for good; with vm.memfd_noexec=2 the kernel
// refuses a memfd without it, and kernels before 6.3 refuse the flag with
// EINVAL, so it is tried first and dropped on EINVAL. MFD_ALLOW_SEALING lets
// the creator add seals later; MFD_NOEXEC_SEAL implies it.
func createAnonymous(size int) (*Segment, error) {
	fd, err := unix.MemfdCreate("shm", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_NOEXEC_SEAL)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate("shm", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "memfd_create", Path: "", Err: err}
	}
	// Reserve the space, as sysCreate does for named segments: a memfd is
	// tmpfs memory, allocated lazily, and ftruncate alone reserves nothing.
	if err := ignoringEINTR(func() error { return unix.Fallocate(fd, 0, 0, int64(size)) }); err != nil {
		if err != unix.EOPNOTSUPP {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "fallocate", Path: "", Err: err}
		}
		if err := ignoringEINTR(func() error { return unix.Ftruncate(fd, int64(size)) }); err != nil {
			unix.Close(fd)
			return nil, &fs.PathError{Op: "ftruncate", Path: "", Err: err}
		}
	}
	return newSegment("", fd, size, false)
}

// sysAddSeals adds seals with fcntl(F_ADD_SEALS). The kernel answers EPERM
// for a file with F_SEAL_SEAL, which every /dev/shm file has from its
// creation (mm/shmem.c sets it unless the file is a memfd made with
// MFD_ALLOW_SEALING), and EINVAL for a file that is not tmpfs or hugetlbfs.
func sysAddSeals(fd int, seals Seal) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, int(seals))
	return err
}

// sysGetSeals returns the seals of fd (fcntl F_GET_SEALS), or EINVAL if the
// file cannot carry seals (it is not tmpfs or hugetlbfs).
func sysGetSeals(fd int) (Seal, error) {
	s, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	return Seal(s), err
}
