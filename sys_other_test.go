//go:build !linux && !darwin && !freebsd

package shm

import (
	"errors"
	"io/fs"
)

// Stand-ins for sys_unix_test.go, so that the tests compile where segments
// are unsupported (Windows, js/wasm, plan9, …).

// shmDir is where Linux keeps segments as files; there is none here.
const shmDir = "/nonexistent: no shm directory on this system"

func allocatedBytes(fi fs.FileInfo) int64 { return 0 }

func umask(mask int) int { return 0 }

func mkfifo(path string, mode uint32) error { return errors.ErrUnsupported }

func fsSize(dir string) (uint64, error) { return 0, errors.ErrUnsupported }
