package shm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	children["recv-seg"] = childRecvSeg
	children["send-sealed"] = childSendSealed
	children["bad-send"] = childBadSend
}

// socketPair returns this process's end of a connected Unix socket pair as a
// *net.UnixConn, and the other end as a file to hand to a child.
func socketPair(t testing.TB, typ int) (*net.UnixConn, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	f := os.NewFile(uintptr(fds[0]), "parent-sock")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatalf("FileConn: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "child-sock")
}

// startWithSocket starts cmd with sock as its descriptor 3, and closes this
// process's copy of sock.
func startWithSocket(t testing.TB, cmd *exec.Cmd, sock *os.File) {
	t.Helper()
	cmd.ExtraFiles = []*os.File{sock}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	sock.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// childConn returns the socket a child finds at descriptor 3.
func childConn() (*net.UnixConn, error) {
	f := os.NewFile(3, "sock")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// childRecvSeg receives a segment requiring the seals args[0], checks that it
// begins with args[1], writes a reply after it and reports what it got.
func childRecvSeg(args []string) int {
	c, err := childConn()
	if err != nil {
		return childFail("conn: %v", err)
	}
	req, _ := strconv.Atoi(args[0])
	s, err := ReceiveSegment(c, &ReceiveOptions{RequireSeals: Seal(req)})
	if err != nil {
		return childFail("ReceiveSegment: %v", err)
	}
	defer s.Close()
	if !bytes.HasPrefix(s.Bytes(), []byte(args[1])) {
		return childFail("segment holds %q, want prefix %q", s.Bytes()[:len(args[1])], args[1])
	}
	seals, _ := s.Seals()
	if !s.ReadOnly() {
		copy(s.Bytes()[len(args[1]):], "|reply from child")
	}
	fmt.Printf("size=%d ro=%v seals=%v\n", s.Size(), s.ReadOnly(), seals)
	c.Write([]byte{'d'})
	return 0
}

// childSendSealed sends a sealed anonymous segment, waits for the receiver's
// go-ahead, tries to shrink and grow it, and reports the errors.
func childSendSealed(args []string) int {
	c, err := childConn()
	if err != nil {
		return childFail("conn: %v", err)
	}
	s, err := CreateAnonymous(64 << 10)
	if err != nil {
		return childFail("CreateAnonymous: %v", err)
	}
	for i := range s.Bytes() {
		s.Bytes()[i] = byte(i)
	}
	if err := s.AddSeals(SealSize); err != nil {
		return childFail("AddSeals: %v", err)
	}
	if err := SendSegment(c, s); err != nil {
		return childFail("SendSegment: %v", err)
	}
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		return childFail("waiting for go-ahead: %v", err)
	}
	shrink := unix.Ftruncate(s.Fd(), 0)
	grow := unix.Ftruncate(s.Fd(), 1<<20)
	punch := unix.Fallocate(s.Fd(), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 64<<10)
	fmt.Printf("shrink=%s grow=%s punch=%s\n", errName(shrink), errName(grow), errName(punch))
	c.Write([]byte{'d'})
	c.Read(b[:]) // until the receiver closes
	return 0
}

func errName(err error) string {
	if err == nil {
		return "OK"
	}
	if e, ok := err.(unix.Errno); ok {
		return unix.ErrnoName(e)
	}
	return fmt.Sprint(err)
}

// memfd returns a new memfd of size bytes, outside any Segment.
func memfd(size int) int {
	fd, err := unix.MemfdCreate("bad", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		panic(err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		panic(err)
	}
	return fd
}

// childBadSend sends one malformed message, chosen by args[0], and waits for
// the receiver to close the connection.
func childBadSend(args []string) int {
	c, err := childConn()
	if err != nil {
		return childFail("conn: %v", err)
	}
	hdr := passHeader{size: 4096}.encode()
	send := func(data []byte, fds ...int) {
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		if _, _, err := c.WriteMsgUnix(data, oob, nil); err != nil {
			fmt.Fprintf(os.Stderr, "WriteMsgUnix: %v\n", err)
		}
	}
	switch args[0] {
	case "eof":
		c.Close()
		return 0
	case "nofd":
		send(hdr)
	case "twofds":
		send(hdr, memfd(4096), memfd(4096))
	case "manyfds":
		fds := make([]int, 100)
		for i := range fds {
			fds[i] = memfd(4096)
		}
		send(hdr, fds...)
	case "pipe":
		var p [2]int
		unix.Pipe2(p[:], unix.O_CLOEXEC)
		send(hdr, p[0])
	case "diskfile":
		fd, err := unix.Open(args[1], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return childFail("open %s: %v", args[1], err)
		}
		var st unix.Stat_t
		unix.Fstat(fd, &st)
		send(passHeader{size: uint64(st.Size)}.encode(), fd)
	case "opath", "wronly", "opath-named", "wronly-named":
		// The same object reopened through /proc (a memfd) or by its
		// path (a named segment), path-only or write-only.
		path := fmt.Sprintf("/proc/self/fd/%d", memfd(4096))
		if strings.HasSuffix(args[0], "-named") {
			path = "/dev/shm/" + strings.TrimPrefix(args[1], "/")
		}
		mode := unix.O_PATH
		if strings.HasPrefix(args[0], "wronly") {
			mode = unix.O_WRONLY
		}
		fd, err := unix.Open(path, mode|unix.O_CLOEXEC, 0)
		if err != nil {
			return childFail("open %s: %v", path, err)
		}
		send(hdr, fd)
	case "dir":
		fd, err := unix.Open("/dev/shm", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return childFail("open /dev/shm: %v", err)
		}
		send(hdr, fd)
	case "socket":
		p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return childFail("socketpair: %v", err)
		}
		send(hdr, p[0])
	case "eventfd":
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			return childFail("eventfd: %v", err)
		}
		send(hdr, fd)
	case "devzero":
		// A character device that mmap accepts: still not shared memory.
		fd, err := unix.Open("/dev/zero", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return childFail("open /dev/zero: %v", err)
		}
		send(hdr, fd)
	case "badsize":
		send(passHeader{size: 8192}.encode(), memfd(4096))
	case "unsealed":
		send(hdr, memfd(4096))
	case "garbage":
		send([]byte("GET / HTTP/1.1\r\n"), memfd(4096))
	case "short":
		send(hdr[:8], memfd(4096))
		c.Close()
		return 0
	case "named":
		// A named segment, sent honestly: accepted (checked by the test).
		s, err := Open(args[1])
		if err != nil {
			return childFail("Open: %v", err)
		}
		if err := SendSegment(c, s); err != nil {
			return childFail("SendSegment: %v", err)
		}
	default:
		return childFail("unknown case %q", args[0])
	}
	var b [1]byte
	c.Read(b[:])
	return 0
}

func TestPassSegment(t *testing.T) {
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_SEQPACKET} {
		t.Run(map[int]string{unix.SOCK_STREAM: "stream", unix.SOCK_SEQPACKET: "seqpacket"}[typ], func(t *testing.T) {
			c, sock := socketPair(t, typ)
			cmd := childCmd(t, "recv-seg", strconv.Itoa(int(SealSize)), "hello from parent")
			var out bytes.Buffer
			cmd.Stdout = &out
			startWithSocket(t, cmd, sock)

			s, err := CreateAnonymous(100000)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			copy(s.Bytes(), "hello from parent")
			if err := s.AddSeals(SealSize); err != nil {
				t.Fatal(err)
			}
			if err := SendSegment(c, s); err != nil {
				t.Fatalf("SendSegment: %v", err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v", err)
			}
			if got, want := out.String(), "size=100000 ro=false seals=shrink|grow"; !strings.HasPrefix(got, want) {
				t.Errorf("child reported %q, want %q...", got, want)
			}
			if want := "hello from parent|reply from child"; !bytes.HasPrefix(s.Bytes(), []byte(want)) {
				t.Errorf("segment after child = %q, want %q", s.Bytes()[:len(want)], want)
			}
		})
	}
}

// TestPassReadOnly: a write-sealed segment and a segment opened read-only
// arrive read-only.
func TestPassReadOnly(t *testing.T) {
	c, sock := socketPair(t, unix.SOCK_STREAM)
	cmd := childCmd(t, "recv-seg", strconv.Itoa(int(SealFutureWrite)), "sealed")
	var out bytes.Buffer
	cmd.Stdout = &out
	startWithSocket(t, cmd, sock)
	s, err := CreateAnonymous(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	copy(s.Bytes(), "sealed")
	if err := s.AddSeals(SealSize | SealFutureWrite); err != nil {
		t.Fatal(err)
	}
	if err := SendSegment(c, s); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "size=4096 ro=true seals=shrink|grow|future-write") {
		t.Errorf("child reported %q, want a read-only write-sealed segment", got)
	}

	name := testName(t)
	w, err := Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	copy(w.Bytes(), "named, read-only")
	r, err := OpenFile(name, os.O_RDONLY, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c2, sock2 := socketPair(t, unix.SOCK_STREAM)
	cmd2 := childCmd(t, "recv-seg", "0", "named, read-only")
	out.Reset()
	cmd2.Stdout = &out
	startWithSocket(t, cmd2, sock2)
	if err := SendSegment(c2, r); err != nil {
		t.Fatal(err)
	}
	if err := cmd2.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "size=4096 ro=true seals=seal") {
		t.Errorf("child reported %q, want a read-only segment sealed against sealing", got)
	}
}

// TestPassSealedShrink: the sender of a sealed segment cannot shrink it under
// the receiver.
func TestPassSealedShrink(t *testing.T) {
	c, sock := socketPair(t, unix.SOCK_STREAM)
	cmd := childCmd(t, "send-sealed")
	var out bytes.Buffer
	cmd.Stdout = &out
	startWithSocket(t, cmd, sock)

	s, err := ReceiveSegment(c, &ReceiveOptions{RequireSeals: SealShrink})
	if err != nil {
		t.Fatalf("ReceiveSegment: %v", err)
	}
	defer s.Close()
	c.Write([]byte{'g'})
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		t.Fatalf("waiting for the sender: %v", err)
	}
	c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	// Size seals do not stop FALLOC_FL_PUNCH_HOLE: the sender may still zero
	// the memory (as it may write to it), but the receiver never faults.
	// Only SealWrite and SealFutureWrite forbid the punch (mm/shmem.c,
	// shmem_fallocate).
	if got, want := out.String(), "shrink=EPERM grow=EPERM punch=OK\n"; got != want {
		t.Errorf("sender's attempts gave %q, want %q", got, want)
	}
	fi, err := s.Stat()
	if err != nil || fi.Size() != 64<<10 {
		t.Fatalf("Stat = %v, %v, want size %d", fi, err, 64<<10)
	}
	// Every page can still be read, the last one too, without a fault; the
	// punched pages read as zeros.
	for i, v := range s.Bytes() {
		if v != 0 {
			t.Fatalf("byte %d = %d after the sender punched a hole, want 0", i, v)
		}
	}
}

