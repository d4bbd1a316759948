package shm

import (
	"fmt"
	"io/fs"
	"strings"
)

// CreateAnonymous creates a new shared memory segment of size bytes that has
// no name, and maps it read-write. The memory is zero-filled.
//
// No other process can open an anonymous segment by name, so it cannot be
// squatted, guessed or left behind after a crash: the memory is freed when
// the last descriptor is closed and the last mapping removed. Share it by
// handing its descriptor to a peer, with [SendSegment] over a Unix socket or
// as an inherited descriptor of a child process.
//
// On Linux it is a memfd (memfd_create(2) with MFD_CLOEXEC|MFD_ALLOW_SEALING),
// its space reserved with fallocate, and it can be sealed with
// [Segment.AddSeals]. On FreeBSD it is a SHM_ANON object (shm_open(2)). On
// macOS, which has neither, it is a segment created under a random name that
// is unlinked at once; for that instant the name exists. Elsewhere it returns
// an error matching errors.ErrUnsupported.
//
// [Segment.Name] of an anonymous segment is "". Errors are of type
// *fs.PathError with an empty Path.
func CreateAnonymous(size int) (*Segment, error) {
	if size <= 0 {
		return nil, &fs.PathError{Op: "memfd_create", Path: "",
			Err: fmt.Errorf("%w: size %d: a new segment needs a positive size", fs.ErrInvalid, size)}
	}
	return createAnonymous(size)
}

// Seal is a set of seals on a Linux memfd (fcntl(2), "File seals"). Once
// added, a seal can never be removed, so a process that receives a sealed
// segment can rely on it whatever the sender does later.
type Seal uint32

// The seals. The values are Linux's F_SEAL_* constants.
const (
	// SealSeal forbids adding further seals.
	SealSeal Seal = 0x1
	// SealShrink forbids making the segment smaller. A receiver of a segment
	// with this seal can never be hit by SIGBUS from truncation. The sender
	// can still write, and can still zero pages by punching a hole
	// (fallocate FALLOC_FL_PUNCH_HOLE, measured here); only SealWrite and
	// SealFutureWrite forbid that (mm/shmem.c, shmem_fallocate).
	SealShrink Seal = 0x2
	// SealGrow forbids making the segment larger.
	SealGrow Seal = 0x4
	// SealWrite forbids every write, through write(2) or any mapping. Adding
	// it fails with EBUSY while any writable shared mapping exists, including
	// the segment's own; it suits a segment filled with write(2) and never
	// mapped writable, which this package does not make.
	SealWrite Seal = 0x8
	// SealFutureWrite (Linux 5.1) forbids new writable mappings and write(2),
	// while mappings that exist keep working: the sender keeps writing, every
	// receiver can only read. A receiver maps such a segment read-only.
	SealFutureWrite Seal = 0x10
	// SealExec (Linux 6.3) forbids changing the execute permission bits.
	// CreateAnonymous sets it where the kernel knows it (MFD_NOEXEC_SEAL).
	SealExec Seal = 0x20

	// SealSize fixes the size: SealShrink|SealGrow.
	SealSize = SealShrink | SealGrow
)

var sealNames = []struct {
	s    Seal
	name string
}{
	{SealSeal, "seal"}, {SealShrink, "shrink"}, {SealGrow, "grow"}, {SealWrite, "write"}, {SealFutureWrite, "future-write"}, {SealExec, "exec"},
}

// String returns the seals as a "|"-separated list such as "shrink|grow", or
// "none".
func (s Seal) String() string {
	if s == 0 {
		return "none"
	}
	var parts []string
	for _, n := range sealNames {
		if s&n.s != 0 {
			parts = append(parts, n.name)
			s &^= n.s
		}
	}
	if s != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(s)))
	}
	return strings.Join(parts, "|")
}

// AddSeals adds seals to the segment (fcntl F_ADD_SEALS). Only anonymous
// segments made by [CreateAnonymous] on Linux accept seals: a named segment
// in /dev/shm gives an error matching fs.ErrPermission, and other systems
// errors.ErrUnsupported.
//
// Add SealShrink (or SealSize) before sending a segment to a peer that must
// trust its size. Note that SealWrite fails with EBUSY because the segment
// itself is mapped writable; use SealFutureWrite.
func (s *Segment) AddSeals(seals Seal) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return s.errClosed("fcntl")
	}
	if err := sysAddSeals(s.fd, seals); err != nil {
		return &fs.PathError{Op: "fcntl", Path: s.name, Err: fmt.Errorf("adding seals %v: %w", seals, err)}
	}
	return nil
}

// Seals returns the seals on the segment (fcntl F_GET_SEALS). A named
// segment in /dev/shm reports SealSeal: it can never be sealed. On systems
// other than Linux it returns an error matching errors.ErrUnsupported.
func (s *Segment) Seals() (Seal, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return 0, s.errClosed("fcntl")
	}
	seals, err := sysGetSeals(s.fd)
	if err != nil {
		return 0, &fs.PathError{Op: "fcntl", Path: s.name, Err: err}
	}
	return seals, nil
}
