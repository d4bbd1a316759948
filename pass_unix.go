//go:build linux || darwin || freebsd

package shm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// SendSegment sends the segment's descriptor to the peer of c (SCM_RIGHTS,
// unix(7)), with its current size, so that the peer can map it with
// [ReceiveSegment]. The segment stays open here; both processes then map the
// same memory. Named and anonymous segments can both be sent; a segment
// opened read-only arrives read-only.
//
// To let the receiver trust the size, add seals first with
// [Segment.AddSeals] (Linux). On a stream socket (SOCK_STREAM) the peer
// must read the message with ReceiveSegment and nothing else, as the
// descriptor travels with its first byte.
func SendSegment(c *net.UnixConn, s *Segment) error {
	// The message is sent with a duplicate of the descriptor, made under
	// the lock, so that the lock is not held while sendmsg blocks on a peer
	// that does not read: Close, and every other method (which would queue
	// behind Close's write lock), would wait for the peer.
	fd, h, err := s.sendInfo()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	msg := h.encode()
	n, _, err := c.WriteMsgUnix(msg, unix.UnixRights(fd), nil)
	if err != nil {
		return fmt.Errorf("shm: send segment: %w", err)
	}
	if n != len(msg) {
		return fmt.Errorf("shm: send segment: short write (%d of %d bytes): %w", n, len(msg), io.ErrShortWrite)
	}
	return nil
}

// sendInfo returns a close-on-exec duplicate of the segment's descriptor,
// which the caller closes, and the header announcing it.
func (s *Segment) sendInfo() (int, passHeader, error) {
	var h passHeader
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return -1, h, fmt.Errorf("shm: send segment: %w", s.errClosed("sendmsg"))
	}
	size, err := fdSize(s.fd)
	if err != nil {
		return -1, h, fmt.Errorf("shm: send segment: fstat: %w", err)
	}
	h.size = uint64(size)
	fl, err := unix.FcntlInt(uintptr(s.fd), unix.F_GETFL, 0)
	if err != nil {
		return -1, h, fmt.Errorf("shm: send segment: fcntl: %w", err)
	}
	if fl&unix.O_ACCMODE == unix.O_RDONLY {
		h.flags |= passFlagRO
	}
	// A fresh open file description where the platform has OFD liveness
	// locks (see sendDescription), else a duplicate.
	fd, err := sendDescription(s.fd, fl&unix.O_ACCMODE == unix.O_RDONLY)
	if errors.Is(err, errors.ErrUnsupported) {
		fd, err = unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return -1, h, fmt.Errorf("shm: send segment: dup: %w", err)
		}
	} else if err != nil {
		// Without a description of its own to send, the receiver would
		// share this process's liveness lock (SPEC.md PASS-1).
		return -1, h, fmt.Errorf("shm: send segment: opening a fresh open file description through /proc/self/fd: %w", err)
	}
	return fd, h, nil
}

