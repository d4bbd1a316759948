package shm

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func mustCreate(t testing.TB, size int) *Segment {
	t.Helper()
	s, err := Create(testName(t), size)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func wantPathError(t *testing.T, call string, err error, op, path string, target error) {
	t.Helper()
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("%s = %v (%T), want *fs.PathError", call, err, err)
	}
	if pe.Op != op || pe.Path != path {
		t.Errorf("%s: PathError{Op: %q, Path: %q}, want {Op: %q, Path: %q}", call, pe.Op, pe.Path, op, path)
	}
	if !errors.Is(err, target) {
		t.Errorf("%s = %v, want errors.Is(err, %v)", call, err, target)
	}
}

func TestInvalidNames(t *testing.T) {
	long := strings.Repeat("a", nameMax+1)
	names := []string{"", "/", "//x", "a/b", "/a/b", ".", "..", "/.", "/..", "a\x00b", "\x00", long, "/" + long, "../etc", "a/"}
	for _, name := range names {
		_, err := Create(name, 4096)
		wantPathError(t, "Create("+strconv.Quote(name)+")", err, "shm_open", name, fs.ErrInvalid)
		_, err = Open(name)
		wantPathError(t, "Open("+strconv.Quote(name)+")", err, "shm_open", name, fs.ErrInvalid)
		_, err = OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600, 4096)
		wantPathError(t, "OpenFile("+strconv.Quote(name)+")", err, "shm_open", name, fs.ErrInvalid)
		err = Unlink(name)
		wantPathError(t, "Unlink("+strconv.Quote(name)+")", err, "shm_unlink", name, fs.ErrInvalid)
		if _, err := Exists(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Exists(%q) = %v, want fs.ErrInvalid", name, err)
		}
	}
	_, err := Create(long, 1)
	if !strings.Contains(err.Error(), strconv.Itoa(nameMax)) {
		t.Errorf("Create(long) = %v, want the limit %d named", err, nameMax)
	}
	if leaked := leakedNames(); len(leaked) > 0 {
		t.Errorf("invalid names created %v", leaked)
	}
}

func TestLongestName(t *testing.T) {
	name := testName(t)
	name += strings.Repeat("x", nameMax-len(name))
	t.Cleanup(func() { Unlink(name) })
	s, err := Create(name, 1)
	if err != nil {
		t.Fatalf("Create(%d-byte name) = %v, want success", len(name), err)
	}
	s.Close()
	if err := Unlink("/" + name); err != nil {
		t.Fatalf("Unlink: %v", err)
	}
}