// TestReceiveRejects sends every kind of bad message from another process and
// checks that each is refused with a clear error and no descriptor leaked.
func TestReceiveRejects(t *testing.T) {
	disk := "/etc/passwd"
	var sfs unix.Statfs_t
	if err := unix.Statfs(disk, &sfs); err != nil || sfs.Type == unix.TMPFS_MAGIC {
		disk = ""
	}
	name := testName(t)
	if s, err := Create(name, 4096); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	cases := []receiveCase{
		{kind: "eof", wantErr: io.EOF},
		{kind: "nofd", want: "0 descriptors arrived, want 1"},
		{kind: "twofds", want: "2 descriptors arrived, want 1"},
		{kind: "manyfds", want: "more than 64 descriptors"},
		{kind: "pipe", want: "not shared memory (not a regular file: a pipe or FIFO)"},
		{kind: "diskfile", arg: disk, want: "not shared memory (a file on a filesystem"},
		{kind: "badsize", want: "the segment is 4096 bytes, but 8192 were announced"},
		{kind: "unsealed", opts: ReceiveOptions{RequireSeals: SealSize}, want: "seals shrink|grow are required, the segment has none"},
		{kind: "garbage", want: "not a segment"},
		{kind: "short", want: "message cut short after 8 of 16 bytes"},
		{kind: "unsealed", opts: ReceiveOptions{MaxSize: 1024}, want: "more than the 1024 allowed"},
		{kind: "named", arg: name, opts: ReceiveOptions{RequireSeals: SealShrink}, want: "seals shrink are required, the segment has seal"},
		{kind: "named", arg: name},
	}
	for _, tc := range cases {
		t.Run(tc.kind+tc.want, func(t *testing.T) {
			if tc.kind == "diskfile" && disk == "" {
				t.Skip("no file outside tmpfs to send")
			}
			if tc.kind == "manyfds" {
				skipIfEmulated(t, emuCtrunc)
			}
			receiveFromBadSender(t, tc)
		})
	}
}

