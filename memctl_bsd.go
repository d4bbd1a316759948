//go:build darwin || freebsd

package shm

import (
	"errors"

	"golang.org/x/sys/unix"
)

var madviseFlags = [...]int{
	AdviseNormal:     unix.MADV_NORMAL,
	AdviseSequential: unix.MADV_SEQUENTIAL,
	AdviseRandom:     unix.MADV_RANDOM,
	AdviseWillNeed:   unix.MADV_WILLNEED,
	AdviseDontNeed:   unix.MADV_DONTNEED,
	AdviseHugePage:   -1,
	AdviseNoHugePage: -1,
}

var errUnsupportedAdvice = errors.ErrUnsupported

// sysPopulate: neither system has MADV_POPULATE; the caller touches pages.
func sysPopulate(b []byte, readOnly bool) error { return errNoPopulate }
