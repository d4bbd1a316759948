//go:build linux || darwin || freebsd

package shm

// Cross-language tests: the lecture's C Process A and Process B (built with
// gcc into t.TempDir()), Python's multiprocessing.shared_memory, and a second
// Go process, exchanging data with this package through real processes.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// interopPeerC is the lecture's Process A and Process B in one program; the
// first argument picks the part it plays. The segment is 1024 bytes: a
// NUL-terminated message at offset 0 and a NUL-terminated reply at offset
// 512. Every name comes from the command line.
const interopPeerC = `
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE 1024
#define REPLY 512

static void die(const char *what) { perror(what); exit(1); }

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: peer a|b|shrink NAME ...\n"); return 2; }
	const char *role = argv[1], *name = argv[2];

	if (strcmp(role, "a") == 0) {
		/* Process A: create, size, map, write; wait for the reply; read it;
		   unmap, close, unlink. */
		int fd = shm_open(name, O_RDWR | O_CREAT, S_IRUSR | S_IWUSR);
		if (fd < 0) die("shm_open");
		if (ftruncate(fd, SIZE) < 0) die("ftruncate");
		char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) die("mmap");
		snprintf(p, REPLY, "%s", argv[3]);
		printf("ready\n");
		fflush(stdout);
		char line[64];
		if (!fgets(line, sizeof line, stdin)) die("fgets");
		printf("reply=%.*s\n", SIZE - REPLY, p + REPLY);
		if (munmap(p, SIZE) < 0) die("munmap");
		if (close(fd) < 0) die("close");
		if (shm_unlink(name) < 0) die("shm_unlink");
		return 0;
	}
	if (strcmp(role, "b") == 0) {
		/* Process B: open the existing segment, map, read; write a reply. */
		int fd = shm_open(name, O_RDWR, S_IRUSR | S_IWUSR);
		if (fd < 0) die("shm_open");
		char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) die("mmap");
		printf("message=%.*s\n", REPLY, p);
		snprintf(p + REPLY, SIZE - REPLY, "%s", argv[3]);
		if (munmap(p, SIZE) < 0) die("munmap");
		if (close(fd) < 0) die("close");
		return 0;
	}
	if (strcmp(role, "shrink") == 0) {
		/* A hostile peer: shrink a segment someone else has mapped. */
		int fd = shm_open(name, O_RDWR, 0);
		if (fd < 0) die("shm_open");
		if (ftruncate(fd, atol(argv[3])) < 0) die("ftruncate");
		if (close(fd) < 0) die("close");
		return 0;
	}
	fprintf(stderr, "unknown role %s\n", role);
	return 2;
}
`

// buildInteropPeer compiles interopPeerC into a temporary directory and returns
// the path of the program. It skips the test when gcc is missing.
func buildInteropPeer(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found; skipping the C interoperability test")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "peer.c")
	exe := filepath.Join(dir, "peer")
	if err := os.WriteFile(src, []byte(interopPeerC), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-O2", "-Wall", "-o", exe, src}
	if runtime.GOOS == "linux" {
		args = append(args, "-lrt") // shm_open lived in librt before glibc 2.34
	}
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
	return exe
}

// interopCString returns b up to its first NUL byte.
func interopCString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// interopPeer is a running peer process that speaks a line protocol: it
// prints "ready" when its part of the exchange is in memory, waits for a
// line on its standard input, and prints the rest of its transcript.
type interopPeer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

func startInteropPeer(t *testing.T, cmd *exec.Cmd) *interopPeer {
	t.Helper()
	p := &interopPeer{cmd: cmd}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdout = bufio.NewReader(out)
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	t.Cleanup(func() {
		// A failed test may leave the peer waiting on its standard input.
		p.stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return p
}

// line reads one line of the peer's output, failing the test after a
// generous bound so a stuck peer cannot hang the suite.
func (p *interopPeer) line(t *testing.T) string {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := p.stdout.ReadString('\n')
		ch <- result{strings.TrimSuffix(s, "\n"), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("reading from peer %v: %v (line so far %q)\nstderr:\n%s", p.cmd.Args, r.err, r.s, p.stderr.String())
		}
		return r.s
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("peer %v said nothing for 30s", p.cmd.Args)
		return ""
	}
}

// finish tells the peer to go on.
func (p *interopPeer) finish(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
		t.Fatalf("writing to peer: %v", err)
	}
}

// wait waits for the peer to exit successfully.
func (p *interopPeer) wait(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("peer %v: %v\nstderr:\n%s", p.cmd.Args, err, p.stderr.String())
	}
}

