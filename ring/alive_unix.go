//go:build unix && !linux

package ring

import (
	"os"

	"golang.org/x/sys/unix"
)

// processStart reports whether pid exists (kill(pid, 0), kill(2)); it has no
// start token here (0), so PID reuse is not detected.
func processStart(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, os.ErrProcessDone
	}
	if err := unix.Kill(pid, 0); err == unix.ESRCH {
		return 0, os.ErrProcessDone
	}
	return 0, nil
}
