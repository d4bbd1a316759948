package shm

import "unsafe"

// mincore(2) is called through libSystem, like shm_open (shm_darwin.go):
// golang.org/x/sys/unix has no Mincore for darwin. xnu reports one byte per
// page with MINCORE_INCORE (0x1) set for a resident page (bsd/sys/mman.h),
// the bit the portable code reads.

var shmpkg_mincore_trampoline_addr uintptr

//go:cgo_import_dynamic shmpkg_mincore mincore "/usr/lib/libSystem.B.dylib"

func sysMincore(b []byte, vec []byte) error {
	_, _, e := libcSyscall(shmpkg_mincore_trampoline_addr, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if e != 0 {
		return e
	}
	return nil
}
