package shm

// This file uses unsafe to pass the mapping's address to madvise(2) and
// mincore(2).

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

var madviseFlags = [...]int{
	AdviseNormal:     unix.MADV_NORMAL,
	AdviseSequential: unix.MADV_SEQUENTIAL,
	AdviseRandom:     unix.MADV_RANDOM,
	AdviseWillNeed:   unix.MADV_WILLNEED,
	AdviseDontNeed:   unix.MADV_DONTNEED,
	AdviseHugePage:   unix.MADV_HUGEPAGE,
	AdviseNoHugePage: unix.MADV_NOHUGEPAGE,
}

var errUnsupportedAdvice = errors.ErrUnsupported

// sysPopulate prefaults b with MADV_POPULATE_WRITE or MADV_POPULATE_READ
// (madvise(2), Linux 5.14). An older kernel answers EINVAL; then the caller
// touches the pages.
func sysPopulate(b []byte, readOnly bool) error {
	adv := unix.MADV_POPULATE_WRITE
	if readOnly {
		adv = unix.MADV_POPULATE_READ
	}
	err := unix.Madvise(b, adv)
	if err == unix.EINVAL {
		return errNoPopulate
	}
	return err
}

// sysMincore fills vec with one byte per page of b; bit 0 set means the
// page is resident (mincore(2)). x/sys/unix has no wrapper.
func sysMincore(b []byte, vec []byte) error {
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if e != 0 {
		return e
	}
	return nil
}