// A receiveCase is one message from childBadSend and what ReceiveSegment
// must make of it.
type receiveCase struct {
	kind, arg string
	opts      ReceiveOptions
	want      string // in the error; "" for success
	wantErr   error
}

// receiveFromBadSender starts childBadSend with tc's message, receives it
// and checks the result, and that the descriptors this process has open
// (/proc/self/fd) are as many after ReceiveSegment as before.
func receiveFromBadSender(t *testing.T, tc receiveCase) {
	t.Helper()
	c, sock := socketPair(t, unix.SOCK_STREAM)
	cmd := childCmd(t, "bad-send", tc.kind, tc.arg)
	startWithSocket(t, cmd, sock)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	before := countFds(t)
	s, err := ReceiveSegment(c, &tc.opts)
	if s != nil {
		s.Close()
	}
	after := countFds(t)
	t.Logf("ReceiveSegment: %v", err)
	switch {
	case tc.wantErr != nil:
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("ReceiveSegment = %v, want %v", err, tc.wantErr)
		}
	case tc.want == "":
		if err != nil {
			t.Errorf("ReceiveSegment = %v, want success", err)
		}
	default:
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("ReceiveSegment = %v, want an fs.ErrInvalid error containing %q", err, tc.want)
		}
	}
	if after != before {
		t.Errorf("descriptors: %d before ReceiveSegment, %d after: leaked %d", before, after, after-before)
	}
	c.Close()
	cmd.Wait()
}

