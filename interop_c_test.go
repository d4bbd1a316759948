//go:build linux

package shm

// Conformance tests against SPEC.md, across languages, in real processes: a
// C peer built from c/shm.h (c/tests/peer.c, with gcc and
// -fsanitize=address,undefined) and, when the python/ package is importable,
// a Python peer (python/tests/peer.py), each against this package. Skipped
// when gcc or python3 is missing.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// specHeader is the test segment layout c/tests/peer.c and
// python/tests/peer.py use.
type specHeader struct {
	Mu      Mutex     // 0
	Counter uint64    // 8, guarded by Mu
	Sem     Semaphore // 16
}

func init() {
	children["spec-hold"] = childSpecHold
	children["spec-count"] = childSpecCount
}

// childSpecHold opens the segment args[0], locks its Mutex, says so with its
// token, and sleeps until killed.
func childSpecHold(args []string) int {
	s, err := Open(args[0])
	if err != nil {
		return childFail("Open: %v", err)
	}
	h, err := View[specHeader](s, 0)
	if err != nil {
		return childFail("View: %v", err)
	}
	h.Mu.Lock()
	fmt.Printf("locked %d\n", ProcessToken())
	// Not select {}: with no other goroutine, a binary built without cgo
	// dies of "all goroutines are asleep", and its locks with it.
	for {
		time.Sleep(time.Hour)
	}
}

// childSpecCount adds args[1] to the counter of segment args[0] under its
// Mutex, one at a time.
func childSpecCount(args []string) int {
	s, err := Open(args[0])
	if err != nil {
		return childFail("Open: %v", err)
	}
	defer s.Close()
	h, err := View[specHeader](s, 0)
	if err != nil {
		return childFail("View: %v", err)
	}
	n, _ := strconv.Atoi(args[1])
	for range n {
		h.Mu.Lock()
		h.Counter++
		h.Mu.Unlock()
	}
	fmt.Println("done")
	return 0
}

var specPeerOnce struct {
	sync.Once
	exe string
	err error
}

// buildSpecPeer builds c/tests/peer.c once per test binary, with the
// sanitizers, and returns its path. It skips the test when gcc is missing.
func buildSpecPeer(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found; skipping the C conformance test")
	}
	specPeerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shm-specpeer-")
		if err != nil {
			specPeerOnce.err = err
			return
		}
		harness.AfterRun = append(harness.AfterRun, func() { os.RemoveAll(dir) })
		exe := filepath.Join(dir, "peer")
		args := []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-g",
			"-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-o", exe, "c/tests/peer.c"}
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			specPeerOnce.err = fmt.Errorf("gcc %v: %v\n%s", args, err, out)
			return
		}
		specPeerOnce.exe = exe
	})
	if specPeerOnce.err != nil {
		t.Fatal(specPeerOnce.err)
	}
	return specPeerOnce.exe
}

// A specProc is a peer process whose output is read line by line.
type specProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	all   strings.Builder
}

func startSpecProc(t *testing.T, cmd *exec.Cmd) *specProc {
	t.Helper()
	p := &specProc{t: t, cmd: cmd, lines: make(chan string, 100)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{p: p}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.all.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

type lockedWriter struct{ p *specProc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.all.Write(b)
}

func (p *specProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all.String()
}

// expect waits for the next line and checks it starts with prefix; it
// returns the line.
func (p *specProc) expect(prefix string) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("%v: output ended, want a line %q; output:\n%s", p.cmd.Args, prefix, p.output())
		}
		if !strings.HasPrefix(l, prefix) {
			p.t.Fatalf("%v: got line %q, want %q...; output:\n%s", p.cmd.Args, l, prefix, p.output())
		}
		return l
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%v: no line %q within 30s; output:\n%s", p.cmd.Args, prefix, p.output())
	}
	return ""
}

func (p *specProc) wait() {
	p.t.Helper()
	for range p.lines {
	}
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("%v: %v; output:\n%s", p.cmd.Args, err, p.output())
	}
}

