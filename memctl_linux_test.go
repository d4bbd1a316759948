package shm

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// punch drops every page of s's memory, so none is resident.
func punch(t *testing.T, s *Segment) {
	t.Helper()
	if err := unix.Fallocate(s.Fd(), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, int64(s.Size()+os.Getpagesize())); err != nil {
		t.Fatalf("punching a hole: %v", err)
	}
}

func TestResidentPrefault(t *testing.T) {
	skipIfEmulated(t, emuMadvise)
	const size = 1<<20 + 100 // a short last page
	name := testName(t)
	s, err := Create(name, size)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// fallocate reserved every page, but mincore counts a page only once it
	// has been touched (mm/shmem.c leaves fallocated folios not uptodate).
	if err := s.Prefault(); err != nil {
		t.Fatalf("Prefault: %v", err)
	}
	if n, err := s.Resident(); err != nil || n != size {
		t.Errorf("Resident after Create and Prefault = %d, %v, want %d", n, err, size)
	}
	punch(t, s)
	if n, err := s.Resident(); err != nil || n != 0 {
		t.Errorf("Resident after punching = %d, %v, want 0", n, err)
	}
	if err := s.Prefault(); err != nil {
		t.Fatalf("Prefault: %v", err)
	}
	if n, err := s.Resident(); err != nil || n != size {
		t.Errorf("Resident after Prefault = %d, %v, want %d", n, err, size)
	}

	// Read-only: MADV_POPULATE_READ, which allocates shmem pages too.
	r, err := OpenFile(name, os.O_RDONLY, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	punch(t, s)
	if err := r.Prefault(); err != nil {
		t.Fatalf("Prefault read-only: %v", err)
	}
	if n, err := r.Resident(); err != nil || n != size {
		t.Errorf("Resident after read-only Prefault = %d, %v, want %d", n, err, size)
	}

	// The fallback that touches pages leaves the data as it was.
	punch(t, s)
	for i := range s.Bytes() {
		s.Bytes()[i] = byte(i * 7)
	}
	want := bytes.Clone(s.Bytes())
	punch(t, s)
	copy(s.Bytes(), want) // the pages come back, then drop them from this mapping
	if err := s.Advise(AdviseDontNeed); err != nil {
		t.Fatalf("Advise(AdviseDontNeed): %v", err)
	}
	if err := touchPages(s.Bytes(), false); err != nil {
		t.Fatalf("touchPages: %v", err)
	}
	if err := touchPages(r.Bytes(), true); err != nil {
		t.Fatalf("touchPages read-only: %v", err)
	}
	if !bytes.Equal(s.Bytes(), want) {
		t.Errorf("touching pages changed the data")
	}
	// DONTNEED on shared memory loses nothing.
	if n, err := s.Resident(); err != nil || n != size {
		t.Errorf("Resident after DONTNEED + touch = %d, %v, want %d", n, err, size)
	}
}

func TestPrefaultShrunk(t *testing.T) {
	skipIfEmulated(t, emuFaultAddr)
	s, err := Create(testName(t), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := unix.Ftruncate(s.Fd(), 4096); err != nil {
		t.Fatal(err)
	}
	if err := s.Prefault(); err == nil {
		t.Errorf("Prefault of a shrunk segment succeeded, want an error")
	}
	if err := touchPages(s.Bytes(), false); !errors.Is(err, unix.EFAULT) {
		t.Errorf("touchPages of a shrunk segment = %v, want EFAULT", err)
	}
}

func TestLockAdvise(t *testing.T) {
	s, err := CreateAnonymous(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Lock(); err != nil {
		t.Errorf("Lock: %v", err)
	}
	if err := s.Unlock(); err != nil {
		t.Errorf("Unlock: %v", err)
	}
	for a := AdviseNormal; a <= AdviseNoHugePage; a++ {
		err := s.Advise(a)
		// Kernels built without transparent huge pages refuse the THP advice.
		if err != nil && !(a >= AdviseHugePage && errors.Is(err, unix.EINVAL)) {
			t.Errorf("Advise(%v): %v", a, err)
		}
	}
	if err := s.Advise(Advice(99)); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Advise(99) = %v, want errors.ErrUnsupported", err)
	}
	s.Close()
	for name, f := range map[string]func() error{
		"Lock": s.Lock, "Unlock": s.Unlock, "Prefault": s.Prefault,
		"Advise":   func() error { return s.Advise(AdviseNormal) },
		"Resident": func() error { _, err := s.Resident(); return err },
	} {
		if err := f(); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("%s after Close = %v, want fs.ErrClosed", name, err)
		}
	}
}

// TestPageCount: the page count of a mapping near math.MaxInt bytes must not
// overflow (it did, as (n+pg-1)/pg, on 386, where Resident then panicked in
// make and Prefault's page walk wrapped to negative offsets).
func TestPageCount(t *testing.T) {
	const pg = 4096
	for _, c := range []struct{ n, want int }{
		{0, 0}, {1, 1}, {pg, 1}, {pg + 1, 2},
		{math.MaxInt, math.MaxInt/pg + 1},
		{math.MaxInt - pg + 2, math.MaxInt/pg + 1},
	} {
		if got := pageCount(c.n, pg); got != c.want {
			t.Errorf("pageCount(%d, %d) = %d, want %d", c.n, pg, got, c.want)
		}
	}
}
