package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// ErrPointers is returned, wrapped, by [View] and [Slice] when the element
// type holds a Go pointer anywhere inside it: a pointer, slice, string, map,
// channel, func, interface or unsafe.Pointer, directly or in an array or a
// nested struct. A pointer is an address in one process and means nothing in
// another, and the garbage collector cannot see pointers stored in shared
// memory.
var ErrPointers = errors.New("shm: type holds pointers")

// errNotSegment reports an object planted under a segment's name that is not
// a shared memory object: a symbolic link, a FIFO, a directory, a device.
var errNotSegment = notSegmentError{}

type notSegmentError struct{}

func (notSegmentError) Error() string {
	return "not a shared memory object (a symlink, FIFO, directory or device is in its place)"
}
func (notSegmentError) Is(target error) bool { return target == fs.ErrInvalid }

// invalidNameError explains why a name was refused. It matches fs.ErrInvalid.
type invalidNameError struct{ why string }

func (e invalidNameError) Error() string      { return "invalid segment name: " + e.why }
func (invalidNameError) Is(target error) bool { return target == fs.ErrInvalid }

// canonicalName checks name and returns it with exactly one leading slash.
//
// A name is one path element with an optional leading slash. It must not be
// empty, ".", "..", contain a slash after the first byte or a NUL byte, or be
// longer than the platform allows (nameMax bytes after the slash).
//
// glibc accepts "." and ".." (shm_open("..") opens /dev itself, see glibc
// posix/shm-directory.c); musl's src/mman/shm_open.c refuses them, and so do we.
func canonicalName(name string) (string, error) {
	rest := strings.TrimPrefix(name, "/")
	switch {
	case rest == "":
		return "", invalidNameError{"empty"}
	case rest == "." || rest == "..":
		return "", invalidNameError{`"." and ".." are not segment names`}
	case strings.IndexByte(rest, '/') >= 0:
		return "", invalidNameError{"slash after the leading one"}
	case strings.IndexByte(rest, 0) >= 0:
		return "", invalidNameError{"NUL byte"}
	case len(rest) > nameMax:
		return "", invalidNameError{fmt.Sprintf("%d bytes long; %s allows at most %d bytes after the leading slash (%d counting it)",
			len(rest), platformName, nameMax, nameMax+1)}
	}
	if len(rest) < len(name) {
		return name, nil // already canonical: no need to build a new string
	}
	return "/" + rest, nil
}

// Create creates a new segment of size bytes, with mode 0600, and maps it
// read-write. The memory is zero-filled.
//
// Create fails with an error matching fs.ErrExist if the name is taken. The
// size must be positive. On Linux the segment appears under its name only
// once it is fully sized and its memory reserved, so no other process ever
// sees it empty or half-made, and a full /dev/shm fails here with ENOSPC
// rather than with SIGBUS later.
//
// Errors are of type *fs.PathError.
func Create(name string, size int) (*Segment, error) {
	return OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, size)
}

// Open opens an existing segment read-write and maps all of it. It never
// changes the segment's size. A missing name gives an error matching
// fs.ErrNotExist; an empty segment (size 0) is an error matching
// fs.ErrInvalid.
//
// Errors are of type *fs.PathError.
func Open(name string) (*Segment, error) {
	return OpenFile(name, os.O_RDWR, 0, 0)
}

