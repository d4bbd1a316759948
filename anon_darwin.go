package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// createAnonymous creates a segment under a random name and unlinks the name
// at once: macOS has neither memfd_create nor SHM_ANON (xnu
// bsd/kern/posix_shm.c). The name exists for the moment between the two
// calls; it is 30 random characters after the slash, within PSHMNAMLEN (31
// counting the slash), so it cannot be guessed in that moment.
func createAnonymous(size int) (*Segment, error) {
	for range 100 {
		var r [15]byte
		rand.Read(r[:])
		name := "/" + hex.EncodeToString(r[:])
		fd, op, err := sysCreate(name, size, 0o600)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: "", Err: err}
		}
		if err := sysUnlink(name); err != nil {
			sysClose(fd)
			return nil, &fs.PathError{Op: "shm_unlink", Path: "", Err: err}
		}
		objSize, err := fdSize(fd)
		if err != nil {
			sysClose(fd)
			return nil, &fs.PathError{Op: "fstat", Path: "", Err: err}
		}
		// The size is rounded up to a page; map what the kernel made.
		return newSegment("", fd, max(objSize, size), false)
	}
	return nil, &fs.PathError{Op: "shm_open", Path: "", Err: unix.EEXIST}
}

func sysAddSeals(fd int, seals Seal) error { return errors.ErrUnsupported }

func sysGetSeals(fd int) (Seal, error) { return 0, errors.ErrUnsupported }