func (p *specProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// tokenOf parses the token from a "locked TOKEN" line.
func tokenOf(t *testing.T, line string) uint64 {
	t.Helper()
	f := strings.Fields(line)
	tok, err := strconv.ParseUint(f[len(f)-1], 10, 64)
	if err != nil {
		t.Fatalf("no token in %q", line)
	}
	return tok
}

// unshared returns cmd run in a new PID namespace, or skips the test when
// that is not permitted here.
func unshared(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	un, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare not found")
	}
	if out, err := exec.Command(un, "--pid", "--fork", "--kill-child", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --pid is not permitted here: %v %s", err, out)
	}
	nc := exec.Command(un, append([]string{"--pid", "--fork", "--kill-child", "--mount-proc"}, cmd.Args...)...)
	nc.Args[len(nc.Args)-len(cmd.Args)] = cmd.Path
	nc.Env = cmd.Env
	return nc
}

func specSegment(t *testing.T) (string, *Segment, *specHeader) {
	t.Helper()
	name := "/" + testName(t)
	s, err := Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h, err := View[specHeader](s, 0)
	if err != nil {
		t.Fatal(err)
	}
	return name, s, h
}

// MTX-1..MTX-6: a counter incremented by C processes, a Go child process and
// this process under one Mutex loses no increment.
func TestSpecCMutexCount(t *testing.T) {
	peer := buildSpecPeer(t)
	name, _, h := specSegment(t)
	const n = 20000
	var ps []*specProc
	for range 2 {
		ps = append(ps, startSpecProc(t, exec.Command(peer, "count", name, strconv.Itoa(n))))
	}
	ps = append(ps, startSpecProc(t, childCmd(t, "spec-count", name, strconv.Itoa(n))))
	for range n {
		h.Mu.Lock()
		h.Counter++
		h.Mu.Unlock()
	}
	for _, p := range ps {
		p.expect("done")
		p.wait()
	}
	h.Mu.Lock()
	got := h.Counter
	h.Mu.Unlock()
	if want := uint64(4 * n); got != want {
		t.Fatalf("counter = %d after 2 C, 1 Go child and this process each added %d; want %d", got, n, want)
	}
}

// MTX-8, MTX-9, LIVE-5: a C owner is alive while it runs, and once it is
// SIGKILLed a Go waiter takes the lock over with ErrOwnerDead.
func TestSpecCOwnerKilledGoWaiter(t *testing.T) {
	peer := buildSpecPeer(t)
	name, s, h := specSegment(t)
	hold := startSpecProc(t, exec.Command(peer, "hold", name))
	testOwnerKilledGoWaiter(t, s, h, hold)
}

