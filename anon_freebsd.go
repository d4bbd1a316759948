package shm

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// shmAnon is SHM_ANON from FreeBSD's sys/mman.h: the path argument
// (char *)1 asks shm_open2(2) for an object with no name.
const shmAnon = 1

// createAnonymous makes a SHM_ANON object (shm_open(2) on FreeBSD, which
// sys/kern/uipc_shm.c implements as an unnamed object reachable only through
// its descriptor), sizes it and maps it.
func createAnonymous(size int) (*Segment, error) {
	fd, err := freebsdShmOpen2(shmAnon, unix.O_RDWR|unix.O_CLOEXEC, 0o600, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "shm_open", Path: "", Err: err}
	}
	// The object is made empty; ftruncate gives it its size.
	if err := ignoringEINTR(func() error { return unix.Ftruncate(fd, int64(size)) }); err != nil {
		sysClose(fd)
		return nil, &fs.PathError{Op: "ftruncate", Path: "", Err: err}
	}
	return newSegment("", fd, size, false)
}

func sysAddSeals(fd int, seals Seal) error { return errors.ErrUnsupported }

func sysGetSeals(fd int) (Seal, error) { return 0, errors.ErrUnsupported }
