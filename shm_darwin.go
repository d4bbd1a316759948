package shm

// This file uses unsafe to hand C strings and addresses to libSystem. Go
// does not support direct system calls on macOS, so, like
// golang.org/x/sys/unix (zsyscall_darwin_*.go), it imports the libSystem
// functions with //go:cgo_import_dynamic, reaches them through the JMP
// trampolines in shm_darwin.s, and calls them with the runtime's
// syscall.syscall, which tells the scheduler the thread may block. No cgo.

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On macOS, POSIX shared memory objects live in a kernel table, not in a
// file system (xnu bsd/kern/posix_shm.c): there is no directory to list, no
// link to plant, and names are not normalised ("x" and "/x" are different
// objects), so we always pass the canonical "/x".

const (
	platformName = "macOS"
	// nameMax: xnu copies at most PSHMNAMLEN+1 bytes including the NUL
	// (PSHMNAMLEN is 31, bsd/sys/posix_shm.h; pshm_get_name in
	// bsd/kern/posix_shm.c), so 31 bytes counting the leading slash.
	nameMax = 30
)

// libcSyscall and libcSyscall6 are the runtime's libSystem call helpers
// (runtime/sys_darwin.go, syscall/syscall_darwin.go). They return the errno
// when the C function returns -1.
//
// Called with exactly three arguments, the runtime's arm64 trampoline also
// stores the third one on the stack (runtime/sys_darwin_arm64.s,
// syscallN_trampoline), which is where Apple's arm64 ABI passes a variadic
// argument: that is how shm_open's variadic mode arrives. Through
// libcSyscall6 it would not.

//go:linkname libcSyscall syscall.syscall
func libcSyscall(fn, a1, a2, a3 uintptr) (r1, r2 uintptr, err syscall.Errno)

//go:linkname libcSyscall6 syscall.syscall6
func libcSyscall6(fn, a1, a2, a3, a4, a5, a6 uintptr) (r1, r2 uintptr, err syscall.Errno)

// The trampoline addresses are set in shm_darwin.s.
var (
	shmpkg_shm_open_trampoline_addr   uintptr
	shmpkg_shm_unlink_trampoline_addr uintptr
)

//go:cgo_import_dynamic shmpkg_shm_open shm_open "/usr/lib/libSystem.B.dylib"
//go:cgo_import_dynamic shmpkg_shm_unlink shm_unlink "/usr/lib/libSystem.B.dylib"

// shmOpen calls shm_open(name, flags, mode) and sets close-on-exec.
//
// xnu sets close-on-exec on every shm descriptor (FP_CLOEXEC in shm_open,
// bsd/kern/posix_shm.c, macOS 12 and later); older kernels did not, so we
// also set FD_CLOEXEC, under syscall.ForkLock as the os package does where
// O_CLOEXEC is missing, so no fork+exec sees the descriptor in between.
func shmOpen(name string, flags int, mode uint32) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	var fd int
	err = ignoringEINTR(func() error {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		r, _, e := libcSyscall(shmpkg_shm_open_trampoline_addr, uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode))
		if e != 0 {
			return e
		}
		fd = int(r)
		unix.CloseOnExec(fd)
		return nil
	})
	if err != nil {
		return -1, err
	}
	return fd, nil
}

func shmUnlink(name string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	return ignoringEINTR(func() error {
		_, _, e := libcSyscall(shmpkg_shm_unlink_trampoline_addr, uintptr(unsafe.Pointer(p)), 0, 0)
		if e != 0 {
			return e
		}
		return nil
	})
}

// sysOpen opens the existing segment name ("/x") with acc (O_RDONLY or
// O_RDWR). shm_open on macOS does no path lookup, so there is nothing to
// follow and nothing that can block; O_NOFOLLOW would be ignored.
func sysOpen(name string, acc int) (int, error) {
	return shmOpen(name, acc, 0)
}

// isSegmentMode reports whether an fstat mode is that of a shared memory
// object. xnu's pshm_stat (bsd/kern/posix_shm.c) sets st_mode to the
// permission bits alone, with no file type, so the type field is 0; accept
// S_IFREG too in case a later kernel adds it. shm_open can only ever return a
// shared memory object on macOS, so this check is a formality.
func isSegmentMode(mode uint32) bool {
	t := mode & unix.S_IFMT
	return t == 0 || t == unix.S_IFREG
}

// sysCreate makes the segment name exclusively, sized, with exactly perm.
//
// macOS cannot publish a sized object atomically: the name exists from
// shm_open until ftruncate sizes it, and another process opening it in
// between sees size 0 (OpenFile's open-or-create waits that out). xnu
// allows one ftruncate per object (pshm_truncate, bsd/kern/posix_shm.c:
// a second is EINVAL) and rounds the size up to the page size, so the size
// is set here once and for all.
//
// xnu's shm_open stores mode & ALLPERMS without applying the umask
// (bsd/kern/posix_shm.c), so perm is exact; fchmod would fail anyway, as a
// shm descriptor is not a vnode (fchmod1 -> file_vnode gives EINVAL,
// bsd/vfs/vfs_syscalls.c).
//
// On failure after shm_open the name is unlinked again, so nothing is left
// behind.
func sysCreate(name string, size int, perm uint32) (fd int, op string, err error) {
	fd, err = shmOpen(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, perm)
	if err != nil {
		return -1, "shm_open", err
	}
	// Not retried on EINTR: pshm_truncate never returns it, and a second
	// call would be EINVAL.
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		shmUnlink(name)
		return -1, "ftruncate", err
	}
	return fd, "", nil
}

// sysUnlink removes the name of a segment.
func sysUnlink(name string) error { return shmUnlink(name) }
