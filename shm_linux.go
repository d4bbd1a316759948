package shm

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"

	"golang.org/x/sys/unix"
)

// On Linux, POSIX shared memory objects are files in the tmpfs mounted at
// /dev/shm; glibc's shm_open is open(2) on "/dev/shm/" + name, with
// O_NOFOLLOW|O_CLOEXEC added (glibc posix/shm-directory.c, rt/shm_open.c).
// We make the same calls directly.

const (
	platformName = "Linux"
	// nameMax is NAME_MAX, the longest file name tmpfs takes; glibc's
	// shm_open returns ENAMETOOLONG beyond it.
	nameMax = 255
	// createRoundsSize: a created segment has exactly the size asked for,
	// so create need not fstat it.
	createRoundsSize = false
)

// shmDir is where segments live. Tests point it elsewhere.
var shmDir = "/dev/shm"

func shmPath(name string) string { return shmDir + name }

// sysOpen opens the existing segment name ("/x") with acc (O_RDONLY or
// O_RDWR). It never follows a symbolic link (O_NOFOLLOW, ELOOP) and never
// blocks on a FIFO (O_NONBLOCK, which means nothing for a regular file); the
// caller checks with fstat that it got a regular file.
func sysOpen(name string, acc int) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(shmPath(name), acc|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		return err
	})
	switch err {
	case nil:
		return fd, nil
	case unix.ELOOP, unix.EISDIR, unix.ENXIO:
		return -1, errNotSegment
	}
	return -1, err
}

// isSegmentMode reports whether an fstat mode is that of a shared memory
// object: on Linux, a regular file.
func isSegmentMode(mode uint32) bool { return mode&unix.S_IFMT == unix.S_IFREG }

// sysCreate makes the segment name exclusively, with exactly perm and size
// bytes reserved, and publishes the name only once all of that is done, so
// no process ever opens it empty or part-sized.
//
// The object is made nameless with O_TMPFILE, then given its name with
// linkat, which fails with EEXIST if the name is taken and leaves nothing
// behind on a crash. Where O_TMPFILE is missing (before Linux 3.11, or a
// directory that is not tmpfs) it is made under a random temporary name and
// link(2)ed, as glibc's sem_open does (sysdeps/pthread/sem_open.c).
func sysCreate(name string, size int, perm uint32) (fd int, op string, err error) {
	err = ignoringEINTR(func() (err error) {
		fd, err = unix.Open(shmDir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, perm)
		return err
	})
	tmpName := ""
	switch err {
	case nil:
	case unix.EOPNOTSUPP, unix.EISDIR, unix.EINVAL:
		var r [8]byte
		rand.Read(r[:])
		tmpName = shmDir + "/.shm-tmp-" + hex.EncodeToString(r[:])
		err = ignoringEINTR(func() (err error) {
			fd, err = unix.Open(tmpName, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
			return err
		})
		if err != nil {
			return -1, "shm_open", err
		}
		defer unix.Unlink(tmpName)
	default:
		return -1, "shm_open", err
	}
	fail := func(op string, err error) (int, string, error) {
		unix.Close(fd)
		return -1, op, err
	}
	// open(2) applies the umask to perm; the caller asked for perm exactly,
	// as Boost.Interprocess also ensures with fchmod.
	if err := ignoringEINTR(func() error { return unix.Fchmod(fd, perm) }); err != nil {
		return fail("fchmod", err)
	}
	// fallocate reserves the pages, so a full /dev/shm is ENOSPC now rather
	// than SIGBUS on first touch: tmpfs allocates lazily, and ftruncate
	// alone reserves nothing.
	if err := ignoringEINTR(func() error { return unix.Fallocate(fd, 0, 0, int64(size)) }); err != nil {
		if err != unix.EOPNOTSUPP {
			return fail("fallocate", err)
		}
		if err := ignoringEINTR(func() error { return unix.Ftruncate(fd, int64(size)) }); err != nil {
			return fail("ftruncate", err)
		}
	}
	final := shmPath(name)
	if tmpName != "" {
		err = unix.Link(tmpName, final)
	} else {
		// linkat of /proc/self/fd/N with AT_SYMLINK_FOLLOW gives the O_TMPFILE
		// file a name (open(2), "O_TMPFILE"). AT_EMPTY_PATH would avoid /proc
		// but needs CAP_DAC_READ_SEARCH; it is the fallback when /proc is not
		// mounted.
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, final, unix.AT_SYMLINK_FOLLOW)
		if err == unix.ENOENT {
			err = unix.Linkat(fd, "", unix.AT_FDCWD, final, unix.AT_EMPTY_PATH)
		}
	}
	if err != nil {
		return fail("shm_open", err)
	}
	return fd, "", nil
}

// sysUnlink removes the name of a segment. unlink(2) does not follow a
// symbolic link at the last component, so a planted link is removed, not its
// target; a planted directory gives EISDIR, reported as not a segment.
func sysUnlink(name string) error {
	err := ignoringEINTR(func() error { return unix.Unlink(shmPath(name)) })
	if err == unix.EISDIR {
		return errNotSegment
	}
	return err
}