func testOwnerKilledGoWaiter(t *testing.T, s *Segment, h *specHeader, hold *specProc) {
	t.Helper()
	tok := tokenOf(t, hold.expect("locked"))
	if !s.PeerAlive(tok) {
		t.Fatalf("PeerAlive(%#x) = false for a holder that runs", tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := h.Mu.LockContext(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockContext while a live peer holds the lock = %v, want context.DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- h.Mu.LockContext(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	hold.kill()
	if err := <-done; !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("LockContext after the holder was SIGKILLed = %v, want ErrOwnerDead", err)
	}
	if s.PeerAlive(tok) {
		t.Errorf("PeerAlive(%#x) = true after the holder was killed", tok)
	}
	h.Mu.Unlock()
}

// MTX-8, MTX-9 the other way: a Go owner SIGKILLed, a C waiter gets owner-dead.
func TestSpecGoOwnerKilledCWaiter(t *testing.T) {
	peer := buildSpecPeer(t)
	name, _, _ := specSegment(t)
	hold := startSpecProc(t, childCmd(t, "spec-hold", name))
	testOwnerKilledPeerWaiter(t, []string{peer}, name, hold)
}

// testOwnerKilledPeerWaiter checks that peer (a C or Python peer's argv)
// sees the Go holder alive, times out waiting for it, and gets owner-dead
// once it is killed.
func testOwnerKilledPeerWaiter(t *testing.T, peer []string, name string, hold *specProc) {
	t.Helper()
	tok := tokenOf(t, hold.expect("locked"))
	al := startSpecProc(t, peerCmd(peer, "alive", name, strconv.FormatUint(tok, 10)))
	if l := al.expect("alive"); l != "alive 1" {
		t.Fatalf("%v: peer_alive of a running Go holder: %q, want alive 1", peer, l)
	}
	al.wait()
	w := startSpecProc(t, peerCmd(peer, "lockwait", name, "300"))
	w.expect("waiting")
	w.expect("timeout")
	w.wait()
	w = startSpecProc(t, peerCmd(peer, "lockwait", name, "20000"))
	w.expect("waiting")
	time.Sleep(50 * time.Millisecond)
	hold.kill()
	w.expect("ownerdead")
	w.wait()
}

// LIVE-3..LIVE-5 across PID namespaces: a C holder that is PID 1 in a PID
// namespace of its own is never taken for dead, and is once killed.
func TestSpecCOwnerOtherPIDNamespace(t *testing.T) {
	peer := buildSpecPeer(t)
	name, s, h := specSegment(t)
	hold := startSpecProc(t, unshared(t, exec.Command(peer, "hold", name)))
	testOwnerKilledGoWaiter(t, s, h, hold)
}

// The same with a Go holder in another PID namespace and a C waiter.
func TestSpecGoOwnerOtherPIDNamespace(t *testing.T) {
	peer := buildSpecPeer(t)
	name, _, _ := specSegment(t)
	hold := startSpecProc(t, unshared(t, childCmd(t, "spec-hold", name)))
	testOwnerKilledPeerWaiter(t, []string{peer}, name, hold)
}

// SEM-1..SEM-6: C posts and Go waits, Go posts and C waits, at once, on one
// Semaphore; every post is taken exactly once.
func TestSpecSemaphoreCrossLanguage(t *testing.T) {
	peer := buildSpecPeer(t)
	name, _, h := specSegment(t)
	const n = 20000
	post := startSpecProc(t, exec.Command(peer, "post", name, strconv.Itoa(n)))
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := h.Sem.WaitContext(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Wait %d of %d posted by C: %v", i+1, n, err)
		}
	}
	post.expect("posted")
	post.wait()
	if h.Sem.TryWait() {
		t.Fatalf("TryWait succeeded after all %d posts were taken", n)
	}
	take := startSpecProc(t, exec.Command(peer, "take", name, strconv.Itoa(n)))
	for range n {
		if err := h.Sem.Post(); err != nil {
			t.Fatal(err)
		}
	}
	take.expect(fmt.Sprintf("took %d", n))
	take.wait()
	if v := h.Sem.Value(); v != 0 {
		t.Fatalf("Semaphore value = %d after C took all %d, want 0", v, n)
	}
}

// CRE-*, OPEN-*: each side opens what the other created, and C refuses
// what is planted under a name.
func TestSpecCreateOpen(t *testing.T) {
	peer := buildSpecPeer(t)
	name := "/" + testName(t)
	out, err := exec.Command(peer, "create", name, "12345").CombinedOutput()
	if err != nil {
		t.Fatalf("C create: %v %s", err, out)
	}
	s, err := Open(name)
	if err != nil {
		t.Fatalf("Open of a segment C created: %v", err)
	}
	if s.Size() != 12345 {
		t.Errorf("Size = %d, want 12345", s.Size())
	}
	fi, _ := s.Stat()
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode of a C-created segment = %v, want 0600", fi.Mode().Perm())
	}
	s.Close()
	if out, _ := exec.Command(peer, "create", name, "10").CombinedOutput(); !strings.Contains(string(out), "File exists") {
		t.Errorf("C create of a taken name: %q, want EEXIST", out)
	}
	Unlink(name)
	if out, _ := exec.Command(peer, "open", name).CombinedOutput(); string(out) != "error 2\n" {
		t.Errorf("C open of a missing name: %q, want error 2 (ENOENT)", out)
	}
	link := "/" + testName(t)
	if err := os.Symlink("/etc/passwd", "/dev/shm"+link); err != nil {
		t.Fatal(err)
	}
	fifo := "/" + testName(t)
	if err := syscall.Mkfifo("/dev/shm"+fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{link, fifo, "..", "/a/b", ""} {
		if out, _ := exec.Command(peer, "open", n).CombinedOutput(); string(out) != "error 22\n" {
			t.Errorf("C open %q: %q, want error 22 (EINVAL)", n, out)
		}
	}
}

// PASS-*: a segment passed C→Go and Go→C over a Unix socket; each side
// locks the Mutex in it, and the receiver's presence is its own (PASS-5).
func TestSpecPassSegment(t *testing.T) {
	peer := buildSpecPeer(t)
	name, s, h := specSegment(t)
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// C → Go.
	h.Counter = 41
	send := startSpecProc(t, exec.Command(peer, "send", sock, name))
	c, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReceiveSegment(c, nil)
	if err != nil {
		t.Fatalf("ReceiveSegment from C: %v", err)
	}
	gh, err := View[specHeader](got, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := gh.Mu.LockContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	gh.Counter++
	gh.Mu.Unlock()
	c.Write([]byte{1})
	send.expect("sent; counter 42")
	send.wait()
	c.Close()
	got.Close()

	// Go → C.
	recv := startSpecProc(t, exec.Command(peer, "recv", sock))
	c, err = l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := SendSegment(c, s); err != nil {
		t.Fatal(err)
	}
	recv.expect("received 4096 readonly 0 presence 1")
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("ack from C: %v", err)
	}
	recv.wait()
	h.Mu.Lock()
	defer h.Mu.Unlock()
	if h.Counter != 43 {
		t.Fatalf("counter = %d, want 43 (C added one to the segment Go sent)", h.Counter)
	}
}

// peerCmd returns the command running the peer argv prefix with args.
func peerCmd(peer []string, args ...string) *exec.Cmd {
	return exec.Command(peer[0], append(append([]string{}, peer[1:]...), args...)...)
}

// specPython returns the argv of the Python peer (python/tests/peer.py) run
// by $SHM_PYTHON, else python3; it skips the test when that interpreter is
// missing or cannot import the shm package (pip install ./python).
func specPython(t *testing.T) []string {
	t.Helper()
	py := os.Getenv("SHM_PYTHON")
	if py == "" {
		py = "python3"
	}
	path, err := exec.LookPath(py)
	if err != nil {
		t.Skipf("%s not found; skipping the Python conformance test", py)
	}
	if out, err := exec.Command(path, "-c", "import shm, shm._shm").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import the shm package (pip install ./python; set SHM_PYTHON): %v %s", path, err, out)
	}
	return []string{path, "python/tests/peer.py"}
}

// MTX-1..MTX-6 in all three languages: one counter, one Mutex, processes
// in Go, C and Python; no increment lost.
func TestSpecThreeLanguageMutexCount(t *testing.T) {
	py := specPython(t)
	peer := buildSpecPeer(t)
	name, _, h := specSegment(t)
	const n = 5000
	ps := []*specProc{
		startSpecProc(t, exec.Command(peer, "count", name, strconv.Itoa(n))),
		startSpecProc(t, peerCmd(py, "count", name, strconv.Itoa(n))),
		startSpecProc(t, childCmd(t, "spec-count", name, strconv.Itoa(n))),
	}
	for range n {
		h.Mu.Lock()
		h.Counter++
		h.Mu.Unlock()
	}
	for _, p := range ps {
		p.expect("done")
		p.wait()
	}
	h.Mu.Lock()
	got := h.Counter
	h.Mu.Unlock()
	if want := uint64(4 * n); got != want {
		t.Fatalf("counter = %d after C, Python, a Go child and this process each added %d; want %d", got, n, want)
	}
}

// MTX-8, MTX-9: a Python holder SIGKILLed, a Go waiter gets ErrOwnerDead.
func TestSpecPythonOwnerKilledGoWaiter(t *testing.T) {
	py := specPython(t)
	name, s, h := specSegment(t)
	testOwnerKilledGoWaiter(t, s, h, startSpecProc(t, peerCmd(py, "hold", name)))
}

// MTX-8, MTX-9: a Go holder SIGKILLed, a Python waiter gets OwnerDeadError.
func TestSpecGoOwnerKilledPythonWaiter(t *testing.T) {
	py := specPython(t)
	name, _, _ := specSegment(t)
	testOwnerKilledPeerWaiter(t, py, name, startSpecProc(t, childCmd(t, "spec-hold", name)))
}

// LIVE-3..LIVE-5: a Python holder in another PID namespace is alive to Go
// until it is killed; a Go holder there is alive to Python.
func TestSpecPythonOtherPIDNamespace(t *testing.T) {
	py := specPython(t)
	t.Run("python-holder", func(t *testing.T) {
		name, s, h := specSegment(t)
		testOwnerKilledGoWaiter(t, s, h, startSpecProc(t, unshared(t, peerCmd(py, "hold", name))))
	})
	t.Run("go-holder", func(t *testing.T) {
		name, _, _ := specSegment(t)
		testOwnerKilledPeerWaiter(t, py, name, startSpecProc(t, unshared(t, childCmd(t, "spec-hold", name))))
	})
}

// SEM-1..SEM-6 between Go and Python, both ways.
func TestSpecSemaphorePython(t *testing.T) {
	py := specPython(t)
	name, _, h := specSegment(t)
	const n = 5000
	post := startSpecProc(t, peerCmd(py, "post", name, strconv.Itoa(n)))
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := h.Sem.WaitContext(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Wait %d of %d posted by Python: %v", i+1, n, err)
		}
	}
	post.expect("posted")
	post.wait()
	take := startSpecProc(t, peerCmd(py, "take", name, strconv.Itoa(n)))
	for range n {
		if err := h.Sem.Post(); err != nil {
			t.Fatal(err)
		}
	}
	take.expect(fmt.Sprintf("took %d", n))
	take.wait()
	if v := h.Sem.Value(); v != 0 {
		t.Fatalf("Semaphore value = %d after Python took all %d, want 0", v, n)
	}
}

