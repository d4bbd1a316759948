package shm

import "errors"

// sysMincore: macOS has mincore(2), but calling it without cgo needs a
// libSystem trampoline that golang.org/x/sys/unix does not provide.
func sysMincore(b []byte, vec []byte) error { return errors.ErrUnsupported }