// TestInteropCProcessA: C creates and writes (Process A), Go opens, reads
// and replies, C reads the reply and unlinks.
func TestInteropCProcessA(t *testing.T) {
	peer := buildInteropPeer(t)
	name := testName(t)
	const msg, reply = "hello from C process A", "hello back from Go"

	p := startInteropPeer(t, exec.Command(peer, "a", "/"+name, msg))
	if got := p.line(t); got != "ready" {
		t.Fatalf("C process A said %q, want %q", got, "ready")
	}
	s, err := Open(name)
	if err != nil {
		t.Fatalf("Open(%q) of the segment C created = %v", name, err)
	}
	defer s.Close()
	if s.Size() != 1024 {
		t.Errorf("Size() = %d, want 1024 (C's ftruncate)", s.Size())
	}
	buf := make([]byte, 512)
	if n, err := s.ReadAt(buf, 0); n != 512 || err != nil {
		t.Fatalf("ReadAt(512 bytes, 0) = %d, %v; want 512, nil", n, err)
	}
	if got := interopCString(buf); got != msg {
		t.Errorf("Go read %q from C, want %q", got, msg)
	}
	if _, err := s.WriteAt(append([]byte(reply), 0), 512); err != nil {
		t.Fatalf("WriteAt(reply, 512) = %v", err)
	}
	p.finish(t)
	if got, want := p.line(t), "reply="+reply; got != want {
		t.Errorf("C read %q, want %q", got, want)
	}
	p.wait(t)
	if ok, err := Exists(name); ok || err != nil {
		t.Errorf("after C's shm_unlink, Exists(%q) = %v, %v; want false, nil", name, ok, err)
	}
}

// TestInteropCProcessB: Go creates and writes (as Process A), C opens it as
// Process B, reads and replies, Go reads the reply.
func TestInteropCProcessB(t *testing.T) {
	peer := buildInteropPeer(t)
	name := testName(t)
	const msg, reply = "hello from Go", "hello back from C process B"

	s, err := Create(name, 1024)
	if err != nil {
		t.Fatalf("Create(%q, 1024) = %v", name, err)
	}
	defer s.Close()
	copy(s.Bytes(), msg)

	out, err := exec.Command(peer, "b", "/"+name, reply).CombinedOutput()
	if err != nil {
		t.Fatalf("C process B: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "message="+msg; got != want {
		t.Errorf("C read %q, want %q", got, want)
	}
	got := make([]byte, 512)
	if _, err := s.ReadAt(got, 512); err != nil {
		t.Fatalf("ReadAt(512 bytes, 512) = %v", err)
	}
	if interopCString(got) != reply {
		t.Errorf("Go read reply %q, want %q", interopCString(got), reply)
	}
	if err := s.Unlink(); err != nil {
		t.Errorf("Unlink() = %v", err)
	}
}

// TestInteropCShrink: a C peer shrinks a segment Go has mapped. Touching the
// lost pages through Bytes would raise SIGBUS and kill the program; ReadAt
// and WriteAt must return an error instead, and keep working for the part
// that is left.
func TestInteropCShrink(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "freebsd" {
		t.Skipf("segments cannot shrink on %s", runtime.GOOS)
	}
	skipIfEmulated(t, emuFaultAddr)
	peer := buildInteropPeer(t)
	name := testName(t)
	const size, kept = 64 << 10, 4096

	s, err := Create(name, size)
	if err != nil {
		t.Fatalf("Create(%q, %d) = %v", name, size, err)
	}
	defer s.Close()
	if out, err := exec.Command(peer, "shrink", "/"+name, strconv.Itoa(kept)).CombinedOutput(); err != nil {
		t.Fatalf("C shrink peer: %v\n%s", err, out)
	}

	buf := make([]byte, 1024)
	for _, off := range []int64{kept, size / 2, size - 1024} {
		n, err := s.ReadAt(buf, off)
		if err == nil || !errors.Is(err, syscall.EFAULT) {
			t.Errorf("ReadAt at offset %d past the shrunk end = %d, %v; want an error wrapping EFAULT", off, n, err)
		}
		n, err = s.WriteAt(buf, off)
		if err == nil || !errors.Is(err, syscall.EFAULT) {
			t.Errorf("WriteAt at offset %d past the shrunk end = %d, %v; want an error wrapping EFAULT", off, n, err)
		}
	}
	// A copy that starts in the kept page and runs past it faults part-way.
	if _, err := s.ReadAt(buf, kept-512); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("ReadAt across the shrunk end = %v; want an error wrapping EFAULT", err)
	}
	// The pages that are left still work.
	copy(buf, "still here")
	if _, err := s.WriteAt(buf, 0); err != nil {
		t.Errorf("WriteAt(0) inside the kept part = %v", err)
	}
	if _, err := s.ReadAt(buf, kept-1024); err != nil {
		t.Errorf("ReadAt inside the kept part = %v", err)
	}
	if fi, err := s.Stat(); err != nil || fi.Size() != kept {
		t.Errorf("Stat() after the shrink = size %v, %v; want %d", fi, err, kept)
	}
}

