//go:build !linux && !darwin && !freebsd

package shm

import (
	"errors"
	"io/fs"
)

func createAnonymous(size int) (*Segment, error) {
	return nil, &fs.PathError{Op: "memfd_create", Path: "", Err: errors.ErrUnsupported}
}

func sysAddSeals(fd int, seals Seal) error { return errors.ErrUnsupported }

func sysGetSeals(fd int) (Seal, error) { return 0, errors.ErrUnsupported }
