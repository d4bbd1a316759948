package shm

import (
	"fmt"
	"io"
	"io/fs"
	"runtime/debug"
	"sync"
	"syscall"
)

// A Segment is a shared memory object mapped into this process.
//
// Bytes returns the mapping itself; ReadAt and WriteAt copy through it with
// bounds checks and turn a memory fault (another process shrank the segment)
// into an error. A Segment is safe for concurrent use by multiple goroutines,
// but the memory it maps is not synchronised: see the package documentation.
//
// The zero value is a closed Segment: Bytes returns nil and every other
// method returns an error matching fs.ErrClosed.
type Segment struct {
	// mu is held for reading while memory is copied or a view is taken, and
	// for writing by Close, so Close never unmaps under a running copy.
	mu       sync.RWMutex
	name     string // canonical, "/x"; "" for an anonymous segment
	fd       int
	data     []byte // nil once closed
	readOnly bool
	// presence is the offset of this mapping's presence lock in the file
	// (see liveness.go), -1 for none.
	presence int64
}

// newSegment maps size bytes of fd and returns the Segment owning fd. On
// error fd is closed.
func newSegment(name string, fd int, size int, readOnly bool) (*Segment, error) {
	data, err := sysMap(fd, size, readOnly)
	if err != nil {
		sysClose(fd)
		return nil, &fs.PathError{Op: "mmap", Path: name, Err: err}
	}
	s := &Segment{name: name, fd: fd, data: data, readOnly: readOnly, presence: -1}
	if !readOnly {
		off, err := takePresence(fd)
		if err != nil {
			sysUnmap(data)
			sysClose(fd)
			return nil, &fs.PathError{Op: "fcntl F_OFD_SETLK", Path: name, Err: fmt.Errorf("taking the presence lock peers judge this process by: %w", err)}
		}
		s.presence = off
	}
	registerMapping(s)
	return s, nil
}

// Name returns the canonical name of the segment, with its leading slash:
// "/demo" for a segment created as "demo" or "/demo". It is "" for an
// anonymous segment. Name keeps working after Close.
func (s *Segment) Name() string { return s.name }

// Size returns the size of the mapping in bytes, or 0 once the segment is
// closed. On macOS a created segment's size is rounded up to a page.
func (s *Segment) Size() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.data)
}

// Bytes returns the mapped memory. Writes to it are seen by every process
// that maps the segment. It returns nil after Close.
//
// The slice is valid only until Close: using it, or anything derived from it
// with [View] or [Slice], after Close is undefined and usually crashes the
// program with a fault the library cannot catch. If another process shrinks
// the segment, touching memory past the new end raises SIGBUS, which is fatal
// in Go; [Segment.ReadAt] and [Segment.WriteAt] are the safe path.
func (s *Segment) Bytes() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.data
}

// ReadOnly reports whether the segment is mapped read-only.
func (s *Segment) ReadOnly() bool { return s.readOnly }

// ReadAt copies len(p) bytes from the segment at offset off into p, as
// [io.ReaderAt] does. When fewer than len(p) bytes remain, it copies what
// there is and returns io.EOF; at or past the end it returns 0, io.EOF.
//
// If another process shrank the segment so that the memory faults, ReadAt
// returns an error wrapping syscall.EFAULT instead of crashing the program.
// It is safe to call concurrently with Close.
func (s *Segment) ReadAt(p []byte, off int64) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return 0, s.errClosed("read")
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: s.name, Err: fmt.Errorf("%w: negative offset %d", fs.ErrInvalid, off)}
	}
	if off >= int64(len(s.data)) {
		return 0, io.EOF
	}
	n, err := guardedCopy(p, s.data[off:])
	if err != nil {
		return n, &fs.PathError{Op: "read", Path: s.name, Err: err}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt copies p into the segment at offset off, as [io.WriterAt] does.
//
// A write that does not fit writes nothing: it returns 0 and an error
// wrapping io.ErrShortWrite, so a bad offset never overwrites part of the
// data. On a read-only segment it returns an error matching
// fs.ErrPermission. If another process shrank the segment so that the memory
// faults, WriteAt returns an error wrapping syscall.EFAULT instead of
// crashing the program; the bytes before the fault have been written. It is
// safe to call concurrently with Close.
func (s *Segment) WriteAt(p []byte, off int64) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return 0, s.errClosed("write")
	}
	if s.readOnly {
		return 0, &fs.PathError{Op: "write", Path: s.name, Err: fmt.Errorf("segment is mapped read-only: %w", fs.ErrPermission)}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: s.name, Err: fmt.Errorf("%w: negative offset %d", fs.ErrInvalid, off)}
	}
	if off > int64(len(s.data)) || int64(len(p)) > int64(len(s.data))-off {
		return 0, &fs.PathError{Op: "write", Path: s.name,
			Err: fmt.Errorf("%w: %d bytes at offset %d do not fit in %d bytes; nothing written", io.ErrShortWrite, len(p), off, len(s.data))}
	}
	n, err := guardedCopy(s.data[off:], p)
	if err != nil {
		return n, &fs.PathError{Op: "write", Path: s.name, Err: err}
	}
	return n, nil
}

