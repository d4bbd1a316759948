//go:build darwin || freebsd

package shm

// checkShared checks that a received descriptor is shared memory and
// returns its size. On macOS and FreeBSD fstat reports a shared memory
// object much as a regular file, so a file on disk cannot be told apart here;
// pipes, sockets, directories and devices are refused.
func checkShared(fd int) (int, error) {
	size, err := fdSize(fd)
	if err == errNotSegment {
		return 0, rejected("the descriptor is not shared memory")
	}
	if err != nil {
		return 0, rejected("fstat of the descriptor: %v", err)
	}
	return size, nil
}