// TestReceiveRejectsUnusableDescriptors: a descriptor that cannot be mapped
// as announced (path-only, write-only, or no shared memory at all) is
// refused with an fs.ErrInvalid error naming the check, before anything
// tries to map it, and is closed.
func TestReceiveRejectsUnusableDescriptors(t *testing.T) {
	name := testName(t)
	if s, err := Create(name, 4096); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	const notShared = "not shared memory (not a regular file: "
	cases := []receiveCase{
		{kind: "opath", want: "path-only (O_PATH)"},
		{kind: "opath", opts: ReceiveOptions{RequireSeals: SealShrink}, want: "path-only (O_PATH)"},
		{kind: "opath", opts: ReceiveOptions{ReadOnly: true}, want: "path-only (O_PATH)"},
		{kind: "opath-named", arg: name, want: "path-only (O_PATH)"},
		{kind: "wronly", want: "write-only (O_WRONLY)"},
		{kind: "wronly", opts: ReceiveOptions{ReadOnly: true}, want: "write-only (O_WRONLY)"},
		{kind: "wronly-named", arg: name, want: "write-only (O_WRONLY)"},
		{kind: "dir", want: notShared + "a directory)"},
		{kind: "socket", want: notShared + "a socket)"},
		{kind: "pipe", want: notShared + "a pipe or FIFO)"},
		{kind: "devzero", want: notShared + "a character device)"},
		// An eventfd is an anonymous inode, of no file type here (Linux
		// 6.18); were a kernel to call it a regular file, the statfs check
		// (anon_inodefs, not tmpfs) would refuse it instead.
		{kind: "eventfd", want: "not shared memory ("},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/seals=%v,ro=%v", tc.kind, tc.opts.RequireSeals, tc.opts.ReadOnly), func(t *testing.T) {
			receiveFromBadSender(t, tc)
		})
	}
}

