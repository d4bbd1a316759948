package shm

// This file uses unsafe to pass C strings to the shm_open2 and shm_unlink
// system calls.

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On FreeBSD, POSIX shared memory objects live in a kernel dictionary keyed
// by path, not in a file system (sys/kern/uipc_shm.c): there is nothing to
// plant under a name and nothing to list with readdir. Paths must start
// with "/" and are not normalised, so we always pass the canonical "/x".

const (
	platformName = "FreeBSD"
	// nameMax: shm_copyin_path (sys/kern/uipc_shm.c) copies the path into a
	// MAXPATHLEN (1024) buffer including the NUL, so 1023 bytes counting
	// the slash. In a jail the jail's root path is prepended in the same
	// buffer and the limit is that much lower (the kernel then returns
	// ENAMETOOLONG).
	nameMax = 1022

	// sysShmOpen2 is shm_open2(path, flags, mode, shmflags, name), FreeBSD
	// 13 and later (sys/kern/syscalls.master, 571), which libc's shm_open
	// calls with flags|O_CLOEXEC, shmflags 0 and name NULL. x/sys only has
	// SYS_SHM_OPEN (482), a COMPAT_FREEBSD12 syscall we fall back to.
	sysShmOpen2 = 571
)

// freebsdShmOpen2 calls shm_open2(path, flags, mode, shmflags, NULL). path is
// the address of a NUL-terminated string that the caller keeps alive, or 1
// (SHM_ANON, sys/sys/mman.h) for an anonymous object. On kernels without
// shm_open2 (ENOSYS) it falls back to the old shm_open syscall, which has no
// shmflags, and adds O_CLOEXEC itself as the kernel's freebsd12_shm_open
// does. flags should include O_CLOEXEC. (A missing syscall also raises
// SIGSYS, which the Go runtime ignores on FreeBSD unless the program asked
// for it with signal.Notify: runtime/signal_freebsd.go, go.dev/issue/15204.)
func freebsdShmOpen2(path uintptr, flags int, mode uint32, shmflags int) (int, error) {
	var fd int
	err := ignoringEINTR(func() error {
		r, _, e := unix.Syscall6(sysShmOpen2, path, uintptr(flags), uintptr(mode), uintptr(shmflags), 0, 0)
		if e == unix.ENOSYS && shmflags == 0 {
			r, _, e = unix.Syscall(unix.SYS_SHM_OPEN, path, uintptr(flags), uintptr(mode))
		}
		if e != 0 {
			return e
		}
		fd = int(r)
		return nil
	})
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// shmOpen opens or creates the named object with O_CLOEXEC added.
func shmOpen(name string, flags int, mode uint32) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	fd, err := freebsdShmOpen2(uintptr(unsafe.Pointer(p)), flags|unix.O_CLOEXEC, mode, 0)
	runtime.KeepAlive(p)
	return fd, err
}

// sysOpen opens the existing segment name ("/x") with acc (O_RDONLY or
// O_RDWR). The kernel looks the name up in its dictionary, so there is no
// link to follow and nothing that can block.
func sysOpen(name string, acc int) (int, error) {
	return shmOpen(name, acc, 0)
}

// isSegmentMode reports whether an fstat mode is that of a shared memory
// object: shm_stat (sys/kern/uipc_shm.c) reports S_IFREG | mode.
func isSegmentMode(mode uint32) bool { return mode&unix.S_IFMT == unix.S_IFREG }

// sysCreate makes the segment name exclusively, sized, with exactly perm.
//
// FreeBSD has no way to publish a sized object atomically: the name exists
// from shm_open2 until ftruncate sizes it, and another process opening it in
// between sees size 0 (OpenFile's open-or-create waits that out).
//
// shm_open2 applies the umask to mode (kern_shm_open2: cmode = mode &
// ~pd_cmask), and shm_chmod lets the owner set it exactly, so fchmod follows.
//
// ftruncate reserves swap for the whole size (shm_dotruncate_locked,
// swap_reserve_by_cred), so an object that does not fit fails here with
// ENOMEM. posix_fallocate would do no more: shm_fallocate only grows the
// object through the same function (and maps ENOMEM to ENOSPC).
//
// On failure after shm_open2 the name is unlinked again, so nothing is left
// behind.
func sysCreate(name string, size int, perm uint32) (fd int, op string, err error) {
	fd, err = shmOpen(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, perm)
	if err != nil {
		return -1, "shm_open", err
	}
	fail := func(op string, err error) (int, string, error) {
		unix.Close(fd)
		shmUnlink(name)
		return -1, op, err
	}
	if err := ignoringEINTR(func() error { return unix.Fchmod(fd, perm) }); err != nil {
		return fail("fchmod", err)
	}
	if err := ignoringEINTR(func() error { return unix.Ftruncate(fd, int64(size)) }); err != nil {
		return fail("ftruncate", err)
	}
	return fd, "", nil
}

func shmUnlink(name string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	return ignoringEINTR(func() error {
		_, _, e := unix.Syscall(unix.SYS_SHM_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0)
		if e != 0 {
			return e
		}
		return nil
	})
}

// sysUnlink removes the name of a segment.
func sysUnlink(name string) error { return shmUnlink(name) }
