package shm

// This file holds the memory controls on a mapped segment: locking it in
// RAM, prefaulting it, advice to the kernel, and residency. It uses unsafe in
// touchEach only: to reach each page of the mapping as a 32-bit word for an
// atomic add of zero, which faults the page in without changing data another
// process may be writing.

import (
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"
	"unsafe"
)

// Advice is a hint to the kernel about how a segment's memory will be used
// (madvise(2)). It is a hint: the data never changes because of it.
type Advice int

const (
	// AdviseNormal undoes earlier advice.
	AdviseNormal Advice = iota
	// AdviseSequential expects access in increasing order: read ahead
	// aggressively, free pages soon after access.
	AdviseSequential
	// AdviseRandom expects access in random order: read ahead less.
	AdviseRandom
	// AdviseWillNeed expects access soon: start bringing pages in (from swap,
	// for shared memory).
	AdviseWillNeed
	// AdviseDontNeed drops this process's mapping of the pages. For shared
	// memory this frees nothing and loses nothing: the contents stay in the
	// segment and the next access maps them again. It is a way to shrink
	// this process's resident set.
	AdviseDontNeed
	// AdviseHugePage asks for transparent huge pages (Linux, MADV_HUGEPAGE).
	// For shared memory it has effect only when
	// /sys/kernel/mm/transparent_hugepage/shmem_enabled is "advise" (or
	// "within_size", "always"), and the segment is at least 2 MiB; the
	// kernel refuses it with EINVAL where THP is not built in. Elsewhere it
	// is an error matching errors.ErrUnsupported.
	AdviseHugePage
	// AdviseNoHugePage asks for no transparent huge pages (Linux,
	// MADV_NOHUGEPAGE). Elsewhere it is an error matching
	// errors.ErrUnsupported.
	AdviseNoHugePage
)

var adviceNames = [...]string{"normal", "sequential", "random", "willneed", "dontneed", "hugepage", "nohugepage"}

// String returns the advice's name, as in "dontneed".
func (a Advice) String() string {
	if a >= 0 && int(a) < len(adviceNames) {
		return adviceNames[a]
	}
	return fmt.Sprintf("Advice(%d)", int(a))
}

// Advise gives the kernel advice about the whole segment (madvise(2)). On
// systems without the advice it returns an error matching
// errors.ErrUnsupported.
func (s *Segment) Advise(a Advice) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return s.errClosed("madvise")
	}
	if err := sysAdvise(s.data, a); err != nil {
		return &fs.PathError{Op: "madvise", Path: s.name, Err: fmt.Errorf("%v: %w", a, err)}
	}
	return nil
}

// Lock locks the segment's pages in RAM (mlock(2)), faulting them in first:
// they are never swapped out while the lock holds, and touching them never
// waits for a disk. The lock belongs to this process's mapping and ends with
// [Segment.Unlock] or Close. It fails with an error matching
// fs.ErrPermission (EPERM) or wrapping ENOMEM when the segment is larger than
// RLIMIT_MEMLOCK allows ("ulimit -l").
func (s *Segment) Lock() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return s.errClosed("mlock")
	}
	if err := sysMlock(s.data); err != nil {
		return &fs.PathError{Op: "mlock", Path: s.name, Err: err}
	}
	return nil
}

// Unlock undoes [Segment.Lock] (munlock(2)).
func (s *Segment) Unlock() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return s.errClosed("munlock")
	}
	if err := sysMunlock(s.data); err != nil {
		return &fs.PathError{Op: "munlock", Path: s.name, Err: err}
	}
	return nil
}

// Prefault maps every page of the segment into this process now, allocating
// it if no process had touched it, so that later accesses take no page
// faults. A writable segment is prefaulted for writing.
//
// On Linux 5.14 and later it is one madvise(MADV_POPULATE_WRITE) or
// MADV_POPULATE_READ call; elsewhere it touches each page: a read for a
// read-only segment, and for a writable one an atomic add of zero, which
// leaves the data unchanged even while other processes write to it. If the
// segment was shrunk by another process, Prefault returns an error wrapping
// syscall.EFAULT rather than crashing.
func (s *Segment) Prefault() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return s.errClosed("madvise")
	}
	err := sysPopulate(s.data, s.readOnly)
	if err == errNoPopulate {
		err = touchPages(s.data, s.readOnly)
	}
	if err != nil {
		return &fs.PathError{Op: "madvise", Path: s.name, Err: fmt.Errorf("prefault: %w", err)}
	}
	return nil
}

// errNoPopulate tells Prefault that the kernel cannot populate a mapping in
// one call, so the pages must be touched.
var errNoPopulate = fmt.Errorf("shm: no MADV_POPULATE")

// sink keeps the compiler from dropping the reads in touchPages.
var sink atomic.Uint32

// touchPages touches one aligned word in each page of b, guarded against a
// fault as guardedCopy is.
func touchPages(b []byte, readOnly bool) error {
	return catchFault(func() { touchEach(b, readOnly) })
}

func touchEach(b []byte, readOnly bool) {
	pg := os.Getpagesize()
	base := unsafe.Pointer(unsafe.SliceData(b))
	var sum uint32
	// A mapping starts on a page boundary, so each page's first word is
	// aligned; the last whole word of a short final page is in bounds too.
	// Count pages rather than adding pg to an offset, which overflows on
	// 32-bit systems for a mapping within a page of math.MaxInt bytes.
	for i := range pageCount(len(b), pg) {
		off := i * pg
		if off > len(b)-4 {
			break
		}
		p := (*uint32)(unsafe.Add(base, off))
		if readOnly {
			sum += atomic.LoadUint32(p)
		} else {
			atomic.AddUint32(p, 0)
		}
	}
	sink.Add(sum)
}

// pageCount returns how many pages of size pg n bytes span, without the
// overflow of (n+pg-1)/pg for n near math.MaxInt (a 2 GiB mapping on 386).
func pageCount(n, pg int) int {
	c := n / pg
	if n%pg != 0 {
		c++
	}
	return c
}

// Resident returns how many bytes of the segment are in RAM now (mincore(2)),
// whoever touched them: the pages of a shared memory object are shared by
// every process that maps it. On Linux, pages reserved by Create's fallocate
// but never touched are not counted. Since Linux 5.0, the answer covers the
// shared pages only when this process could open the segment for writing;
// otherwise only pages it has touched itself are counted. It works on
// Linux, macOS (mincore through libSystem) and FreeBSD; elsewhere it returns
// an error matching errors.ErrUnsupported.
func (s *Segment) Resident() (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return 0, s.errClosed("mincore")
	}
	pg := os.Getpagesize()
	vec := make([]byte, pageCount(len(s.data), pg))
	if err := sysMincore(s.data, vec); err != nil {
		return 0, &fs.PathError{Op: "mincore", Path: s.name, Err: err}
	}
	n := 0
	for i, v := range vec {
		if v&1 != 0 {
			n += min(pg, len(s.data)-i*pg)
		}
	}
	return n, nil
}
