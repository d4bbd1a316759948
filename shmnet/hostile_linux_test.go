package shmnet_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/ring"
	"github.com/mindmeld-go/shm/shmnet"
	"golang.org/x/sys/unix"
)

// hostile listens with a HandshakeError hook whose errors arrive on the
// returned channel.
func hostile(t *testing.T) (*shmnet.Listener, chan error) {
	errs := make(chan error, 16)
	l := listen(t, &shmnet.ListenConfig{HandshakeError: func(err error) { errs <- err }})
	return l, errs
}

func rawDial(t *testing.T, l *shmnet.Listener) *net.UnixConn {
	t.Helper()
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: l.Addr().String(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	return uc
}

// sealedRing makes a ring the way a dialer does, optionally without seals.
func sealedRing(t *testing.T, size int, seal bool) *ring.Ring {
	t.Helper()
	return sizedRing(t, size, ring.Size(size, nil)+128, seal)
}

func sizedRing(t *testing.T, size, segSize int, seal bool) *ring.Ring {
	t.Helper()
	seg, err := shm.CreateAnonymous(segSize)
	if err != nil {
		t.Fatal(err)
	}
	if seal {
		if err := seg.AddSeals(shm.SealShrink | shm.SealGrow | shm.SealSeal); err != nil {
			t.Fatal(err)
		}
	}
	r, err := ring.CreateIn(seg, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// expectRefused waits for the listener's handshake error, checks it and
// then checks that the listener still serves.
func expectRefused(t *testing.T, l *shmnet.Listener, errs chan error, uc *net.UnixConn, want string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, shmnet.ErrHandshake) || !strings.Contains(err.Error(), want) {
			t.Errorf("handshake error = %v, want ErrHandshake saying %q", err, want)
		} else {
			t.Logf("refused: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no handshake error (want %q)", want)
	}
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(uc)
	if len(reply) == 0 || reply[0] != 'E' {
		t.Errorf("reply to the bad client = %q, want 'E' and a reason", reply)
	}
	// The listener keeps serving.
	c, s := pipe(t, l, nil)
	go c.Write([]byte("ok"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatalf("after a bad client, a good connection fails: %v", err)
	}
}

func TestHostileHandshake(t *testing.T) {
	t.Run("garbage", func(t *testing.T) {
		l, errs := hostile(t)
		uc := rawDial(t, l)
		uc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		expectRefused(t, l, errs, uc, "0 descriptors arrived")
	})
	t.Run("hangup", func(t *testing.T) {
		l, errs := hostile(t)
		uc := rawDial(t, l)
		uc.Close()
		select {
		case err := <-errs:
			if !errors.Is(err, shmnet.ErrHandshake) {
				t.Errorf("handshake error = %v, want ErrHandshake", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no handshake error")
		}
	})
	t.Run("silent", func(t *testing.T) {
		errs := make(chan error, 1)
		l := listen(t, &shmnet.ListenConfig{HandshakeTimeout: 50 * time.Millisecond, HandshakeError: func(err error) { errs <- err }})
		uc := rawDial(t, l)
		expectRefused(t, l, errs, uc, "timeout")
	})
	t.Run("unsealed", func(t *testing.T) {
		l, errs := hostile(t)
		uc := rawDial(t, l)
		r := sealedRing(t, 4096, false)
		if err := shm.SendSegment(uc, r.Segment()); err != nil {
			t.Fatal(err)
		}
		expectRefused(t, l, errs, uc, "seals")
	})
	t.Run("not a ring", func(t *testing.T) {
		l, errs := hostile(t)
		uc := rawDial(t, l)
		seg, err := shm.CreateAnonymous(4096)
		if err != nil {
			t.Fatal(err)
		}
		defer seg.Close()
		seg.AddSeals(shm.SealShrink | shm.SealGrow)
		shm.SendSegment(uc, seg)
		expectRefused(t, l, errs, uc, "not a ring")
	})
	t.Run("too large", func(t *testing.T) {
		errs := make(chan error, 1)
		l := listen(t, &shmnet.ListenConfig{MaxRingSize: shmnet.DefaultRingSize, HandshakeError: func(err error) { errs <- err }})
		uc := rawDial(t, l)
		r := sealedRing(t, 1<<20, true)
		shm.SendSegment(uc, r.Segment())
		expectRefused(t, l, errs, uc, "more than")
	})
	t.Run("tiny ring", func(t *testing.T) {
		l, errs := hostile(t)
		uc := rawDial(t, l)
		r := sealedRing(t, 1024, true)
		shm.SendSegment(uc, r.Segment())
		expectRefused(t, l, errs, uc, "want a single-producer ring")
	})
	t.Run("no trailer", func(t *testing.T) {
		l, errs := hostile(t)
		uc := rawDial(t, l)
		r := sizedRing(t, 4096, ring.Size(4096, nil), true)
		shm.SendSegment(uc, r.Segment())
		expectRefused(t, l, errs, uc, "trailer")
	})
	t.Run("two descriptors", func(t *testing.T) {
		l, errs := hostile(t)
		uc := rawDial(t, l)
		a, b := sealedRing(t, 4096, true), sealedRing(t, 4096, true)
		hdr := make([]byte, 16)
		copy(hdr, "SHM1")
		binary.LittleEndian.PutUint64(hdr[8:], uint64(a.Segment().Size()))
		if _, _, err := uc.WriteMsgUnix(hdr, unix.UnixRights(a.Segment().Fd(), b.Segment().Fd()), nil); err != nil {
			t.Fatal(err)
		}
		expectRefused(t, l, errs, uc, "2 descriptors")
	})
	t.Run("a pipe", func(t *testing.T) {
		l, errs := hostile(t)
		uc := rawDial(t, l)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		defer pw.Close()
		hdr := make([]byte, 16)
		copy(hdr, "SHM1")
		binary.LittleEndian.PutUint64(hdr[8:], 4096)
		uc.WriteMsgUnix(hdr, unix.UnixRights(int(pr.Fd())), nil)
		expectRefused(t, l, errs, uc, "rejected")
	})
	t.Run("consumer taken", func(t *testing.T) {
		// The dialer attaches as the consumer of the ring the listener
		// must consume.
		l, errs := hostile(t)
		uc := rawDial(t, l)
		a, b := sealedRing(t, 4096, true), sealedRing(t, 4096, true)
		if _, err := a.Consumer(); err != nil {
			t.Fatal(err)
		}
		shm.SendSegment(uc, a.Segment())
		shm.SendSegment(uc, b.Segment())
		expectRefused(t, l, errs, uc, "already attached")
	})
}

// rawPair makes a connection with a hand-made dialer, which keeps the
// rings to scribble on, and returns the accepted end.
func rawPair(t *testing.T, l *shmnet.Listener) (tx, rx *ring.Ring, uc *net.UnixConn, s net.Conn) {
	uc = rawDial(t, l)
	tx, rx = sealedRing(t, 4096, true), sealedRing(t, 4096, true)
	if _, err := tx.Producer(); err != nil {
		t.Fatal(err)
	}
	if _, err := rx.Consumer(); err != nil {
		t.Fatal(err)
	}
	shm.SendSegment(uc, tx.Segment())
	shm.SendSegment(uc, rx.Segment())
	var b [1]byte
	if _, err := io.ReadFull(uc, b[:]); err != nil || b[0] != 'K' {
		t.Fatalf("reply %q, %v, want 'K'", b, err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return tx, rx, uc, s
}

func TestCorruptRing(t *testing.T) {
	l := listen(t, nil)
	tx, _, _, s := rawPair(t, l)
	// The peer fills the data area with garbage and moves the tail: the
	// record header read is 0xffff…, neither data nor padding.
	b := tx.Segment().Bytes()
	dataOff := ring.Size(4096, nil) - 4096
	for i := dataOff; i < len(b); i++ {
		b[i] = 0xff
	}
	tail, err := shm.View[atomic.Uint64](tx.Segment(), 64)
	if err != nil {
		t.Fatal(err)
	}
	tail.Store(64)
	errc := make(chan error, 1)
	go func() { _, err := s.Read(make([]byte, 100)); errc <- err }()
	select {
	case err := <-errc:
		if !errors.Is(err, ring.ErrCorrupt) {
			t.Fatalf("Read of a corrupt ring = %v, want ring.ErrCorrupt", err)
		}
		t.Logf("Read: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Read of a corrupt ring did not return")
	}
}

func TestPeerCrashInProcess(t *testing.T) {
	// The raw dialer's socket closes without a bye byte, as a crash's does.
	l := listen(t, nil)
	_, _, uc, s := rawPair(t, l)
	errc := make(chan error, 1)
	go func() { _, err := s.Read(make([]byte, 1)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	uc.Close()
	err := <-errc
	t.Logf("Read returned %v after %v", err, time.Since(start))
	if !errors.Is(err, ring.ErrPeerDead) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after the peer vanished = %v, want ring.ErrPeerDead and ECONNRESET", err)
	}
}

func init() {
	children["dial-write-hang"] = func(args []string) int {
		c, err := shmnet.Dial(args[0])
		if err != nil {
			return fail("Dial: %v", err)
		}
		if _, err := c.Write([]byte("last words")); err != nil {
			return fail("Write: %v", err)
		}
		fmt.Println("ready")
		// Not select {}: with no other goroutine, a binary built without cgo
		// dies of "all goroutines are asleep", and its locks with it.
		for {
			time.Sleep(time.Hour)
		}
	}
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

func TestPeerKilled(t *testing.T) {
	l := listen(t, nil)
	cmd := harnessCommand(t, "dial-write-hang", l.Addr().String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		t.Fatalf("child said %q", line)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "last words" {
		t.Fatalf("Read = %q, %v, want \"last words\"", buf, err)
	}
	errc := make(chan error, 1)
	go func() { _, err := s.Read(buf); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	err = <-errc
	took := time.Since(start)
	t.Logf("Read returned %v %v after SIGKILL", err, took)
	if !errors.Is(err, ring.ErrPeerDead) {
		t.Fatalf("Read after the peer was killed = %v, want ring.ErrPeerDead", err)
	}
	if took > 2*time.Second {
		t.Errorf("the death was seen after %v; want milliseconds", took)
	}
	// Write fails too.
	if _, err := s.Write([]byte("anyone?")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write to a dead peer = %v, want EPIPE", err)
	}
}

func TestNoLeaks(t *testing.T) {
	l := listen(t, nil)
	cycles := 10000
	if testing.Short() {
		cycles = 500
	}
	// Warm up: the listener's goroutines and the runtime's descriptors.
	c, s := pipe(t, l, nil)
	c.Close()
	s.Close()
	fds, maps, names, gos := countFds(t), shmMappings(t), shmNames(t), runtime.NumGoroutine()
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			s, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- s
		}
	}()
	for i := range cycles {
		c, err := shmnet.Dial(l.Addr().String())
		if err != nil {
			t.Fatalf("cycle %d: Dial: %v", i, err)
		}
		s := <-accepted
		if i%2 == 0 {
			c.Write([]byte("x"))
			s.Read(make([]byte, 1))
			c.Close()
			s.Close()
		} else {
			s.Close()
			c.Close()
		}
	}
	// Give goroutines that are finishing a moment.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (runtime.NumGoroutine() > gos+1 || countFds(t) != fds) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := countFds(t); got != fds {
		t.Errorf("after %d connect/close cycles: %d descriptors open, want %d", cycles, got, fds)
	}
	if got := shmMappings(t); got != maps {
		t.Errorf("after %d connect/close cycles: %d shared memory mappings, want %d", cycles, got, maps)
	}
	// Other programs may use /dev/shm meanwhile: a name of ours would be
	// one that appeared and that this process holds open or mapped, which
	// the two counts above would show; list the new names for the log.
	for name := range shmNames(t) {
		if !names[name] {
			t.Logf("new in /dev/shm (not ours: shmnet creates no names): %s", name)
		}
	}
	if got := runtime.NumGoroutine(); got > gos+1 { // +1: the Accept loop above
		t.Errorf("after %d connect/close cycles: %d goroutines, want at most %d", cycles, got, gos+1)
	}
}

func TestIdleCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 s")
	}
	l := listen(t, nil)
	const conns = 100
	for range conns {
		c, s := pipe(t, l, nil)
		// Both ends wait in Read, as an idle keep-alive connection does.
		go c.Read(make([]byte, 1))
		go s.Read(make([]byte, 1))
	}
	time.Sleep(200 * time.Millisecond) // past the spinning
	before, start := cpuTime(t), time.Now()
	time.Sleep(10 * time.Second)
	used, wall := cpuTime(t)-before, time.Since(start)
	share := float64(used) / float64(wall)
	t.Logf("%d idle connections: %v CPU in %v (%.3f%% of a core)", conns, used, wall.Round(time.Millisecond), 100*share)
	if share > 0.01 {
		t.Errorf("%d idle connections used %.2f%% of a core, want < 1%%", conns, 100*share)
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func init() {
	children["dial-slow-echo"] = func(args []string) int {
		c, err := shmnet.Dial(args[0])
		if err != nil {
			return fail("Dial: %v", err)
		}
		// Long enough for the ring's periodic liveness checks (100 ms) on
		// both sides: a live peer must not be taken for dead.
		time.Sleep(300 * time.Millisecond)
		if _, err := c.Write([]byte("late")); err != nil {
			return fail("Write: %v", err)
		}
		buf := make([]byte, 3)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "bye" {
			return fail("Read = %q, %v", buf, err)
		}
		c.Close()
		return 0
	}
}

func TestTwoProcessesSlowPeer(t *testing.T) {
	l := listen(t, nil)
	cmd := harnessCommand(t, "dial-slow-echo", l.Addr().String())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "late" {
		t.Fatalf("Read = %q, %v, want \"late\" (a live peer taken for dead?)", buf, err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := s.Write([]byte("bye")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if n, err := s.Read(buf); err != io.EOF {
		t.Fatalf("Read after the peer's Close = %d, %v, want io.EOF", n, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}