func TestNameCanonical(t *testing.T) {
	name := testName(t)
	s, err := Create(name, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Name(); got != "/"+name {
		t.Errorf("Name() = %q, want %q", got, "/"+name)
	}
	s2, err := Open("/" + name)
	if err != nil {
		t.Fatalf("Open(/%s) = %v", name, err)
	}
	defer s2.Close()
	if s2.Name() != s.Name() {
		t.Errorf("Open with slash: Name() = %q, want %q", s2.Name(), s.Name())
	}
	s.Bytes()[7] = 42
	if s2.Bytes()[7] != 42 {
		t.Errorf("two mappings of one segment do not share memory")
	}
}

func TestCreateExclusive(t *testing.T) {
	s := mustCreate(t, 4096)
	_, err := Create(s.Name(), 4096)
	wantPathError(t, "Create(existing)", err, "shm_open", s.Name(), fs.ErrExist)
	for _, size := range []int{0, -1, -1 << 30} {
		name := testName(t)
		_, err := Create(name, size)
		wantPathError(t, "Create(size "+strconv.Itoa(size)+")", err, "shm_open", "/"+name, fs.ErrInvalid)
		if ok, _ := Exists(name); ok {
			t.Errorf("Create(size %d) failed but left %s", size, name)
		}
	}
}

func TestCreateZeroFilledAndSized(t *testing.T) {
	s := mustCreate(t, 10000)
	want := segSize(10000)
	if s.Size() != want || len(s.Bytes()) != want {
		t.Fatalf("Size() = %d, len(Bytes()) = %d, want %d", s.Size(), len(s.Bytes()), want)
	}
	if !bytes.Equal(s.Bytes(), make([]byte, want)) {
		t.Errorf("new segment is not zero-filled")
	}
	fi, err := s.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != int64(want) || fi.Mode() != 0o600 || fi.Name() != s.Name()[1:] {
		t.Errorf("Stat() = size %d mode %v name %q, want %d 0600 %q", fi.Size(), fi.Mode(), fi.Name(), want, s.Name()[1:])
	}
	if runtime.GOOS == "linux" {
		// fallocate reserved the pages: the blocks are allocated now.
		if got := allocatedBytes(fi); got < 10000 {
			t.Errorf("Create reserved %d bytes, want ≥ 10000 (fallocate)", got)
		}
	}
}

func TestPermIgnoresUmask(t *testing.T) {
	old := umask(0o077)
	defer umask(old)
	name := testName(t)
	s, err := OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := s.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o644 {
		t.Errorf("mode = %v with umask 077, want -rw-r--r--", fi.Mode())
	}
}

func TestOpenNotExist(t *testing.T) {
	name := testName(t)
	_, err := Open(name)
	wantPathError(t, "Open(missing)", err, "shm_open", "/"+name, fs.ErrNotExist)
	err = Unlink(name)
	wantPathError(t, "Unlink(missing)", err, "shm_unlink", "/"+name, fs.ErrNotExist)
	if ok, err := Exists(name); ok || err != nil {
		t.Errorf("Exists(missing) = %v, %v; want false, nil", ok, err)
	}
}

func TestOpenEmptySegment(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("plants a file in /dev/shm")
	}
	name := testName(t)
	f, err := os.OpenFile(filepath.Join(shmDir, name), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Open(name)
	wantPathError(t, "Open(empty)", err, "mmap", "/"+name, fs.ErrInvalid)
}

func TestPlanted(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("plants objects in /dev/shm")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	plant := map[string]func(path string) error{
		"symlink":   func(p string) error { return os.Symlink(target, p) },
		"dangling":  func(p string) error { return os.Symlink(filepath.Join(dir, "nothing"), p) },
		"fifo":      func(p string) error { return mkfifo(p, 0o600) },
		"directory": func(p string) error { return os.Mkdir(p, 0o700) },
	}
	for kind, mk := range plant {
		t.Run(kind, func(t *testing.T) {
			name := testName(t)
			path := filepath.Join(shmDir, name)
			if err := mk(path); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(path) })
			done := make(chan struct{})
			go func() {
				defer close(done)
				for _, flag := range []int{os.O_RDWR, os.O_RDONLY, os.O_RDWR | os.O_CREATE} {
					s, err := OpenFile(name, flag, 0o600, 4096)
					if err == nil {
						s.Close()
						t.Errorf("OpenFile(%s, %#x) succeeded on a planted %s", name, flag, kind)
						continue
					}
					var pe *fs.PathError
					if !errors.As(err, &pe) || pe.Path != "/"+name || pe.Op != "shm_open" || !errors.Is(err, fs.ErrInvalid) {
						t.Errorf("OpenFile(planted %s, %#x) = %v, want *fs.PathError{Op: shm_open, Path: /%s} matching fs.ErrInvalid", kind, flag, err, name)
					}
				}
				if _, err := Create(name, 4096); !errors.Is(err, fs.ErrExist) {
					t.Errorf("Create over planted %s = %v, want fs.ErrExist", kind, err)
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("OpenFile on a planted %s hangs", kind)
			}
			got, err := os.ReadFile(target)
			if err != nil || string(got) != "precious" {
				t.Errorf("symlink target changed: %q, %v", got, err)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	s := mustCreate(t, 4096)
	copy(s.Bytes(), "hello")
	r, err := OpenFile(s.Name(), os.O_RDONLY, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.ReadOnly() || s.ReadOnly() {
		t.Errorf("ReadOnly() = %v, %v; want true, false", r.ReadOnly(), s.ReadOnly())
	}
	if got := string(r.Bytes()[:5]); got != "hello" {
		t.Errorf("read-only Bytes() = %q, want hello", got)
	}
	_, err = r.WriteAt([]byte("x"), 0)
	wantPathError(t, "WriteAt on read-only", err, "write", s.Name(), fs.ErrPermission)
	if s.Bytes()[0] != 'h' {
		t.Errorf("refused write changed memory")
	}
}

func TestOpenFileFlags(t *testing.T) {
	s := mustCreate(t, 8192)
	bad := []struct {
		flag int
		size int
	}{
		{os.O_RDWR | os.O_TRUNC, 0},
		{os.O_RDWR | os.O_CREATE | os.O_TRUNC, 8192},
		{os.O_WRONLY, 0},
		{os.O_RDONLY | os.O_CREATE, 8192},
		{os.O_RDWR | os.O_EXCL, 0},
		{os.O_RDWR | os.O_APPEND, 0},
		{os.O_RDWR, -1},
		{os.O_RDWR, 8193},
	}
	for _, c := range bad {
		_, err := OpenFile(s.Name(), c.flag, 0o600, c.size)
		if !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("OpenFile(flag %#x, size %d) = %v, want fs.ErrInvalid", c.flag, c.size, err)
		}
	}
	p, err := OpenFile(s.Name(), os.O_RDWR, 0, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Size() != 4096 {
		t.Errorf("prefix mapping Size() = %d, want 4096", p.Size())
	}
	if fi, _ := s.Stat(); fi.Size() != int64(segSize(8192)) {
		t.Errorf("opening a prefix changed the size to %d", fi.Size())
	}
	// Open-or-create of an existing segment maps it as it is.
	o, err := OpenFile(s.Name(), os.O_RDWR|os.O_CREATE, 0o600, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Size() != 100 {
		t.Errorf("open-or-create of existing 8192 with size 100: Size() = %d, want 100", o.Size())
	}
	if _, err := OpenFile(s.Name(), os.O_RDWR|os.O_CREATE, 0o600, segSize(8192)+1); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("open-or-create of existing 8192 with size %d = %v, want fs.ErrInvalid", segSize(8192)+1, err)
	}
}

func init() {
	children["open-or-create"] = func(args []string) int {
		name := args[0]
		size, _ := strconv.Atoi(args[1])
		s, err := OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600, size)
		if err != nil {
			return childFail("OpenFile: %v", err)
		}
		defer s.Close()
		if s.Size() != size {
			return childFail("Size() = %d, want %d", s.Size(), size)
		}
		n, err := View[atomic.Uint32](s, 0)
		if err != nil {
			return childFail("View: %v", err)
		}
		n.Add(1)
		return 0
	}
}

func TestOpenOrCreateRace(t *testing.T) {
	const procs, size = 6, 1 << 16
	for round := range 3 {
		name := testName(t)
		var wg sync.WaitGroup
		for range procs {
			wg.Go(func() { runChild(t, "open-or-create", name, strconv.Itoa(size)) })
		}
		wg.Wait()
		s, err := Open(name)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := View[atomic.Uint32](s, 0)
		if got := n.Load(); got != procs || s.Size() != size {
			t.Errorf("round %d: %d processes shared a counter of %d in a %d-byte segment, want %d in %d", round, procs, got, s.Size(), procs, size)
		}
		s.Close()
	}
}

func TestReadWriteAt(t *testing.T) {
	s := mustCreate(t, 100)
	var _ io.ReaderAt = s
	var _ io.WriterAt = s
	if n, err := s.WriteAt([]byte("hello"), 95); n != 5 || err != nil {
		t.Errorf("WriteAt(5 bytes, 95) = %d, %v; want 5, nil", n, err)
	}
	buf := make([]byte, 10)
	if n, err := s.ReadAt(buf[:5], 95); n != 5 || err != nil || string(buf[:5]) != "hello" {
		t.Errorf("ReadAt(5, 95) = %d, %v, %q; want 5, nil, hello", n, err, buf[:5])
	}
	if n, err := s.ReadAt(buf, 95); n != 5 || err != io.EOF {
		t.Errorf("ReadAt(10, 95) = %d, %v; want 5, io.EOF", n, err)
	}
	if n, err := s.ReadAt(buf, 100); n != 0 || err != io.EOF {
		t.Errorf("ReadAt(10, 100) = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := s.ReadAt(buf, 1<<62); n != 0 || err != io.EOF {
		t.Errorf("ReadAt(10, 1<<62) = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := s.ReadAt(buf, -1); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadAt(-1) = %v, want fs.ErrInvalid", err)
	}
	for _, off := range []int64{96, 101, 1 << 62, -1} {
		n, err := s.WriteAt([]byte("world"), off)
		if n != 0 || err == nil {
			t.Errorf("WriteAt(5 bytes, %d) = %d, %v; want 0 and an error", off, n, err)
		}
	}
	if _, err := s.WriteAt([]byte("world"), 96); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("WriteAt past the end = %v, want io.ErrShortWrite", err)
	}
	if got := string(s.Bytes()[95:]); got != "hello" {
		t.Errorf("a refused WriteAt changed memory: %q, want hello", got)
	}
	if n, err := s.WriteAt(nil, 100); n != 0 || err != nil {
		t.Errorf("WriteAt(nil, size) = %d, %v; want 0, nil", n, err)
	}
}

func init() {
	children["shrink"] = func(args []string) int {
		// Another process shrinks the segment, as a careless or hostile peer
		// might, with ftruncate on its own descriptor.
		if err := os.Truncate(filepath.Join(shmDir, args[0]), 4096); err != nil {
			return childFail("truncate: %v", err)
		}
		return 0
	}
}

func TestShrunkByAnotherProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux lets a segment shrink")
	}
	skipIfEmulated(t, emuFaultAddr)
	s := mustCreate(t, 64<<10)
	runChild(t, "shrink", s.Name()[1:])
	buf := make([]byte, 8192)
	if n, err := s.ReadAt(buf, 0); n != len(buf) && err == nil {
		t.Errorf("ReadAt(0) = %d, %v", n, err)
	}
	_, err := s.ReadAt(buf, 32<<10)
	wantPathError(t, "ReadAt past the shrunk end", err, "read", s.Name(), syscall.EFAULT)
	_, err = s.WriteAt(buf, 40<<10)
	wantPathError(t, "WriteAt past the shrunk end", err, "write", s.Name(), syscall.EFAULT)
	// The goroutine's fault setting is restored: still usable afterwards.
	if _, err := s.ReadAt(buf[:10], 0); err != nil {
		t.Errorf("ReadAt after a fault = %v", err)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	s := mustCreate(t, 4096)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	err := s.Close()
	wantPathError(t, "second Close()", err, "close", s.Name(), fs.ErrClosed)
	if s.Bytes() != nil || s.Size() != 0 || s.Fd() != -1 {
		t.Errorf("after Close: Bytes() = %v, Size() = %d, Fd() = %d; want nil, 0, -1", s.Bytes(), s.Size(), s.Fd())
	}
	if _, err := s.ReadAt(make([]byte, 1), 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("ReadAt after Close = %v, want fs.ErrClosed", err)
	}
	if _, err := s.WriteAt(make([]byte, 1), 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("WriteAt after Close = %v, want fs.ErrClosed", err)
	}
	if _, err := View[int64](s, 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("View after Close = %v, want fs.ErrClosed", err)
	}
	if _, err := Slice[int64](s, 0, 1); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Slice after Close = %v, want fs.ErrClosed", err)
	}
	if _, err := s.Stat(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Stat after Close = %v, want fs.ErrClosed", err)
	}
	if err := s.Unlink(); err != nil {
		t.Errorf("Unlink after Close = %v, want nil", err)
	}
}

func TestZeroSegment(t *testing.T) {
	var s Segment
	if s.Bytes() != nil || s.Size() != 0 || s.Fd() != -1 {
		t.Errorf("zero Segment: Bytes() = %v, Size() = %d, Fd() = %d", s.Bytes(), s.Size(), s.Fd())
	}
	if err := s.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("zero Segment Close() = %v, want fs.ErrClosed", err)
	}
	if _, err := s.ReadAt(make([]byte, 1), 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("zero Segment ReadAt = %v, want fs.ErrClosed", err)
	}
}

func TestCloseDuringCopies(t *testing.T) {
	for range 20 {
		s := mustCreate(t, 1<<20)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				buf := make([]byte, 64<<10)
				for {
					if _, err := s.ReadAt(buf, 0); err != nil {
						if !errors.Is(err, fs.ErrClosed) {
							t.Errorf("ReadAt racing Close = %v, want fs.ErrClosed", err)
						}
						return
					}
					if _, err := s.WriteAt(buf, 1000); err != nil {
						if !errors.Is(err, fs.ErrClosed) {
							t.Errorf("WriteAt racing Close = %v, want fs.ErrClosed", err)
						}
						return
					}
				}
			})
		}
		time.Sleep(time.Millisecond)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}