// interopPython returns the path of python3 with multiprocessing.shared_memory,
// or skips the test.
func interopPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	if out, err := exec.Command(py, "-c", "import multiprocessing.shared_memory").CombinedOutput(); err != nil {
		t.Skipf("python3 has no multiprocessing.shared_memory: %v\n%s", err, out)
	}
	return py
}

// interopPy holds the Python side. Python's resource tracker unlinks, at
// exit, every segment a process created or attached to and did not unlink
// itself (CPython issue 82300), so the script opts out: track=False from
// Python 3.13, resource_tracker.unregister before. The name is given without
// the slash: SharedMemory prepends one.
const interopPy = `
import sys
from multiprocessing import shared_memory, resource_tracker

def attach(name, create, size=0):
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, create=create, size=size, track=False)
    shm = shared_memory.SharedMemory(name=name, create=create, size=size)
    resource_tracker.unregister(shm._name, "shared_memory")
    return shm

def cstr(b):
    return bytes(b).split(b"\0", 1)[0].decode()

role, name, text = sys.argv[1], sys.argv[2], sys.argv[3]
if role == "create":
    shm = attach(name, True, 1024)
    data = text.encode() + b"\0"
    shm.buf[:len(data)] = data
    print("ready", flush=True)
    sys.stdin.readline()
    print("reply=" + cstr(shm.buf[512:]), flush=True)
    shm.close()  # Go unlinks: the segment must outlive this process
elif role == "attach":
    shm = attach(name, False)
    print("size=%d" % shm.size)
    print("message=" + cstr(shm.buf[:512]))
    data = text.encode() + b"\0"
    shm.buf[512:512 + len(data)] = data
    shm.close()
`

// TestInteropPythonCreates: Python creates and writes, Go opens, reads and
// replies, Python reads the reply; the segment outlives Python and Go
// unlinks it.
func TestInteropPythonCreates(t *testing.T) {
	py := interopPython(t)
	name := testName(t)
	const msg, reply = "hello from Python", "hello back from Go"

	p := startInteropPeer(t, exec.Command(py, "-c", interopPy, "create", name, msg))
	if got := p.line(t); got != "ready" {
		t.Fatalf("Python said %q, want %q", got, "ready")
	}
	s, err := Open(name)
	if err != nil {
		t.Fatalf("Open(%q) of the segment Python created = %v", name, err)
	}
	defer s.Close()
	if s.Size() != 1024 {
		t.Errorf("Size() = %d, want 1024", s.Size())
	}
	if got := interopCString(s.Bytes()[:512]); got != msg {
		t.Errorf("Go read %q from Python, want %q", got, msg)
	}
	if _, err := s.WriteAt(append([]byte(reply), 0), 512); err != nil {
		t.Fatalf("WriteAt(reply, 512) = %v", err)
	}
	p.finish(t)
	if got, want := p.line(t), "reply="+reply; got != want {
		t.Errorf("Python read %q, want %q", got, want)
	}
	p.wait(t)
	if err := Unlink(name); err != nil {
		t.Errorf("Unlink(%q) after Python exited = %v; want nil (did Python's resource tracker remove it?)", name, err)
	}
}

