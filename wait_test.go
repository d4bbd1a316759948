package shm

import (
	"errors"
	"math"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func init() {
	children["wakepong"] = childWakePong
}

type pongHeader struct {
	word     atomic.Uint32
	timeouts atomic.Uint32 // waits that timed out with the word unchanged
}

// waitFor waits until h.word == want, with Wait timeouts of one second;
// a timeout while the word still holds the value it had is a missed wake-up
// (nobody else waits on the word for that long in these tests), counted in
// h.timeouts. It gives up after limit.
func waitFor(h *pongHeader, want uint32, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		v := h.word.Load()
		if v == want {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		if err := Wait(&h.word, v, time.Second); errors.Is(err, os.ErrDeadlineExceeded) {
			if h.word.Load() == v {
				h.timeouts.Add(1)
			}
		} else if err != nil {
			return false
		}
	}
}

// childWakePong answers each odd value of the word with the next even one.
func childWakePong(args []string) int {
	s, err := Open(args[0])
	if err != nil {
		return childFail("open: %v", err)
	}
	defer s.Close()
	rounds, _ := strconv.Atoi(args[1])
	h, err := View[pongHeader](s, 0)
	if err != nil {
		return childFail("view: %v", err)
	}
	for i := 0; i < rounds; i++ {
		if !waitFor(h, uint32(2*i+1), 30*time.Second) {
			return childFail("round %d: word %d, want %d", i, h.word.Load(), 2*i+1)
		}
		h.word.Store(uint32(2*i + 2))
		if _, err := Wake(&h.word, 1); err != nil {
			return childFail("wake: %v", err)
		}
	}
	return 0
}

func TestWaitTimeout(t *testing.T) {
	var w atomic.Uint32
	start := time.Now()
	err := Wait(&w, 0, 20*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait on unchanged word = %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Errorf("Wait returned after %v, want about 20ms", d)
	}
	if err := Wait(&w, 1, -1); err != nil {
		t.Fatalf("Wait with a value the word does not hold = %v, want nil at once", err)
	}
	if err := Wait(&w, 0, 0); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Wait with zero timeout = %v, want os.ErrDeadlineExceeded", err)
	}
	if n, err := Wake(&w, math.MaxInt); err != nil || n != 0 {
		t.Fatalf("Wake with no waiters = %d, %v; want 0, nil", n, err)
	}
}

func TestWaitWakeGoroutines(t *testing.T) {
	var w atomic.Uint32
	done := make(chan error)
	go func() {
		for w.Load() == 0 {
			if err := Wait(&w, 0, 10*time.Second); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(10 * time.Millisecond)
	w.Store(1)
	Wake(&w, 1)
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

// TestWaitWakeProcesses plays ping-pong on one word with a child process
// many times, while a third goroutine issues spurious wake-ups; every
// exchange must complete without a missed wake-up.
func TestWaitWakeProcesses(t *testing.T) {
	const rounds = 5000
	name := testName(t)
	s, err := Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := View[pongHeader](s, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := childCmd(t, "wakepong", name, strconv.Itoa(rounds))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	spurious := make(chan struct{})
	go func() {
		defer close(spurious)
		for {
			select {
			case <-stop:
				return
			default:
			}
			Wake(&h.word, math.MaxInt32)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for i := 0; i < rounds; i++ {
		h.word.Store(uint32(2*i + 1))
		Wake(&h.word, 1)
		if !waitFor(h, uint32(2*i+2), 30*time.Second) {
			close(stop)
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: word %d, want %d", i, h.word.Load(), 2*i+2)
		}
	}
	close(stop)
	<-spurious
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if n := h.timeouts.Load(); n != 0 {
		t.Errorf("%d waits timed out with the word unchanged: missed wake-ups", n)
	}
}
