package shm

// This file uses unsafe to pass the mapping's address to mincore(2).

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysMincore fills vec with one byte per page of b; MINCORE_INCORE (bit 0)
// set means the page is resident (mincore(2), FreeBSD sys/mman.h).
func sysMincore(b []byte, vec []byte) error {
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if e != 0 {
		return e
	}
	return nil
}
