package shmnet_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mindmeld-go/shm/shmnet"
)

func TestEcho(t *testing.T) {
	l := listen(t, nil)
	c, s := pipe(t, l, nil)
	go io.Copy(s, s)
	for _, n := range []int{1, 64, 1000, 4096, 32 << 10, 1 << 20, 3<<20 + 17} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i*7 + n)
		}
		errc := make(chan error, 1)
		go func() { _, err := c.Write(msg); errc <- err }()
		got := make([]byte, n)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("ReadFull(%d bytes) = %v", n, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("Write(%d bytes) = %v", n, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes differs", n)
		}
	}
}

func TestStreamSemantics(t *testing.T) {
	l := listen(t, nil)
	c, s := pipe(t, l, nil)
	if _, err := c.Write([]byte("hello, world")); err != nil {
		t.Fatal(err)
	}
	// A Read with a short buffer returns part of a message, the next the rest.
	buf := make([]byte, 5)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read(5 bytes) = %q, %v, want \"hello\"", buf[:n], err)
	}
	big := make([]byte, 100)
	n, err = s.Read(big)
	if err != nil || string(big[:n]) != ", world" {
		t.Fatalf("Read = %q, %v, want \", world\"", big[:n], err)
	}
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v, want 0, nil", n, err)
	}
}

func TestAddrsAndCred(t *testing.T) {
	l := listen(t, nil)
	c, s := pipe(t, l, nil)
	if got := c.RemoteAddr(); got.Network() != "shm" || got.String() != l.Addr().String() {
		t.Errorf("client RemoteAddr = %s %q, want shm %q", got.Network(), got, l.Addr())
	}
	if got := s.LocalAddr(); got.Network() != "shm" || got.String() != l.Addr().String() {
		t.Errorf("server LocalAddr = %s %q, want shm %q", got.Network(), got, l.Addr())
	}
	cred, err := s.(*shmnet.Conn).PeerCred()
	if err != nil {
		t.Fatalf("PeerCred: %v", err)
	}
	if cred.UID != os.Getuid() || (runtime.GOOS != "freebsd" && cred.PID != os.Getpid()) {
		t.Errorf("PeerCred = %+v, want uid %d pid %d", cred, os.Getuid(), os.Getpid())
	}
	if runtime.GOOS == "linux" && s.RemoteAddr().String() != "pid "+itoa(os.Getpid()) {
		t.Errorf("server RemoteAddr = %q, want \"pid %d\"", s.RemoteAddr(), os.Getpid())
	}
	w, r := c.(*shmnet.Conn).RingSize()
	if w != shmnet.DefaultRingSize || r != shmnet.DefaultRingSize {
		t.Errorf("RingSize = %d, %d, want %d both", w, r, shmnet.DefaultRingSize)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestEOFAfterData(t *testing.T) {
	l := listen(t, nil)
	c, s := pipe(t, l, &shmnet.Dialer{RingSize: 4096})
	want := make([]byte, 100000)
	for i := range want {
		want[i] = byte(rand.N(256))
	}
	go func() {
		c.Write(want)
		c.Close()
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("ReadAll = %v, want nil (io.EOF after the data)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ReadAll got %d bytes, want the %d written", len(got), len(want))
	}
	if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v, want 0, io.EOF", n, err)
	}
	// Writing to a closed peer fails with EPIPE.
	var err2 error
	for range 10 {
		if _, err2 = s.Write([]byte("x")); err2 != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err2, syscall.EPIPE) {
		t.Fatalf("Write to a closed peer = %v, want EPIPE", err2)
	}
}

func TestCloseUnblocks(t *testing.T) {
	l := listen(t, nil)
	c, _ := pipe(t, l, &shmnet.Dialer{RingSize: 4096})
	errs := make(chan error, 2)
	go func() { _, err := c.Read(make([]byte, 10)); errs <- err }()
	go func() { _, err := c.Write(make([]byte, 1<<20)); errs <- err }() // the peer never reads: blocks
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("blocked call after Close = %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a blocked call did not return after Close")
		}
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want net.ErrClosed", err)
	}
}

