package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mindmeld-go/shm"
)

// maxDelay bounds the random time after which a context is cancelled, or
// its deadline, counted from just before the call.
const maxDelay = 200 * time.Microsecond

// cancellation prints, for each blocking call and each way its context can
// end, the time from the context's end to the call's return.
func cancellation(n int) error {
	// A lock held by another process: a child holds it throughout.
	other, err := shm.CreateTemp("synccmp-", 4096)
	if err != nil {
		return err
	}
	defer other.Close()
	defer other.Unlink()
	ho, err := shm.View[header](other, 0)
	if err != nil {
		return err
	}
	cmd, err := holder(other.Name(), false)
	if err != nil {
		return err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if err := awaitReady(ho); err != nil {
		return err
	}

	// A lock held by this process, and a semaphore at 0.
	self, err := shm.CreateTemp("synccmp-", 4096)
	if err != nil {
		return err
	}
	defer self.Close()
	defer self.Unlink()
	hs, err := shm.View[header](self, 0)
	if err != nil {
		return err
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()

	cases := []struct {
		what string
		call func(context.Context) error
	}{
		{"Mutex.LockContext, held by another process", ho.mu.LockContext},
		{"Mutex.LockContext, held by this process", hs.mu.LockContext},
		{"Semaphore.WaitContext at count 0", hs.a.WaitContext},
		// What the machine allows: a goroutine blocked on the context
		// itself, with no system call of ours in the way.
		{"reference: <-ctx.Done()", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}},
	}
	load := machineLoad()
	fmt.Printf("\n%-58s %10s %10s %10s %6s\n", fmt.Sprintf("context done to return, %d trials each", n), "median", "p99", "max", ">1ms")
	fmt.Printf("  (cancel(): by another goroutine after a random 0–%v; deadline: a random 0–%v away)\n", maxDelay, maxDelay)
	for _, c := range cases {
		for _, byDeadline := range []bool{false, true} {
			lat, err := cancelLatency(n, byDeadline, c.call)
			if err != nil {
				return fmt.Errorf("%s: %v", c.what, err)
			}
			how := "cancel()"
			if byDeadline {
				how = "deadline"
			}
			slices.Sort(lat)
			over := 0
			for _, l := range lat {
				if l > time.Millisecond {
					over++
				}
			}
			fmt.Printf("  %-56s %10v %10v %10v %6d\n", c.what+", "+how, round(lat[len(lat)/2]),
				round(lat[(len(lat)*99+99)/100-1]), round(lat[len(lat)-1]), over)
		}
	}
	fmt.Println("  (target: max ≤ 10ms; >1ms counts the trials over a millisecond)")
	if l := load(); l != "" {
		fmt.Printf("  (machine during these trials: %s)\n", l)
	}
	if v := hs.a.Value(); v != 0 {
		return fmt.Errorf("semaphore at %d after the cancelled waits, want 0", v)
	}
	return nil
}

// cancelLatency calls call n times with a context that ends after a random
// 0–maxDelay: by a deadline, or by cancel() from another goroutine, which
// spins rather than sleeps so that short delays are kept. It returns the
// time from the deadline, or from just before cancel(), to the return;
// every call must fail with the context's error.
func cancelLatency(n int, byDeadline bool, call func(context.Context) error) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		d := rand.N(maxDelay + 1)
		if byDeadline {
			dl := time.Now().Add(d)
			ctx, cancel := context.WithDeadline(context.Background(), dl)
			err := call(ctx)
			tr := time.Now()
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("call with a deadline %v away = %v, want context.DeadlineExceeded", d, err)
			}
			lat = append(lat, tr.Sub(dl))
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		at := make(chan time.Time, 1)
		t0 := time.Now()
		go func() {
			for time.Since(t0) < d {
			}
			t := time.Now()
			cancel()
			at <- t
		}()
		err := call(ctx)
		tr := time.Now()
		tc := <-at
		if !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("call cancelled after %v = %v, want context.Canceled", d, err)
		}
		lat = append(lat, tr.Sub(tc))
	}
	return lat, nil
}
