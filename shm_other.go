//go:build !linux && !darwin && !freebsd

package shm

import (
	"errors"
	"io/fs"
)

// On systems without POSIX shared memory support in this package, every
// call compiles and fails with an error matching errors.ErrUnsupported.

const (
	platformName = "this platform"
	nameMax      = 255
)

func openFile(name string, flag int, perm uint32, size int) (*Segment, error) {
	return nil, &fs.PathError{Op: "shm_open", Path: name, Err: errors.ErrUnsupported}
}

func sysUnlink(name string) error { return errors.ErrUnsupported }

func sysExists(name string) (bool, error) {
	return false, &fs.PathError{Op: "shm_open", Path: name, Err: errors.ErrUnsupported}
}

func sysMap(fd, size int, readOnly bool) ([]byte, error) { return nil, errors.ErrUnsupported }

func sysUnmap(b []byte) error { return errors.ErrUnsupported }

func sysClose(fd int) error { return errors.ErrUnsupported }

func sysStat(fd int, name string) (fs.FileInfo, error) { return nil, errors.ErrUnsupported }