// TestInteropPythonAttaches: Go creates and writes, Python attaches by name,
// reads and replies, Go reads the reply.
func TestInteropPythonAttaches(t *testing.T) {
	py := interopPython(t)
	name := testName(t)
	const msg, reply = "hello from Go", "hello back from Python"

	s, err := Create(name, 1024)
	if err != nil {
		t.Fatalf("Create(%q, 1024) = %v", name, err)
	}
	defer s.Close()
	if _, err := s.WriteAt(append([]byte(msg), 0), 0); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", interopPy, "attach", name, reply).CombinedOutput()
	if err != nil {
		t.Fatalf("Python attach: %v\n%s", err, out)
	}
	if got, want := string(out), "size=1024\nmessage="+msg+"\n"; got != want {
		t.Errorf("Python printed %q, want %q", got, want)
	}
	if got := interopCString(s.Bytes()[512:]); got != reply {
		t.Errorf("Go read reply %q, want %q", got, reply)
	}
	// Python's resource tracker must not have removed our segment.
	if ok, err := Exists(name); !ok || err != nil {
		t.Errorf("Exists(%q) after Python exited = %v, %v; want true, nil", name, ok, err)
	}
}

// interopMsg is the struct two Go processes share through View. State moves
// 0 → 1 (request written by the parent) → 2 (reply written by the child).
type interopMsg struct {
	State   atomic.Uint32
	N       uint32
	Values  [16]int64
	Sum     int64
	Request [32]byte
	Reply   [32]byte
}

func init() {
	children["interop-go-peer"] = interopGoPeer
}

// interopGoPeer opens the segment, waits for the request, sums the values
// and replies.
func interopGoPeer(args []string) int {
	s, err := Open(args[0])
	if err != nil {
		return childFail("Open: %v", err)
	}
	defer s.Close()
	m, err := View[interopMsg](s, 0)
	if err != nil {
		return childFail("View: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); m.State.Load() != 1; {
		if time.Now().After(deadline) {
			return childFail("no request within 30s")
		}
		time.Sleep(time.Millisecond)
	}
	var sum int64
	for _, v := range m.Values[:m.N] {
		sum += v
	}
	m.Sum = sum
	copy(m.Reply[:], "sum from pid "+strconv.Itoa(os.Getpid()))
	m.State.Store(2)
	return 0
}

// TestInteropGoProcesses: two Go processes share a struct through View; the
// child is already running and waiting when the parent writes the request.
func TestInteropGoProcesses(t *testing.T) {
	name := testName(t)
	s, err := Create(name, 4096)
	if err != nil {
		t.Fatalf("Create(%q) = %v", name, err)
	}
	defer s.Close()
	m, err := View[interopMsg](s, 0)
	if err != nil {
		t.Fatalf("View[interopMsg] = %v", err)
	}

	cmd := childCmd(t, "interop-go-peer", name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.N = 10
	var want int64
	for i := range m.N {
		m.Values[i] = int64(i+1) * 1_000_000_007
		want += m.Values[i]
	}
	copy(m.Request[:], "please sum")
	m.State.Store(1) // publishes the plain fields above (atomic store: release)

	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	if got := m.State.Load(); got != 2 {
		t.Fatalf("State = %d after the child exited, want 2", got)
	}
	if m.Sum != want {
		t.Errorf("child's Sum = %d, want %d", m.Sum, want)
	}
	if got, want := interopCString(m.Reply[:]), "sum from pid "+strconv.Itoa(cmd.Process.Pid); got != want {
		t.Errorf("child's Reply = %q, want %q", got, want)
	}
}
