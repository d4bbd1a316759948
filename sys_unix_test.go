//go:build linux || darwin || freebsd

package shm

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// System calls the tests make directly, here so that the portable test files
// compile on every platform; sys_other_test.go has the stand-ins.

// allocatedBytes is the storage allocated to the file fi describes (st_blocks
// in 512-byte units).
func allocatedBytes(fi fs.FileInfo) int64 { return fi.Sys().(*unix.Stat_t).Blocks * 512 }

// umask sets the process's file mode creation mask and returns the old one.
func umask(mask int) int { return syscall.Umask(mask) }

// mkfifo makes a named pipe at path.
func mkfifo(path string, mode uint32) error { return unix.Mkfifo(path, mode) }

// fsSize is the size in bytes of the file system holding dir (statfs).
func fsSize(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Blocks) * uint64(st.Bsize), nil
}