func TestUnlinkKeepsMapping(t *testing.T) {
	s := mustCreate(t, 4096)
	o, err := Open(s.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := s.Unlink(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := Exists(s.Name()); ok {
		t.Errorf("Exists after Unlink = true")
	}
	s.Bytes()[0] = 9
	if o.Bytes()[0] != 9 {
		t.Errorf("mappings stopped sharing after Unlink")
	}
	err = s.Unlink()
	wantPathError(t, "second Unlink", err, "shm_unlink", s.Name(), fs.ErrNotExist)
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestNoDescriptorLeak(t *testing.T) {
	before := openFDs(t)
	name := testName(t)
	for i := range 1000 {
		s, err := Create(name, 4096)
		if err != nil {
			t.Fatalf("cycle %d: Create: %v", i, err)
		}
		o, err := Open(name)
		if err != nil {
			t.Fatalf("cycle %d: Open: %v", i, err)
		}
		if _, err := Create(name, 4096); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("cycle %d: Create(existing) = %v", i, err)
		}
		o.Close()
		s.Close()
		if err := Unlink(name); err != nil {
			t.Fatalf("cycle %d: Unlink: %v", i, err)
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("open descriptors: %d before 1000 cycles, %d after", before, after)
	}
}

func TestFullShm(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux reserves with fallocate")
	}
	total, err := fsSize(shmDir)
	if err != nil {
		t.Skip(err)
	}
	if total == 0 || total+1<<20 > uint64(^uint(0)>>1) {
		t.Skipf("cannot ask for more than %s holds (%d bytes) with this int size", shmDir, total)
	}
	name := testName(t)
	_, err = Create(name, int(total+1<<20))
	wantPathError(t, "Create(larger than /dev/shm)", err, "fallocate", "/"+name, syscall.ENOSPC)
	if ok, _ := Exists(name); ok {
		t.Errorf("a failed Create left %s behind", name)
	}
}

func TestCreateTemp(t *testing.T) {
	s, err := CreateTemp(testPrefix+"tmp-", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unlink()
	defer s.Close()
	if !strings.HasPrefix(s.Name(), "/"+testPrefix+"tmp-") || len(s.Name()) != len(testPrefix)+5+8 {
		t.Errorf("CreateTemp name = %q", s.Name())
	}
	if ok, err := Exists(s.Name()); !ok || err != nil {
		t.Errorf("Exists(temp) = %v, %v", ok, err)
	}
}

// Views.

type header struct {
	Magic   uint32
	Flags   atomic.Uint32
	Counter atomic.Int64
	Name    [16]byte
	Pairs   [4]struct{ A, B int32 }
}

func TestView(t *testing.T) {
	s := mustCreate(t, 4096)
	h, err := View[header](s, 64)
	if err != nil {
		t.Fatal(err)
	}
	h.Magic = 0xfeedface
	h.Counter.Add(5)
	if got := *(*uint32)(unsafe.Pointer(&s.Bytes()[64])); got != 0xfeedface {
		t.Errorf("View did not alias the mapping: %#x", got)
	}
	xs, err := Slice[uint64](s, 128, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != 10 || cap(xs) != 10 {
		t.Errorf("Slice len %d cap %d, want 10 10", len(xs), cap(xs))
	}
	xs[9] = 1
	if s.Bytes()[128+72] != 1 {
		t.Errorf("Slice did not alias the mapping")
	}
	if xs, err := Slice[uint64](s, 4096, 0); err != nil || len(xs) != 0 {
		t.Errorf("Slice(end, 0) = %v, %v", xs, err)
	}
	if _, err := View[[4096]byte](s, 0); err != nil {
		t.Errorf("View of the whole segment = %v", err)
	}
	if _, err := View[struct{}](s, 4096); err != nil {
		t.Errorf("View of a zero-size type at the end = %v", err)
	}
}

func TestViewBounds(t *testing.T) {
	s := mustCreate(t, 4096)
	maxInt := int(^uint(0) >> 1)
	for _, c := range []struct{ off, n int }{
		{4096, 1}, {4088, 2}, {-8, 1}, {0, -1}, {0, 513}, {8, maxInt / 8}, {maxInt - 7, 1}, {0, maxInt},
	} {
		_, err := Slice[uint64](s, c.off, c.n)
		wantPathError(t, "Slice[uint64]("+strconv.Itoa(c.off)+", "+strconv.Itoa(c.n)+")", err, "view", s.Name(), fs.ErrInvalid)
	}
	if _, err := View[[4097]byte](s, 0); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("View of a type larger than the segment = %v", err)
	}
	for off := 1; off < int(unsafe.Alignof(int64(0))); off++ {
		_, err := View[int64](s, off)
		if !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "align") {
			t.Errorf("View[int64](%d) = %v, want an alignment error", off, err)
		}
	}
	if _, err := View[int32](s, 4); err != nil {
		t.Errorf("View[int32](4) = %v", err)
	}
}

type inner struct {
	X int
	S string
}

type withPointers struct {
	A     int64
	Inner [2]inner
}

func TestViewRefusesPointers(t *testing.T) {
	s := mustCreate(t, 4096)
	check := func(name string, err error, field string) {
		t.Helper()
		if !errors.Is(err, ErrPointers) {
			t.Errorf("View[%s] = %v, want ErrPointers", name, err)
		} else if !strings.Contains(err.Error(), field) {
			t.Errorf("View[%s] = %v, want the field %q named", name, err, field)
		}
	}
	_, err := View[*int](s, 0)
	check("*int", err, "the type itself")
	_, err = View[string](s, 0)
	check("string", err, "string")
	_, err = View[[]byte](s, 0)
	check("[]byte", err, "slice")
	_, err = View[map[int]int](s, 0)
	check("map", err, "map")
	_, err = View[chan int](s, 0)
	check("chan", err, "chan")
	_, err = View[func()](s, 0)
	check("func", err, "func")
	_, err = View[any](s, 0)
	check("any", err, "interface")
	_, err = View[unsafe.Pointer](s, 0)
	check("unsafe.Pointer", err, "unsafe.Pointer")
	_, err = View[withPointers](s, 0)
	check("withPointers", err, "Inner[0].S")
	_, err = Slice[[3]*int](s, 0, 1)
	check("[3]*int", err, "[0]")
	_, err = View[struct {
		A int
		_ [8]byte
		P atomic.Pointer[int]
	}](s, 0)
	check("atomic.Pointer", err, "P.")
	// Checked again, from the cache.
	_, err = View[withPointers](s, 0)
	check("withPointers (cached)", err, "Inner[0].S")
}

func TestViewAllocs(t *testing.T) {
	s := mustCreate(t, 4096)
	View[header](s, 0)
	if n := testing.AllocsPerRun(100, func() { View[header](s, 64) }); n != 0 {
		t.Errorf("View allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { Slice[uint32](s, 64, 100) }); n != 0 {
		t.Errorf("Slice allocates %v times per call, want 0", n)
	}
	buf := make([]byte, 64)
	if n := testing.AllocsPerRun(100, func() { s.ReadAt(buf, 0); s.WriteAt(buf, 0) }); n != 0 {
		t.Errorf("ReadAt+WriteAt allocate %v times per call, want 0", n)
	}
}

// Two processes.

type message struct {
	Seq   atomic.Uint32
	Len   uint32
	Text  [56]byte
	Reply [64]byte
}

func init() {
	children["reply"] = func(args []string) int {
		s, err := Open(args[0])
		if err != nil {
			return childFail("Open: %v", err)
		}
		defer s.Close()
		m, err := View[message](s, 0)
		if err != nil {
			return childFail("View: %v", err)
		}
		text := string(m.Text[:m.Len])
		copy(m.Reply[:], "child read: "+text)
		m.Seq.Add(1)
		return 0
	}
}

func TestTwoProcesses(t *testing.T) {
	s := mustCreate(t, 4096)
	m, err := View[message](s, 0)
	if err != nil {
		t.Fatal(err)
	}
	m.Len = uint32(copy(m.Text[:], "ping from parent"))
	runChild(t, "reply", s.Name())
	if m.Seq.Load() != 1 {
		t.Fatalf("child did not signal: Seq = %d", m.Seq.Load())
	}
	if got := string(bytes.TrimRight(m.Reply[:], "\x00")); got != "child read: ping from parent" {
		t.Errorf("reply = %q", got)
	}
}

func FuzzCanonicalName(f *testing.F) {
	for _, s := range []string{"", "/", "a", "/a", "//a", "a/b", ".", "..", "/..", "a\x00", strings.Repeat("z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, err := canonicalName(name)
		if err != nil {
			if !errors.Is(err, fs.ErrInvalid) {
				t.Fatalf("canonicalName(%q) error %v does not match fs.ErrInvalid", name, err)
			}
			if _, err2 := canonicalName("/" + strings.TrimPrefix(name, "/")); err2 == nil {
				t.Fatalf("%q refused but its slash form accepted", name)
			}
			return
		}
		rest := c[1:]
		if c[0] != '/' || rest == "" || rest == "." || rest == ".." || strings.ContainsAny(rest, "/\x00") || len(rest) > nameMax {
			t.Fatalf("canonicalName(%q) = %q, which is not a valid name", name, c)
		}
		if c2, err := canonicalName(c); err != nil || c2 != c {
			t.Fatalf("canonicalName(%q) = %q, %v; want it unchanged", c, c2, err)
		}
		if c3, _ := canonicalName(rest); c3 != c {
			t.Fatalf("%q and %q name different segments", rest, c)
		}
	})
}