// TestMapRejected: an mmap refusal of a descriptor that passed the other
// checks is a rejection matching fs.ErrInvalid that names mmap; running out
// of address space is not.
func TestMapRejected(t *testing.T) {
	for _, errno := range []unix.Errno{unix.EACCES, unix.EBADF, unix.EINVAL, unix.ENODEV, unix.EPERM, unix.EOPNOTSUPP} {
		err := mapRejected(&fs.PathError{Op: "mmap", Err: errno}, 4096, false)
		if !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "cannot be mapped read-write, 4096 bytes: mmap: "+errno.Error()) {
			t.Errorf("mapRejected(mmap %v) = %v, want an fs.ErrInvalid rejection naming mmap", unix.ErrnoName(errno), err)
		}
	}
	err := mapRejected(&fs.PathError{Op: "mmap", Err: unix.ENOMEM}, 1<<30, true)
	if errors.Is(err, fs.ErrInvalid) || !errors.Is(err, unix.ENOMEM) || !strings.Contains(err.Error(), "mmap") {
		t.Errorf("mapRejected(mmap ENOMEM) = %v, want ENOMEM, not fs.ErrInvalid", err)
	}
	lockErr := &fs.PathError{Op: "fcntl F_OFD_SETLK", Err: fmt.Errorf("taking the presence lock: %w", unix.EACCES)}
	if err := mapRejected(lockErr, 4096, false); errors.Is(err, fs.ErrInvalid) || !errors.Is(err, unix.EACCES) {
		t.Errorf("mapRejected(presence lock EACCES) = %v, want it passed on, not a rejection", err)
	}
}

// TestSendSegmentBlockedDoesNotBlockClose: a SendSegment blocked on a peer
// that does not read must not hold the segment's lock, or Close (and every
// method queued behind it) would wait for that peer.
func TestSendSegmentBlockedDoesNotBlockClose(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	defer peer.Close()
	// Fill the socket so that the next send blocks.
	unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	fill := make([]byte, 4096)
	for {
		if _, err := unix.SendmsgN(fds[0], fill, nil, nil, unix.MSG_DONTWAIT); err != nil {
			if err != unix.EAGAIN {
				t.Fatalf("filling the socket: %v", err)
			}
			break
		}
	}
	f := os.NewFile(uintptr(fds[0]), "sender")
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatalf("FileConn: %v", err)
	}
	c := fc.(*net.UnixConn)
	defer c.Close()

	s, err := CreateAnonymous(4096)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- SendSegment(c, s) }()
	time.Sleep(100 * time.Millisecond) // let it block in sendmsg
	select {
	case err := <-sent:
		t.Fatalf("SendSegment on a full socket returned %v; want it to block", err)
	default:
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		c.Close() // unblock SendSegment, then Close
		<-closed
		t.Fatal("Close waited for a SendSegment blocked on a peer that does not read")
	}
	c.Close() // the pending send fails; its descriptor must be closed
	<-sent
}