// OpenFile is the general open call, in the manner of [os.OpenFile].
//
// flag is os.O_RDONLY or os.O_RDWR, optionally with os.O_CREATE and
// os.O_EXCL. O_RDONLY maps the segment read-only. O_CREATE needs O_RDWR.
// O_TRUNC and O_WRONLY are refused: shrinking a segment pulls memory out
// from under every process that maps it, and a mapping cannot be write-only.
//
// perm is the permission of a segment the call creates, applied exactly,
// whatever the umask. size is the size of a segment the call creates. For a
// segment that exists already, size 0 maps all of it, a smaller size maps
// that prefix, and a larger size is an error matching fs.ErrInvalid.
//
// Open-or-create (O_CREATE without O_EXCL) is race-free between processes:
// exactly one creates, and every caller gets the same fully sized segment.
//
// Errors are of type *fs.PathError.
func OpenFile(name string, flag int, perm fs.FileMode, size int) (*Segment, error) {
	cname, err := canonicalName(name)
	if err != nil {
		return nil, &fs.PathError{Op: "shm_open", Path: name, Err: err}
	}
	if err := checkFlags(flag, perm, size); err != nil {
		return nil, &fs.PathError{Op: "shm_open", Path: cname, Err: err}
	}
	return openFile(cname, flag, uint32(perm.Perm()), size)
}

// checkFlags validates the arguments of OpenFile that do not depend on the
// platform.
func checkFlags(flag int, perm fs.FileMode, size int) error {
	const known = os.O_RDONLY | os.O_WRONLY | os.O_RDWR | os.O_CREATE | os.O_EXCL | os.O_TRUNC
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	switch {
	case flag&^known != 0:
		return fmt.Errorf("%w: flags %#x are not supported (use O_RDONLY, O_RDWR, O_CREATE, O_EXCL)", fs.ErrInvalid, flag&^known)
	case flag&os.O_TRUNC != 0:
		return fmt.Errorf("%w: O_TRUNC is refused: shrinking a segment pulls memory from under the processes that map it", fs.ErrInvalid)
	case acc != os.O_RDONLY && acc != os.O_RDWR:
		return fmt.Errorf("%w: O_WRONLY is not supported: a mapping cannot be write-only", fs.ErrInvalid)
	case flag&os.O_CREATE != 0 && acc != os.O_RDWR:
		return fmt.Errorf("%w: O_CREATE needs O_RDWR", fs.ErrInvalid)
	case flag&os.O_EXCL != 0 && flag&os.O_CREATE == 0:
		return fmt.Errorf("%w: O_EXCL needs O_CREATE", fs.ErrInvalid)
	case flag&os.O_CREATE != 0 && size <= 0:
		return fmt.Errorf("%w: size %d: a new segment needs a positive size", fs.ErrInvalid, size)
	case size < 0:
		return fmt.Errorf("%w: negative size %d", fs.ErrInvalid, size)
	case perm&^fs.ModePerm != 0:
		return fmt.Errorf("%w: mode %v has bits other than permissions", fs.ErrInvalid, perm)
	}
	return nil
}

// Unlink removes the name of a segment. Processes that have it mapped keep
// their mappings, and the memory is freed when the last one is unmapped. A
// missing name is an error matching fs.ErrNotExist.
//
// Errors are of type *fs.PathError.
func Unlink(name string) error {
	cname, err := canonicalName(name)
	if err != nil {
		return &fs.PathError{Op: "shm_unlink", Path: name, Err: err}
	}
	if err := sysUnlink(cname); err != nil {
		return &fs.PathError{Op: "shm_unlink", Path: cname, Err: err}
	}
	return nil
}

// Exists reports whether a segment of that name exists. The error is nil
// unless the answer could not be found (an invalid name, an unsupported
// platform).
func Exists(name string) (bool, error) {
	cname, err := canonicalName(name)
	if err != nil {
		return false, &fs.PathError{Op: "shm_open", Path: name, Err: err}
	}
	return sysExists(cname)
}

// CreateTemp creates a new segment of size bytes, with mode 0600, whose name
// is prefix followed by random characters, and maps it read-write. Use
// [Segment.Name] to learn the name. The caller is responsible for unlinking
// it. prefix follows the rules for names and may be empty; it must leave room
// for 8 random characters within the platform's limit.
func CreateTemp(prefix string, size int) (*Segment, error) {
	const tries = 100
	var s *Segment
	var err error
	for range tries {
		var r [4]byte
		rand.Read(r[:])
		s, err = Create(prefix+hex.EncodeToString(r[:]), size)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return s, err
}
