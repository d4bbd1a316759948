package shm

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// cancelBound is what the tests accept as the worst return after a
// cancellation: far above the ~1 ms the code aims at (bench/synccmp
// measures that), and far below the one-second backstop poll, so a wake-up
// lost between the waiter's last look at its context and its sleep fails
// the test.
const cancelBound = 200 * time.Millisecond

// cancelLatency runs trials calls of wait, each cancelled after a random
// delay of up to 200µs, and returns the sorted times from cancel to return.
func cancelLatency(t *testing.T, trials int, wait func(ctx context.Context) error) []time.Duration {
	t.Helper()
	lat := make([]time.Duration, 0, trials)
	for i := range trials {
		ctx, cancel := context.WithCancel(context.Background())
		var at atomic.Int64
		go func() {
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			at.Store(time.Now().UnixNano())
			cancel()
		}()
		err := wait(ctx)
		end := time.Now().UnixNano()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("trial %d: wait = %v, want context.Canceled", i, err)
		}
		lat = append(lat, time.Duration(end-at.Load()))
	}
	slices.Sort(lat)
	return lat
}

func reportLatency(t *testing.T, what string, lat []time.Duration) {
	t.Helper()
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	t.Logf("%s: %d trials, cancel to return median %v, p99 %v, max %v", what, len(lat), p(0.5), p(0.99), lat[len(lat)-1])
	if m := lat[len(lat)-1]; m > cancelBound {
		t.Errorf("%s: a call returned %v after its context was cancelled, want ≤ %v", what, m, cancelBound)
	}
}

func cancelTrials() int {
	if testing.Short() {
		return 300
	}
	return 3000
}

func TestLockContextCancelLatency(t *testing.T) {
	_, h := newSegmentView[holdHeader](t, 4096)
	h.mu.Lock()
	defer h.mu.Unlock()
	lat := cancelLatency(t, cancelTrials(), func(ctx context.Context) error {
		err := h.mu.LockContext(ctx)
		if err == nil || errors.Is(err, ErrOwnerDead) {
			t.Fatal("LockContext took a held lock")
		}
		return err
	})
	reportLatency(t, "Mutex.LockContext", lat)
}

func TestSemaphoreWaitContextCancelLatency(t *testing.T) {
	var s Semaphore
	lat := cancelLatency(t, cancelTrials(), s.WaitContext)
	reportLatency(t, "Semaphore.WaitContext", lat)
	if s.waiters.Load() != 0 || s.count.Load() != 0 {
		t.Fatalf("after cancelled waits: count %d, waiters %d, want 0, 0", s.count.Load(), s.waiters.Load())
	}
}

func TestWaitContextCancelLatency(t *testing.T) {
	var w atomic.Uint32
	lat := cancelLatency(t, cancelTrials(), func(ctx context.Context) error {
		for {
			if err := WaitContext(ctx, &w, 0, -1); err != nil {
				return err
			}
		}
	})
	reportLatency(t, "WaitContext", lat)
}

// WaitContext never wakes the word after it returned: a word whose only
// sleeper is a goroutine that waits without a context sees no wake-up
// once every cancelled WaitContext on it has returned.
func TestWaitContextNoLateWake(t *testing.T) {
	var w atomic.Uint32
	for range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		go cancel()
		WaitContext(ctx, &w, 0, time.Second)
		cancel()
	}
	woke := make(chan struct{})
	go func() {
		Wait(&w, 0, 300*time.Millisecond)
		close(woke)
	}()
	start := time.Now()
	<-woke
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("a sleeper on the word was woken after %v: a cancelled WaitContext woke it after returning", d)
	}
}

func TestWaitContextDeadline(t *testing.T) {
	var w atomic.Uint32
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	var err error
	for err == nil { // Wait may return early, spuriously (a signal)
		err = WaitContext(ctx, &w, 0, -1)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitContext past its deadline = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 15*time.Millisecond || d > cancelBound {
		t.Fatalf("WaitContext with a 20ms deadline returned after %v", d)
	}
	// A word that does not hold val returns at once, without error.
	w.Store(1)
	if err := WaitContext(context.Background(), &w, 0, time.Second); err != nil {
		t.Fatalf("WaitContext on a changed word = %v", err)
	}
}
