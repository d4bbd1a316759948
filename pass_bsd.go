//go:build darwin || freebsd

package shm

import "runtime"

// checkShared checks that a received descriptor is shared memory and
// returns its size. On macOS and FreeBSD fstat reports a shared memory
// object much as a regular file, so a file on disk cannot be told apart here;
// pipes, sockets, directories and devices are refused.
func checkShared(fd int) (int, error) {
	size, err := fdSize(fd)
	if err == errNotSegment {
		return 0, rejected("the descriptor is not shared memory (%s)", fdKind(fd))
	}
	if err != nil {
		return 0, rejected("fstat of the descriptor: %v", err)
	}
	return size, nil
}

// freebsdOPath is FreeBSD's O_PATH (sys/fcntl.h, FreeBSD 14), which
// golang.org/x/sys does not define.
const freebsdOPath = 0x00400000

// checkPathOnly refuses a path-only descriptor. macOS has no O_PATH. On
// FreeBSD the flag is refused if F_GETFL reports it; if it does not, the
// access-mode check or mmap (mapRejected) refuses the descriptor. Neither
// path has been run on FreeBSD.
func checkPathOnly(fl int) error {
	if runtime.GOOS == "freebsd" && fl&freebsdOPath != 0 {
		return rejected("the descriptor is path-only (O_PATH): it cannot be mapped")
	}
	return nil
}
