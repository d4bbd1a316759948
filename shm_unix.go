//go:build linux || darwin || freebsd

package shm

// This file uses unsafe only to turn the address mmap returns into the
// Segment's []byte, and back for munmap (sysMap, sysUnmap).

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openFile implements OpenFile once name, flag, perm and size are checked.
func openFile(name string, flag int, perm uint32, size int) (*Segment, error) {
	if flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0 {
		return create(name, size, perm)
	}
	readOnly := flag&(os.O_RDONLY|os.O_WRONLY|os.O_RDWR) == os.O_RDONLY
	acc := unix.O_RDWR
	if readOnly {
		acc = unix.O_RDONLY
	}
	// Open-or-create: open, and if the name is missing, create exclusively;
	// if another process created it in between (EEXIST), open theirs. A
	// segment seen empty may be one whose creator is still sizing it (a C
	// peer doing shm_open then ftruncate, or any creator on macOS), so an
	// open-or-create waits a little for the size to appear.
	deadline := time.Now().Add(time.Second)
	for {
		fd, err := sysOpen(name, acc)
		if err == unix.ENOENT && flag&os.O_CREATE != 0 {
			s, err := create(name, size, perm)
			if err == nil || !isErrno(err, unix.EEXIST) || time.Now().After(deadline) {
				return s, err
			}
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "shm_open", Path: name, Err: err}
		}
		objSize, err := fdSize(fd)
		if err != nil {
			sysClose(fd)
			return nil, &fs.PathError{Op: statOp(err), Path: name, Err: err}
		}
		if objSize == 0 && flag&os.O_CREATE != 0 && time.Now().Before(deadline) {
			sysClose(fd)
			time.Sleep(time.Millisecond)
			continue
		}
		switch {
		case objSize == 0:
			sysClose(fd)
			return nil, &fs.PathError{Op: "mmap", Path: name, Err: fmt.Errorf("%w: segment is empty (size 0): nothing to map", fs.ErrInvalid)}
		case size > objSize:
			sysClose(fd)
			return nil, &fs.PathError{Op: "mmap", Path: name, Err: fmt.Errorf("%w: size %d is larger than the segment's %d bytes", fs.ErrInvalid, size, objSize)}
		case size == 0:
			size = objSize
		}
		return newSegment(name, fd, size, readOnly)
	}
}

// create makes a new segment exclusively, sized and with exactly perm, and
// maps it.
func create(name string, size int, perm uint32) (*Segment, error) {
	fd, op, err := sysCreate(name, size, perm)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	mapSize := size
	if createRoundsSize {
		objSize, err := fdSize(fd)
		if err != nil {
			sysClose(fd)
			sysUnlink(name)
			return nil, &fs.PathError{Op: "fstat", Path: name, Err: err}
		}
		// macOS rounds the size up to a page (xnu bsd/kern/posix_shm.c);
		// map what the kernel made.
		mapSize = max(objSize, size)
	}
	s, err := newSegment(name, fd, mapSize, false)
	if err != nil {
		// The name is published already; a failed Create must leave
		// nothing behind (mmap fails with ENOMEM past RLIMIT_AS, or when
		// the address space is full, as it can be on 32-bit systems).
		sysUnlink(name)
		return nil, err
	}
	return s, nil
}

// statOp names the call to blame for an error from fdSize: something
// planted under the name is a failure to open the segment, shm_open; any
// other error is fstat's own.
func statOp(err error) string {
	if err == errNotSegment {
		return "shm_open"
	}
	return "fstat"
}

func isErrno(err error, errno syscall.Errno) bool {
	pe, ok := err.(*fs.PathError)
	return ok && pe.Err == errno
}

// fdSize returns the size of the object behind fd, after checking that it
// is a shared memory object and that its size fits in an int (it may not on
// 32-bit systems).
func fdSize(fd int) (int, error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return 0, err
	}
	if !isSegmentMode(uint32(st.Mode)) {
		return 0, errNotSegment
	}
	if st.Size < 0 || uint64(st.Size) > math.MaxInt {
		return 0, fmt.Errorf("%w: size %d does not fit in this platform's int", fs.ErrInvalid, st.Size)
	}
	return int(st.Size), nil
}

// sysMap maps size bytes of fd shared. It uses unix.MmapPtr rather than
// unix.Mmap: Mmap records every mapping in a map under a global lock so that
// Munmap can find it, bookkeeping the Segment already does (it keeps the
// slice, and Close unmaps exactly that), and which costs a measurable part
// of a small segment's create/close cycle (bench/lifecycle).
func sysMap(fd, size int, readOnly bool) ([]byte, error) {
	prot := unix.PROT_READ | unix.PROT_WRITE
	if readOnly {
		prot = unix.PROT_READ
	}
	p, err := unix.MmapPtr(fd, 0, nil, uintptr(size), prot, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), size), nil
}

// sysUnmap unmaps a mapping made by sysMap.
func sysUnmap(b []byte) error {
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}

func sysClose(fd int) error { return unix.Close(fd) }

func sysExists(name string) (bool, error) {
	fd, err := sysOpen(name, unix.O_RDONLY)
	switch err {
	case nil:
		sysClose(fd)
		return true, nil
	case unix.ENOENT:
		return false, nil
	case unix.EACCES:
		return true, nil
	}
	return false, &fs.PathError{Op: "shm_open", Path: name, Err: err}
}

func sysStat(fd int, name string) (fs.FileInfo, error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return nil, err
	}
	return newFileInfo(name, &st), nil
}

// fileInfo is the fs.FileInfo of a shared memory object.
type fileInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
	sys     *unix.Stat_t
}

func newFileInfo(name string, st *unix.Stat_t) *fileInfo {
	mt := st.Mtim
	if len(name) > 0 && name[0] == '/' {
		name = name[1:]
	}
	return &fileInfo{
		name:    name,
		size:    st.Size,
		mode:    fs.FileMode(st.Mode & 0o777),
		modTime: time.Unix(int64(mt.Sec), int64(mt.Nsec)),
		sys:     st,
	}
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.modTime }
func (fi *fileInfo) IsDir() bool        { return false }

// Sys returns the *unix.Stat_t from fstat.
func (fi *fileInfo) Sys() any { return fi.sys }

// ignoringEINTR calls fn until it returns something other than EINTR.
func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if err != unix.EINTR {
			return err
		}
	}
}
