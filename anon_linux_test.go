package shm

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// countFds returns the number of open descriptors of this process.
func countFds(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("reading /proc/self/fd: %v", err)
	}
	return len(ents)
}

func TestCreateAnonymous(t *testing.T) {
	before := countFds(t)
	s, err := CreateAnonymous(10000)
	if err != nil {
		t.Fatalf("CreateAnonymous: %v", err)
	}
	if s.Name() != "" || s.Size() != 10000 {
		t.Errorf("Name, Size = %q, %d, want \"\", 10000", s.Name(), s.Size())
	}
	if !bytes.Equal(s.Bytes(), make([]byte, 10000)) {
		t.Errorf("new anonymous segment is not zero-filled")
	}
	if _, err := s.WriteAt([]byte("hello"), 9995); err != nil {
		t.Errorf("WriteAt: %v", err)
	}
	if err := s.Unlink(); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Unlink of anonymous segment = %v, want fs.ErrInvalid", err)
	}
	// It is a memfd: its /proc link says so.
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(s.Fd()))
	if err != nil || !bytes.HasPrefix([]byte(link), []byte("/memfd:")) {
		t.Errorf("descriptor link = %q, %v, want /memfd:...", link, err)
	}
	// Its space is reserved: fallocate made the pages.
	var st unix.Stat_t
	if err := unix.Fstat(s.Fd(), &st); err != nil || st.Blocks*512 < 10000 {
		t.Errorf("fstat blocks = %d (%v), want the size reserved", st.Blocks, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if after := countFds(t); after != before {
		t.Errorf("descriptors: %d before, %d after Close", before, after)
	}
	for _, size := range []int{0, -1} {
		if _, err := CreateAnonymous(size); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("CreateAnonymous(%d) = %v, want fs.ErrInvalid", size, err)
		}
	}
}

func TestSeals(t *testing.T) {
	s, err := CreateAnonymous(8192)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seals, err := s.Seals()
	if err != nil || seals&(SealSize|SealSeal|SealWrite|SealFutureWrite) != 0 {
		t.Fatalf("Seals of a new segment = %v, %v, want none of seal, shrink, grow, write", seals, err)
	}
	// SealWrite needs no writable shared mapping, and the segment is one
	// (memfd_create(2), F_SEAL_WRITE: EBUSY).
	if err := s.AddSeals(SealWrite); !errors.Is(err, unix.EBUSY) {
		t.Errorf("AddSeals(SealWrite) on a mapped segment = %v, want EBUSY", err)
	}
	if err := s.AddSeals(SealSize); err != nil {
		t.Fatalf("AddSeals(SealSize): %v", err)
	}
	if err := unix.Ftruncate(s.Fd(), 4096); err != unix.EPERM {
		t.Errorf("ftruncate smaller on a SealShrink segment = %v, want EPERM", err)
	}
	if err := unix.Ftruncate(s.Fd(), 1<<20); err != unix.EPERM {
		t.Errorf("ftruncate larger on a SealGrow segment = %v, want EPERM", err)
	}
	if err := s.AddSeals(SealFutureWrite); err != nil {
		t.Fatalf("AddSeals(SealFutureWrite): %v", err)
	}
	// Existing mappings keep writing; new writable ones are refused.
	if _, err := s.WriteAt([]byte("still writable"), 0); err != nil {
		t.Errorf("WriteAt after SealFutureWrite: %v", err)
	}
	if _, err := unix.Mmap(s.Fd(), 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != unix.EPERM {
		t.Errorf("new writable mapping after SealFutureWrite = %v, want EPERM", err)
	}
	// A write seal also stops zeroing the memory by punching a hole, which
	// size seals alone allow.
	if err := unix.Fallocate(s.Fd(), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 8192); err != unix.EPERM {
		t.Errorf("punching a hole after SealFutureWrite = %v, want EPERM", err)
	}
	seals, err = s.Seals()
	if want := SealSize | SealFutureWrite; err != nil || seals&want != want {
		t.Errorf("Seals = %v, %v, want %v", seals, err, want)
	}
	if got := (SealShrink | SealGrow | Seal(0x100)).String(); got != "shrink|grow|0x100" {
		t.Errorf("Seal.String = %q", got)
	}

	// A named segment can never be sealed: F_SEAL_SEAL is set at creation.
	n, err := Create(testName(t), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.AddSeals(SealShrink); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("AddSeals on a named segment = %v, want fs.ErrPermission", err)
	}
	if seals, err := n.Seals(); err != nil || seals != SealSeal {
		t.Errorf("Seals of a named segment = %v, %v, want seal", seals, err)
	}
	s.Close()
	if err := s.AddSeals(SealSeal); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("AddSeals after Close = %v, want fs.ErrClosed", err)
	}
}
