package ring

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
)

// blockedCall starts f on another goroutine and returns its result channel
// once f has had time to block.
func blockedCall(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	time.Sleep(30 * time.Millisecond)
	return done
}

func await(t *testing.T, what string, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10 s", what)
		return nil
	}
}

// TestCloseUnblocks: Close of an end, or of the ring, on one goroutine
// makes a call blocked on that end on another goroutine return an error
// matching fs.ErrClosed.
func TestCloseUnblocks(t *testing.T) {
	type call struct {
		name  string
		multi bool
		full  bool // the call needs a full ring to block
		run   func(p *Producer, c *Consumer) error
	}
	calls := []call{
		{"Receive", false, false, func(p *Producer, c *Consumer) error { _, err := c.Receive(make([]byte, 64)); return err }},
		{"Read", true, false, func(p *Producer, c *Consumer) error { _, err := c.Read(); return err }},
		{"ReceiveContext", false, false, func(p *Producer, c *Consumer) error {
			_, err := c.ReceiveContext(context.Background(), make([]byte, 64))
			return err
		}},
		{"Send", false, true, func(p *Producer, c *Consumer) error { return p.Send(make([]byte, 40)) }},
		{"SendMulti", true, true, func(p *Producer, c *Consumer) error { return p.Send(make([]byte, 40)) }},
		{"Claim", false, true, func(p *Producer, c *Consumer) error { _, err := p.Claim(40); return err }},
		{"ClaimContext", true, true, func(p *Producer, c *Consumer) error {
			_, err := p.ClaimContext(context.Background(), 40)
			return err
		}},
	}
	for _, polling := range []bool{false, true} {
		for _, cl := range calls {
			for _, how := range []string{"end", "ring"} {
				name := cl.name + "/" + how
				if polling {
					name += "/polling"
				}
				t.Run(name, func(t *testing.T) {
					producers := 1
					if cl.multi {
						producers = 2
					}
					r, err := Create(testName(t), 64, &Options{Producers: producers, Polling: polling})
					if err != nil {
						t.Fatal(err)
					}
					defer r.Close()
					p, _ := r.Producer()
					c, _ := r.Consumer()
					if cl.full {
						if err := p.Send(make([]byte, 48)); err != nil {
							t.Fatal(err)
						}
					}
					done := blockedCall(func() error { return cl.run(p, c) })
					var closeErr error
					switch {
					case how == "ring":
						closeErr = r.Close()
					case cl.full:
						closeErr = p.Close()
					default:
						closeErr = c.Close()
					}
					if closeErr != nil {
						t.Errorf("Close = %v", closeErr)
					}
					if err := await(t, cl.name, done); !errors.Is(err, fs.ErrClosed) {
						t.Fatalf("%s blocked during Close = %v, want fs.ErrClosed", cl.name, err)
					}
				})
			}
		}
	}
}

// TestCancelStormAndClose: create a ring, wait on it with a 1 ms deadline
// while another goroutine closes it at a random moment, over and over;
// each time a fresh segment is mapped right after Close (often at the
// address just freed) and must stay untouched: nothing the ring started
// may write into memory after Close has returned.
func TestCancelStormAndClose(t *testing.T) {
	n := 3000
	if testing.Short() || raceEnabled {
		n = 500
	}
	var fresh []*shm.Segment
	defer func() {
		for _, s := range fresh {
			s.Close()
		}
	}()
	for i := range n {
		r, err := Create(testName(t), 4096, &Options{Producers: 1 + i%2})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := r.Consumer()
		p, _ := r.Producer()
		done := make(chan error, 2)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			_, err := c.ReceiveContext(ctx, make([]byte, 1000))
			done <- err
		}()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			for {
				if err := p.SendContext(ctx, make([]byte, 1000)); err != nil {
					done <- err
					return
				}
			}
		}()
		time.Sleep(time.Duration(i%5) * 300 * time.Microsecond)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-done; err != nil && !(errors.Is(err, fs.ErrClosed) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPeerClosed)) {
				t.Fatalf("iteration %d: call racing Close = %v, want fs.ErrClosed or DeadlineExceeded", i, err)
			}
		}
		s, err := shm.Create(testName(t), 4096+384+64*2)
		if err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, s)
		if len(fresh) > 8 {
			checkZero(t, fresh[0])
			fresh[0].Close()
			fresh = fresh[1:]
		}
	}
	time.Sleep(20 * time.Millisecond)
	for _, s := range fresh {
		checkZero(t, s)
	}
}

func checkZero(t *testing.T, s *shm.Segment) {
	t.Helper()
	b := s.Bytes()
	if i := bytes.IndexFunc(b, func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("segment mapped after a ring's Close was written: byte %d is %#x", i, b[i])
	}
}

// truncate shrinks the named segment of r to size bytes, as a hostile
// peer's ftruncate would.
func truncate(t *testing.T, r *Ring, size int64) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("shrinking a segment by path needs /dev/shm")
	}
	if err := os.Truncate(filepath.Join("/dev/shm", r.Name()), size); err != nil {
		t.Fatal(err)
	}
}

