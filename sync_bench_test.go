package shm

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func init() {
	children["benchlock"] = childBenchLock
	children["benchpong"] = childBenchPong
}

type benchHeader struct {
	mu      Mutex
	a, b    Semaphore
	stop    atomic.Uint32
	ready   atomic.Uint32
	counter uint64
}

func benchSegment(b *testing.B) (string, *benchHeader) {
	b.Helper()
	name := testName(b)
	s, err := Create(name, 4096)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	h, err := View[benchHeader](s, 0)
	if err != nil {
		b.Fatal(err)
	}
	return name, h
}

func BenchmarkMutexUncontended(b *testing.B) {
	_, h := benchSegment(b)
	b.ReportAllocs()
	for b.Loop() {
		h.mu.Lock()
		//lint:ignore SA2001 an empty critical section is what is measured or tested
		h.mu.Unlock()
	}
}

// BenchmarkSyncMutexUncontended is the reference for
// BenchmarkMutexUncontended.
func BenchmarkSyncMutexUncontended(b *testing.B) {
	var mu sync.Mutex
	b.ReportAllocs()
	for b.Loop() {
		mu.Lock()
		//lint:ignore SA2001 an empty critical section is what is measured or tested
		mu.Unlock()
	}
}

func BenchmarkSemaphorePostWait(b *testing.B) {
	_, h := benchSegment(b)
	b.ReportAllocs()
	for b.Loop() {
		h.a.Post()
		h.a.Wait()
	}
}

// childBenchLock locks and unlocks until told to stop.
func childBenchLock(args []string) int {
	s, h, err := openView[benchHeader](args[0])
	if err != nil {
		return childFail("%v", err)
	}
	defer s.Close()
	h.ready.Store(1)
	for h.stop.Load() == 0 {
		h.mu.Lock()
		h.counter++
		h.mu.Unlock()
	}
	return 0
}

// childBenchPong answers each post of a with a post of b, args[1] times.
func childBenchPong(args []string) int {
	s, h, err := openView[benchHeader](args[0])
	if err != nil {
		return childFail("%v", err)
	}
	defer s.Close()
	n, _ := strconv.Atoi(args[1])
	h.ready.Store(1)
	for range n {
		h.a.Wait()
		h.b.Post()
	}
	return 0
}

func waitReady(b *testing.B, h *benchHeader) {
	deadline := time.Now().Add(30 * time.Second)
	for h.ready.Load() == 0 {
		if time.Now().After(deadline) {
			b.Fatal("child not ready after 30s")
		}
		runtime.Gosched()
	}
}

// BenchmarkMutexContended2Proc: this process and a child both lock and
// unlock one Mutex in a loop; ns/op is per lock/unlock pair here.
func BenchmarkMutexContended2Proc(b *testing.B) {
	name, h := benchSegment(b)
	cmd := childCmd(b, "benchlock", name)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	waitReady(b, h)
	b.ReportAllocs()
	for b.Loop() {
		h.mu.Lock()
		h.counter++
		h.mu.Unlock()
	}
	b.StopTimer()
	h.stop.Store(1)
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSemaphorePingPong2Proc: a round trip through two semaphores
// between this process and a child.
func BenchmarkSemaphorePingPong2Proc(b *testing.B) {
	name, h := benchSegment(b)
	// The child must know how many round trips to make: run a fixed count
	// per child and start a new one when it is used up.
	const perChild = 1 << 20
	cmd := childCmd(b, "benchpong", name, strconv.Itoa(perChild))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	waitReady(b, h)
	b.ReportAllocs()
	n := 0
	start := time.Now()
	for b.Loop() {
		h.a.Post()
		h.b.Wait()
		n++
		if n == perChild {
			b.Fatal("too many round trips for one child")
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(n), "ns/roundtrip")
	b.StopTimer()
	// Let the child finish its count.
	for ; n < perChild; n++ {
		h.a.Post()
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
}
