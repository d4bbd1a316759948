//go:build linux || darwin || freebsd

package shm

import "golang.org/x/sys/unix"

func sysMlock(b []byte) error { return unix.Mlock(b) }

func sysMunlock(b []byte) error { return unix.Munlock(b) }

// sysAdvise calls madvise(2) with the value madviseFlags gives for a; -1
// there marks advice this system does not have.
func sysAdvise(b []byte, a Advice) error {
	if a < 0 || int(a) >= len(madviseFlags) || madviseFlags[a] < 0 {
		return errUnsupportedAdvice
	}
	return unix.Madvise(b, madviseFlags[a])
}