// ReceiveSegment receives a segment sent with [SendSegment] from the peer of
// c and maps it. The result is anonymous ([Segment.Name] is ""): what
// arrives is a descriptor, whatever name it may have had.
//
// Everything received is checked as input from a stranger: exactly one
// descriptor; opened for reading (not O_WRONLY, not O_PATH); a shared memory
// object (on Linux a memfd or a file on tmpfs or hugetlbfs, not a pipe, a
// socket, a directory, an eventfd or a file on disk); a size equal to the one
// announced, within opts.MaxSize; the seals in opts.RequireSeals; and that it
// can be mapped. A check that fails gives an error matching fs.ErrInvalid
// that says which, and every descriptor received is closed. opts may be nil.
//
// The segment is mapped read-only when the descriptor is read-only, when it
// carries SealWrite or SealFutureWrite, or when opts.ReadOnly is set.
// A peer that closes the connection gives io.EOF. ReceiveSegment blocks
// until a message arrives: use c.SetReadDeadline to bound the wait.
func ReceiveSegment(c *net.UnixConn, opts *ReceiveOptions) (*Segment, error) {
	if opts == nil {
		opts = &ReceiveOptions{}
	}
	buf := make([]byte, passLen)
	oob := make([]byte, unix.CmsgSpace(maxPassFds*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	fds := parseRights(oob[:oobn])
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("shm: receive segment: %w", err)
	}
	if n == 0 && oobn == 0 {
		return nil, io.EOF
	}
	if flags&unix.MSG_CTRUNC != 0 {
		return nil, rejected("more than %d descriptors arrived (control data truncated); want 1", maxPassFds)
	}
	if len(fds) != 1 {
		return nil, rejected("%d descriptors arrived, want 1", len(fds))
	}
	if n < passLen && c.LocalAddr() != nil && c.LocalAddr().Network() == "unix" {
		// A stream socket may deliver the rest of the message later.
		m, err := io.ReadFull(c, buf[n:])
		n += m
		if err != nil {
			return nil, rejected("message cut short after %d of %d bytes: %v", n, passLen, err)
		}
	}
	h, err := decodePassHeader(buf[:n])
	if err != nil {
		return nil, err
	}
	fd := fds[0]
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, rejected("fcntl F_GETFL of the descriptor: %v", err)
	}
	if err := checkAccess(fl); err != nil {
		return nil, err
	}
	size, err := checkShared(fd)
	if err != nil {
		return nil, err
	}
	switch {
	case h.size == 0 || h.size > math.MaxInt:
		return nil, rejected("announced size %d is not a usable size", h.size)
	case uint64(size) != h.size:
		return nil, rejected("the segment is %d bytes, but %d were announced", size, h.size)
	case opts.MaxSize > 0 && size > opts.MaxSize:
		return nil, rejected("the segment is %d bytes, more than the %d allowed", size, opts.MaxSize)
	}
	seals, sealErr := sysGetSeals(fd)
	if opts.RequireSeals != 0 {
		if sealErr != nil {
			return nil, rejected("seals %v are required, but cannot be read: %v", opts.RequireSeals, sealErr)
		}
		if missing := opts.RequireSeals &^ seals; missing != 0 {
			return nil, rejected("seals %v are required, the segment has %v (missing %v)", opts.RequireSeals, seals, missing)
		}
	}
	readOnly := opts.ReadOnly || fl&unix.O_ACCMODE == unix.O_RDONLY || h.flags&passFlagRO != 0 ||
		(sealErr == nil && seals&(SealWrite|SealFutureWrite) != 0)
	fds[0] = -1 // newSegment owns it now, and closes it on error
	// Map through an open file description of our own, not the sender's:
	// liveness locks belong to the description (see ownDescription).
	fd, err = ownDescription(fd, readOnly)
	if err != nil {
		return nil, err
	}
	s, err := newSegment("", fd, size, readOnly)
	if err != nil {
		return nil, mapRejected(err, size, readOnly)
	}
	return s, nil
}

// checkAccess checks the file status flags of a received descriptor (from
// fcntl F_GETFL): it must have been opened for reading, since a shared
// mapping needs read access, and it must not be a path-only descriptor.
func checkAccess(fl int) error {
	if err := checkPathOnly(fl); err != nil {
		return err
	}
	switch fl & unix.O_ACCMODE {
	case unix.O_RDONLY, unix.O_RDWR:
		return nil
	case unix.O_WRONLY:
		return rejected("the descriptor is write-only (O_WRONLY): mapping needs read access")
	}
	return rejected("the descriptor's access mode %#x is neither O_RDONLY nor O_RDWR", fl&unix.O_ACCMODE)
}

// mapRejected turns newSegment's failure to map a received descriptor that
// passed every other check into a rejection when the descriptor is what
// mmap refuses (EACCES, EBADF, EINVAL, ENODEV, EPERM, EOPNOTSUPP: not a
// mappable file, or not with the access asked), so that every unusable
// descriptor gives an error matching fs.ErrInvalid. Other failures (ENOMEM: no address space
// left) are this process's, and are returned as they are.
func mapRejected(err error, size int, readOnly bool) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("shm: receive segment: %w", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != "mmap" {
		return fmt.Errorf("shm: receive segment: %w", err)
	}
	switch errno {
	case unix.EACCES, unix.EBADF, unix.EINVAL, unix.ENODEV, unix.EPERM, unix.EOPNOTSUPP:
		how := "read-write"
		if readOnly {
			how = "read-only"
		}
		return rejected("the descriptor cannot be mapped %s, %d bytes: mmap: %v", how, size, errno)
	}
	return fmt.Errorf("shm: receive segment: mmap: %w", errno)
}

// parseRights returns every descriptor in SCM_RIGHTS messages in oob.
func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

// fdKind names what a descriptor that is not a regular file is, for the
// rejection message.
func fdKind(fd int) string {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return fmt.Sprintf("fstat: %v", err)
	}
	switch t := uint32(st.Mode) & unix.S_IFMT; t {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a pipe or FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFLNK:
		return "a symbolic link"
	case 0:
		return "an object of no file type, such as an eventfd"
	default:
		return fmt.Sprintf("file type %#o", t)
	}
}