func TestDeadlines(t *testing.T) {
	l := listen(t, nil)
	c, s := pipe(t, l, &shmnet.Dialer{RingSize: 4096})
	check := func(what string, err error) {
		t.Helper()
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%s = %v, want a timeout matching os.ErrDeadlineExceeded", what, err)
		}
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	check("Read past its deadline", err)
	_, err = c.Read(make([]byte, 1))
	check("second Read past its deadline", err)
	// Clearing the deadline makes Read work again.
	c.SetReadDeadline(time.Time{})
	s.Write([]byte("a"))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("Read after clearing the deadline = %v", err)
	}
	// A deadline set while Read blocks stops it.
	errc := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Now())
	check("blocked Read after SetReadDeadline(now)", <-errc)
	c.SetReadDeadline(time.Time{})

	// Write: fill the ring (the peer does not read), then time out.
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c.Write(make([]byte, 1<<20))
	check("Write to a full ring past its deadline", err)
	if n <= 0 || n >= 1<<20 {
		t.Errorf("Write returned n = %d, want the part that fit in the ring", n)
	}
	// Extending a deadline while Write blocks lets it go on.
	c.SetWriteDeadline(time.Now().Add(time.Hour))
	go func() { io.Copy(io.Discard, s) }()
	if _, err := c.Write(make([]byte, 1<<20)); err != nil {
		t.Fatalf("Write with a far deadline = %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	l := listen(t, nil)
	c, s := pipe(t, l, nil)
	const writers, each = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte('a' + w)}, 1000)
			for range each {
				if _, err := c.Write(msg); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	total := 0
	counts := map[byte]int{}
	var rg sync.WaitGroup
	for range 3 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			buf := make([]byte, 777)
			for {
				n, err := s.Read(buf)
				mu.Lock()
				for _, b := range buf[:n] {
					counts[b]++
				}
				total += n
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	c.Close()
	rg.Wait()
	if total != writers*each*1000 {
		t.Fatalf("read %d bytes, want %d", total, writers*each*1000)
	}
	for w := range writers {
		if counts[byte('a'+w)] != each*1000 {
			t.Errorf("writer %d: %d bytes arrived, want %d", w, counts[byte('a'+w)], each*1000)
		}
	}
}

func TestListenerClose(t *testing.T) {
	skipUnsupported(t)
	path := sockPath(t)
	l, err := shmnet.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("socket file after Listen: %v", err)
	}
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: Stat = %v, want fs.ErrNotExist", err)
	}
	if err := l.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
	if _, err := shmnet.Dial(path); err == nil {
		t.Errorf("Dial after Close succeeded")
	}
}

func TestAbstractName(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract names are Linux only")
	}
	name := "@shmnet-test-" + itoa(os.Getpid())
	l, err := shmnet.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, s := pipe(t, l, nil)
	go c.Write([]byte("abstract"))
	buf := make([]byte, 8)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "abstract" {
		t.Fatalf("Read = %q, %v", buf, err)
	}
}

func TestBadRingSize(t *testing.T) {
	l := listen(t, &shmnet.ListenConfig{MaxRingSize: 64 << 10})
	for _, size := range []int{1000, 2048, 1 << 20} {
		d := shmnet.Dialer{RingSize: size}
		c, err := d.Dial(l.Addr().String())
		if err == nil {
			c.Close()
			t.Errorf("Dial with ring size %d succeeded, want an error", size)
		}
		if size == 1<<20 && !errors.Is(err, shmnet.ErrHandshake) {
			t.Errorf("Dial with a ring above the listener's limit = %v, want ErrHandshake", err)
		}
	}
}

func TestLargeChecksum(t *testing.T) {
	l := listen(t, nil)
	c, s := pipe(t, l, nil)
	total := 64 << 20
	if testing.Short() || raceEnabled {
		total = 8 << 20
	}
	go func() {
		buf := make([]byte, 1<<16+3)
		h := sha256.New()
		r := rand.New(rand.NewPCG(1, 2))
		left := total
		for left > 0 {
			n := min(left, len(buf))
			for i := range buf[:n] {
				buf[i] = byte(r.Uint32())
			}
			h.Write(buf[:n])
			c.Write(buf[:n])
			left -= n
		}
		c.Write(h.Sum(nil))
		c.Close()
	}()
	all, err := io.ReadAll(s)
	if err != nil || len(all) != total+32 {
		t.Fatalf("ReadAll = %d bytes, %v, want %d", len(all), err, total+32)
	}
	sum := sha256.Sum256(all[:total])
	if !bytes.Equal(sum[:], all[total:]) {
		t.Fatal("checksum mismatch")
	}
}
