//go:build freebsd

package shm

import "golang.org/x/sys/unix"

// freebsdShmOpen2 is a placeholder until the FreeBSD platform file
// (shm_freebsd.go, branch platforms) lands with the real shm_open2(2) call;
// this file is replaced at merge: delete it then.
func freebsdShmOpen2(path uintptr, flags int, mode uint32, shmflags int) (int, error) {
	return -1, unix.ENOSYS
}