func wantFault(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) && !errors.Is(err, syscall.EFAULT) {
		t.Errorf("%s on a shrunk segment = %v, want ErrCorrupt or EFAULT", what, err)
	}
}

// TestTruncated: a peer shrinks the ring's segment; every call, blocked or
// not, returns an error instead of crashing the program.
func TestTruncated(t *testing.T) {
	childtest.SkipIfEmulated(t, "qemu-user reports a SIGBUS fault address as 0, so a fault in the truncated ring looks like a nil dereference and cannot be recovered")
	for _, producers := range []int{1, 2} {
		for _, size := range []int64{0, 4096} {
			r, err := Create(testName(t), 1<<16, &Options{Producers: producers})
			if err != nil {
				t.Fatal(err)
			}
			p, _ := r.Producer()
			c, _ := r.Consumer()
			// A blocked Receive on an empty ring.
			recv := blockedCall(func() error { _, err := c.Receive(make([]byte, 100)); return err })
			truncate(t, r, size)
			wantFault(t, "blocked Receive", await(t, "blocked Receive", recv))
			if _, err := c.TryReceive(make([]byte, 100)); err == nil {
				t.Errorf("TryReceive after a fault = nil, want an error")
			}
			if size > 0 {
				// The header survives: calls work until they touch the
				// memory past the new end, and fail from then on.
				var err error
				for i := 0; i < 1000 && err == nil; i++ {
					err = p.TrySend(make([]byte, 100))
				}
				wantFault(t, "TrySend past the new end", err)
			}
			// Every call of the producer, the fast path first.
			wantFault(t, "Send", p.Send(make([]byte, 10)))
			wantFault(t, "TrySend", p.TrySend(make([]byte, 10)))
			_, err = p.Claim(10)
			wantFault(t, "Claim", err)
			wantFault(t, "Commit", p.Commit())
			r.Close()
		}
	}
	// Each consumer call, and the calls blocked on a full ring.
	for _, producers := range []int{1, 2} {
		r, err := Create(testName(t), 4096, &Options{Producers: producers})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := r.Producer()
		c, _ := r.Consumer()
		for range 3 {
			p.Send(make([]byte, 100))
		}
		for p.TrySend(make([]byte, 100)) == nil {
		}
		send := blockedCall(func() error { return p.Send(make([]byte, 100)) })
		truncate(t, r, 0)
		wantFault(t, "blocked Send", await(t, "blocked Send", send))
		_, err = c.Read()
		wantFault(t, "Read", err)
		_, err = c.ReceiveContext(context.Background(), make([]byte, 100))
		wantFault(t, "ReceiveContext", err)
		if _, err := r.Producer(); err == nil {
			t.Errorf("Producer on a shrunk ring = nil error")
		}
		if _, err := r.Consumer(); err == nil {
			t.Errorf("Consumer on a shrunk ring = nil error")
		}
		p.Close()
		c.Close()
		r.Close()
	}
}

// TestSealedAnonymous: a ring in a sealed anonymous segment needs no fault
// guard, and works end to end.
func TestSealedAnonymous(t *testing.T) {
	size := Size(4096, nil)
	seg, err := shm.CreateAnonymous(size)
	if err != nil {
		t.Skip(err)
	}
	if err := seg.AddSeals(shm.SealShrink | shm.SealGrow); err != nil {
		seg.Close()
		t.Skip(err)
	}
	r, err := CreateIn(seg, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.guard {
		t.Errorf("ring on a segment sealed against shrinking is guarded, want no guard")
	}
	p, _ := r.Producer()
	c, _ := r.Consumer()
	if err := p.Send([]byte("sealed")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := c.Receive(buf); err != nil || string(buf[:n]) != "sealed" {
		t.Fatalf("Receive = %q, %v", buf[:n], err)
	}
}

// TestHostileTailCancellable: a peer keeps rewriting the tail, so that
// every compare-and-swap of a multi-producer claim fails; SendContext must
// still give up when its context is done, and attaching the consumer while
// a peer keeps rewriting its token must end.
func TestHostileTailCancellable(t *testing.T) {
	r := newRing(t, 4096, &Options{Producers: 2})
	p, _ := r.Producer()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r.h.Tail.Store(8 * (i % 2))
			r.h.ConsumerToken.Store(1<<40 + i%2)
		}
	}()
	defer func() { close(stop); <-done }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.SendContext(ctx, make([]byte, 100))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrPeerDead) {
		t.Errorf("SendContext against a peer rewriting the tail = %v, want DeadlineExceeded (or a won race)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("SendContext returned %v after its 20 ms deadline", d)
	}
	t.Logf("SendContext against a hostile tail: %v after %v", err, time.Since(start))
	start = time.Now()
	c, err := r.Consumer()
	if err == nil {
		c.Close()
	}
	t.Logf("Consumer against a hostile token: %v after %v", err, time.Since(start))
}