// guardedCopy copies src to dst and turns a memory fault during the copy
// into an error (see catchFault). The bytes copied before a fault are not
// known exactly; n reports 0.
func guardedCopy(dst, src []byte) (n int, err error) {
	err = catchFault(func() { n = copy(dst, src) })
	if err != nil {
		return 0, err
	}
	return n, nil
}

// catchFault runs f and turns a memory fault in it (SIGBUS or SIGSEGV: a
// peer shrank the segment) into an error wrapping syscall.EFAULT.
// runtime/debug.SetPanicOnFault makes such a fault in this goroutine a
// recoverable panic instead of a fatal error; the setting is per goroutine,
// so it is restored at once. Other panics pass through.
func catchFault(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = fmt.Errorf("memory fault: %w (was the segment shrunk by another process?)", syscall.EFAULT)
		}
	}()
	f()
	return nil
}

// Close unmaps the segment and closes its descriptor. It does not remove the
// name: see [Segment.Unlink]. Close must be called once; a second call
// returns an error matching fs.ErrClosed.
//
// After Close, Bytes returns nil and the other methods return errors. Slices
// and pointers obtained from Bytes, [View] or [Slice] before Close must not
// be used after it: the memory is gone, and the library cannot detect such
// use.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		return s.errClosed("close")
	}
	unregisterMapping(s)
	dropPresence(s.fd, s.presence)
	err1 := sysUnmap(s.data)
	err2 := sysClose(s.fd)
	s.data = nil
	s.fd = -1
	if err1 != nil {
		return &fs.PathError{Op: "munmap", Path: s.name, Err: err1}
	}
	if err2 != nil {
		return &fs.PathError{Op: "close", Path: s.name, Err: err2}
	}
	return nil
}

// Unlink removes the segment's name, as the package-level [Unlink] does.
// The mapping stays valid until Close. It may be called before or after
// Close. An anonymous segment has no name to remove: that is an error
// matching fs.ErrInvalid.
func (s *Segment) Unlink() error {
	if s.name == "" {
		return &fs.PathError{Op: "shm_unlink", Path: "", Err: fmt.Errorf("%w: anonymous segment has no name", fs.ErrInvalid)}
	}
	return Unlink(s.name)
}

// Fd returns the segment's file descriptor, or -1 once it is closed. The
// descriptor stays owned by the Segment: do not close it.
func (s *Segment) Fd() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return -1
	}
	return s.fd
}

// Stat returns information about the shared memory object: its size, as the
// kernel reports it now, permission bits and modification time. Name in the
// result is the segment's name without the leading slash.
func (s *Segment) Stat() (fs.FileInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return nil, s.errClosed("fstat")
	}
	fi, err := sysStat(s.fd, s.name)
	if err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: s.name, Err: err}
	}
	return fi, nil
}

func (s *Segment) errClosed(op string) error {
	return &fs.PathError{Op: op, Path: s.name, Err: fs.ErrClosed}
}