// PASS-3, PASS-4, VER-2: the C receiver refuses hostile messages with
// EINVAL: an unknown magic (another version), a pipe, a size that is not the
// object's, two descriptors, no descriptor.
func TestSpecCReceiverRefuses(t *testing.T) {
	peer := buildSpecPeer(t)
	_, s, _ := specSegment(t)
	msg := func(magic string, size uint64) []byte {
		b := make([]byte, 16)
		copy(b, magic)
		for i := range 8 {
			b[8+i] = byte(size >> (8 * i))
		}
		return b
	}
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	size := uint64(s.Size())
	cases := []struct {
		name string
		data []byte
		fds  []int
	}{
		{"magic SHM2", msg("SHM2", size), []int{s.Fd()}},
		{"a pipe", msg("SHM1", 4096), []int{p[0]}},
		{"size announced wrong", msg("SHM1", size+1), []int{s.Fd()}},
		{"two descriptors", msg("SHM1", size), []int{s.Fd(), s.Fd()}},
		{"no descriptor", msg("SHM1", size), nil},
		{"short message", msg("SHM1", size)[:8], []int{s.Fd()}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "s")
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			cmd := exec.Command(peer, "recv", sock)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			conn, err := l.AcceptUnix()
			if err != nil {
				t.Fatal(err)
			}
			var oob []byte
			if c.fds != nil {
				oob = syscall.UnixRights(c.fds...)
			}
			if _, _, err := conn.WriteMsgUnix(c.data, oob, nil); err != nil {
				t.Fatal(err)
			}
			conn.CloseWrite()
			err = cmd.Wait()
			conn.Close()
			if err == nil || !strings.Contains(out.String(), "Invalid argument") {
				t.Fatalf("C receiver given %s: %v, output %q; want it refused with EINVAL", c.name, err, out.String())
			}
		})
	}
}
