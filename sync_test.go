package shm

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func init() {
	children["mutexcount"] = childMutexCount
	children["mutexhold"] = childMutexHold
	children["semproduce"] = childSemProduce
	children["semconsume"] = childSemConsume
}

// counterHeader is the layout the counting test shares.
type counterHeader struct {
	mu    Mutex
	n     uint64 // guarded by mu, updated non-atomically on purpose
	check uint64 // guarded by mu: n is copied here and checked on entry
}

// openView opens segment name in a child and returns a view of T at 0.
func openView[T any](name string) (*Segment, *T, error) {
	s, err := Open(name)
	if err != nil {
		return nil, nil, err
	}
	v, err := View[T](s, 0)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, v, nil
}

// childMutexCount adds 1 to the counter args[1] times, from two goroutines,
// under the Mutex.
func childMutexCount(args []string) int {
	s, h, err := openView[counterHeader](args[0])
	if err != nil {
		return childFail("%v", err)
	}
	defer s.Close()
	iters, _ := strconv.Atoi(args[1])
	var wg sync.WaitGroup
	var bad atomic.Int64
	for g := range 2 {
		wg.Go(func() {
			for i := g; i < iters; i += 2 {
				h.mu.Lock()
				if h.n != h.check {
					bad.Add(1)
				}
				h.n++
				h.check = h.n
				h.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if b := bad.Load(); b != 0 {
		return childFail("%d critical sections saw a torn update", b)
	}
	return 0
}

// newSegmentView creates a fresh segment of size bytes and a view of T at 0.
func newSegmentView[T any](t *testing.T, size int) (string, *T) {
	t.Helper()
	name := testName(t)
	s, err := Create(name, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	v, err := View[T](s, 0)
	if err != nil {
		t.Fatal(err)
	}
	return name, v
}

func TestMutexCountProcesses(t *testing.T) {
	procs, iters := 4, 100000
	if testing.Short() {
		iters = 10000
	}
	name, h := newSegmentView[counterHeader](t, 4096)
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmds[i] = childCmd(t, "mutexcount", name, strconv.Itoa(iters))
		cmds[i].Stderr = os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := uint64(procs * iters); h.n != want {
		t.Fatalf("counter = %d after %d processes × %d increments, want %d", h.n, procs, iters, want)
	}
}

// childMutexHold locks the Mutex at offset 0 of segment args[0], writes 1
// into the word at offset 8, then either exits (args[1] == "exit") or
// sleeps until killed.
func childMutexHold(args []string) int {
	s, h, err := openView[holdHeader](args[0])
	if err != nil {
		return childFail("%v", err)
	}
	h.mu.Lock()
	h.locked.Store(1)
	Wake(&h.locked, 1)
	if args[1] == "exit" {
		s.Close()
		return 0
	}
	time.Sleep(time.Hour)
	return 0
}

type holdHeader struct {
	mu     Mutex
	locked atomic.Uint32
}

// startHolder starts a child that locks h.mu and waits until it has.
func startHolder(t *testing.T, name string, h *holdHeader, mode string) *exec.Cmd {
	t.Helper()
	cmd := childCmd(t, "mutexhold", name, mode)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for h.locked.Load() == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("child did not lock the mutex within 30s")
		}
		Wait(&h.locked, 0, 100*time.Millisecond)
	}
	return cmd
}

// takeoverBound is how long, at most, a takeover may take in tests: the
// 200ms target with a wide margin for a loaded machine.
const takeoverBound = 5 * time.Second

func TestMutexOwnerKilled(t *testing.T) {
	name, h := newSegmentView[holdHeader](t, 4096)
	cmd := startHolder(t, name, h, "sleep")
	if h.mu.TryLock() {
		t.Fatal("TryLock succeeded while the child holds the lock")
	}
	// A waiter already asleep when the owner dies.
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res <- h.mu.LockContext(ctx)
	}()
	time.Sleep(20 * time.Millisecond)
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The child stays a zombie until reaped: it must count as dead.
	defer cmd.Wait()
	err := <-res
	took := time.Since(killed)
	if !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("LockContext after the owner was killed = %v, want ErrOwnerDead", err)
	}
	t.Logf("takeover %v after SIGKILL", took)
	if took > takeoverBound {
		t.Errorf("takeover took %v, want well under %v", took, takeoverBound)
	}
	h.mu.Unlock()
	if err := h.mu.LockContext(context.Background()); err != nil {
		t.Fatalf("LockContext after takeover and Unlock = %v, want nil", err)
	}
	h.mu.Unlock()
}

func TestMutexOwnerExited(t *testing.T) {
	name, h := newSegmentView[holdHeader](t, 4096)
	cmd := startHolder(t, name, h, "exit")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), takeoverBound)
	defer cancel()
	if err := h.mu.LockContext(ctx); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("LockContext after the owner exited holding it = %v, want ErrOwnerDead", err)
	}
	h.mu.Unlock()
	// Lock takes over silently.
	cmd = startHolder(t, name, h, "exit")
	cmd.Wait()
	h.mu.Lock()
	//lint:ignore SA2001 an empty critical section is what is measured or tested
	h.mu.Unlock()
}

// TestMutexPIDReuse stores as owner a live process with the wrong start
// time, as if the owner died and its PID went to that process.
func TestMutexPIDReuse(t *testing.T) {
	if runtime.GOOS == "linux" {
		t.Skip("Linux tokens are random, not PIDs: see TestPeerAliveAndAfterPeer")
	}
	_, h := newSegmentView[holdHeader](t, 4096)
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	pid := sleeper.Process.Pid
	start, err := processStart(pid)
	if err != nil {
		t.Fatalf("processStart(%d) = %v", pid, err)
	}
	if start == 0 {
		t.Skip("processStart gives no start time on this platform")
	}
	live := uint64(foldStart(start))<<32 | uint64(pid)

	// The real owner: the lock is held, LockContext times out.
	h.mu.w.Store(live)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err = h.mu.LockContext(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockContext while a live process holds the lock = %v, want context.DeadlineExceeded", err)
	}

	// Same PID, other start time: the owner is gone.
	h.mu.w.Store(uint64(foldStart(start+12345))<<32 | uint64(pid))
	ctx, cancel = context.WithTimeout(context.Background(), takeoverBound)
	defer cancel()
	if err := h.mu.LockContext(ctx); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("LockContext with the owner's PID reused = %v, want ErrOwnerDead", err)
	}
	h.mu.Unlock()
}

func TestMutexTwoWaitersOneTakeover(t *testing.T) {
	_, h := newSegmentView[holdHeader](t, 4096)
	// A dead owner: a PID that names no process.
	h.mu.w.Store(mutexPidMask)
	var owners atomic.Int32
	var dead atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := h.mu.LockContext(ctx)
			if err != nil && !errors.Is(err, ErrOwnerDead) {
				t.Errorf("LockContext = %v", err)
				return
			}
			if errors.Is(err, ErrOwnerDead) {
				dead.Add(1)
			}
			if owners.Add(1) != 1 {
				t.Error("two goroutines hold the lock at once")
			}
			time.Sleep(time.Millisecond)
			owners.Add(-1)
			h.mu.Unlock()
		})
	}
	wg.Wait()
	if n := dead.Load(); n != 1 {
		t.Fatalf("%d waiters were told ErrOwnerDead, want exactly 1", n)
	}
}

func TestMutexUnlockPanics(t *testing.T) {
	var m Mutex
	mustPanic(t, "Unlock of an unlocked Mutex", m.Unlock)
	m.w.Store(uint64(mutexPidMask)) // held by "another process"
	mustPanic(t, "Unlock of a Mutex held by another process", m.Unlock)
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

func TestMutexContextCancel(t *testing.T) {
	var m Mutex
	m.Lock()
	defer m.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	if err := m.LockContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("LockContext cancelled = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("LockContext returned %v after cancel, want promptly", d)
	}
	if m.TryLock() {
		t.Fatal("TryLock on a held Mutex succeeded")
	}
}

// checkHostileWord puts w into a Mutex and locks it with a short deadline:
// it must return, without crashing, with the lock held (nil or
// ErrOwnerDead) or context.DeadlineExceeded.
func checkHostileWord(t *testing.T, w uint64) {
	var m Mutex
	m.w.Store(w)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.LockContext(ctx)
	if d := time.Since(start); d > takeoverBound {
		t.Errorf("word %#x: LockContext took %v with a 120ms deadline", w, d)
	}
	switch {
	case err == nil, errors.Is(err, ErrOwnerDead):
		m.Unlock()
	case errors.Is(err, context.DeadlineExceeded):
	default:
		t.Errorf("word %#x: LockContext = %v", w, err)
	}
}

var hostileWords = []uint64{
	0, 1, mutexWaiters, 1 << 30, mutexPidMask, math.MaxUint32, math.MaxUint64,
	0xffffffff00000000, 0xffffffff00000001, 0x8000000000000000, 0xdeadbeefcafebabe,
	uint64(os.Getpid()), uint64(os.Getpid()) | mutexWaiters, 0x12345678<<32 | uint64(os.Getpid()),
	uint64(os.Getppid()),
}

func TestMutexHostileWords(t *testing.T) {
	for _, w := range hostileWords {
		checkHostileWord(t, w)
	}
	// A word changing under the waiter.
	var m Mutex
	m.w.Store(1)
	stop := make(chan struct{})
	go func() {
		x := uint64(0x9e3779b97f4a7c15)
		for {
			select {
			case <-stop:
				return
			default:
			}
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			m.w.Store(x | 1)
			Wake((*atomic.Uint32)(unsafe.Pointer(m.futexWord())), math.MaxInt32)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := m.LockContext(ctx)
	cancel()
	close(stop)
	if err != nil && !errors.Is(err, ErrOwnerDead) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockContext on a churning word = %v", err)
	}
}

func FuzzMutexWord(f *testing.F) {
	for _, w := range hostileWords[:6] {
		f.Add(w)
	}
	f.Fuzz(func(t *testing.T, w uint64) { checkHostileWord(t, w) })
}

// Semaphore tests.

// pcHeader is the bounded buffer shared by producers and consumers.
type pcHeader struct {
	mu         Mutex
	free, full Semaphore
	head, tail uint32 // guarded by mu
	buf        [64]uint32
}

const pcSeenOffset = 4096

// childSemProduce puts items args[1] … args[1]+args[2]-1 into the buffer.
func childSemProduce(args []string) int {
	s, h, err := openView[pcHeader](args[0])
	if err != nil {
		return childFail("%v", err)
	}
	defer s.Close()
	first, _ := strconv.Atoi(args[1])
	n, _ := strconv.Atoi(args[2])
	for i := first; i < first+n; i++ {
		h.free.Wait()
		h.mu.Lock()
		h.buf[h.tail%uint32(len(h.buf))] = uint32(i)
		h.tail++
		h.mu.Unlock()
		if err := h.full.Post(); err != nil {
			return childFail("post: %v", err)
		}
	}
	return 0
}

// childSemConsume takes args[1] items and marks each one seen.
func childSemConsume(args []string) int {
	s, h, err := openView[pcHeader](args[0])
	if err != nil {
		return childFail("%v", err)
	}
	defer s.Close()
	n, _ := strconv.Atoi(args[1])
	total, _ := strconv.Atoi(args[2])
	seen, err := Slice[atomic.Uint32](s, pcSeenOffset, total)
	if err != nil {
		return childFail("%v", err)
	}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := h.full.WaitContext(ctx)
		cancel()
		if err != nil {
			return childFail("wait for an item: %v", err)
		}
		h.mu.Lock()
		id := h.buf[h.head%uint32(len(h.buf))]
		h.head++
		h.mu.Unlock()
		h.free.Post()
		if int(id) >= total {
			return childFail("item %d out of range", id)
		}
		seen[id].Add(1)
	}
	return 0
}

func TestSemaphoreProducerConsumer(t *testing.T) {
	const producers, consumers = 2, 2
	per := 20000
	if testing.Short() {
		per = 2000
	}
	total := producers * per
	name := testName(t)
	s, err := Create(name, pcSeenOffset+4*total)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := View[pcHeader](s, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range len(h.buf) {
		h.free.Post()
	}
	var cmds []*exec.Cmd
	for p := range producers {
		cmds = append(cmds, childCmd(t, "semproduce", name, strconv.Itoa(p*per), strconv.Itoa(per)))
	}
	for range consumers {
		cmds = append(cmds, childCmd(t, "semconsume", name, strconv.Itoa(total/consumers), strconv.Itoa(total)))
	}
	for _, c := range cmds {
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("child %d (%s): %v", i, c.Env[len(c.Env)-2], err)
		}
	}
	seen, err := Slice[atomic.Uint32](s, pcSeenOffset, total)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for id := range seen {
		if n := seen[id].Load(); n != 1 {
			if bad++; bad < 10 {
				t.Errorf("item %d consumed %d times, want 1", id, n)
			}
		}
	}
	if v := h.full.Value(); v != 0 {
		t.Errorf("full.Value() = %d at the end, want 0", v)
	}
	if v := h.free.Value(); v != len(h.buf) {
		t.Errorf("free.Value() = %d at the end, want %d", v, len(h.buf))
	}
}

func TestSemaphoreTryWait(t *testing.T) {
	var s Semaphore
	if s.TryWait() {
		t.Fatal("TryWait on a zero count succeeded")
	}
	if v := s.Value(); v != 0 {
		t.Fatalf("Value after failed TryWait = %d, want 0", v)
	}
	s.Post()
	s.Post()
	if !s.TryWait() || s.Value() != 1 {
		t.Fatalf("TryWait after two Posts: Value = %d, want 1", s.Value())
	}
	s.count.Store(math.MaxInt32)
	if err := s.Post(); !errors.Is(err, ErrSemaphoreOverflow) {
		t.Fatalf("Post at the maximum = %v, want ErrSemaphoreOverflow", err)
	}
	s.count.Store(math.MaxUint32) // hostile
	if err := s.Post(); !errors.Is(err, ErrSemaphoreOverflow) {
		t.Fatalf("Post on a corrupt count = %v, want ErrSemaphoreOverflow", err)
	}
	if v := s.Value(); v != math.MaxInt32 {
		t.Fatalf("Value on a corrupt count = %d, want math.MaxInt32", v)
	}
}

func TestSemaphoreWaitContext(t *testing.T) {
	var s Semaphore
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.WaitContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitContext on zero with a deadline = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("WaitContext returned %v after a 50ms deadline", d)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start = time.Now()
	if err := s.WaitContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitContext cancelled = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("WaitContext returned %v after cancel", d)
	}
	if v, w := s.Value(), s.waiters.Load(); v != 0 || w != 0 {
		t.Fatalf("after timed-out waits: Value = %d, waiters = %d; want 0, 0", v, w)
	}
	// The count is intact and a Post still reaches a waiter.
	done := make(chan struct{})
	go func() { s.Wait(); close(done) }()
	time.Sleep(10 * time.Millisecond)
	s.Post()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after Post")
	}
	if v := s.Value(); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

// TestSemaphoreCancelPassesWake: a waiter chosen by Post that gives up
// must leave the count and the waiter count intact for the others.
func TestSemaphoreCancelPassesWake(t *testing.T) {
	for range 20 {
		var s Semaphore
		ctx, cancel := context.WithCancel(context.Background())
		a := make(chan error, 1)
		b := make(chan struct{})
		go func() { a <- s.WaitContext(ctx) }()
		go func() { s.Wait(); close(b) }()
		time.Sleep(5 * time.Millisecond)
		s.Post()
		cancel()
		if err := <-a; err == nil {
			s.Post() // the cancellable waiter took the first; give one to the other
		}
		select {
		case <-b:
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter is stuck after Post")
		}
		if v, w := s.Value(), s.waiters.Load(); v != 0 || w != 0 {
			t.Fatalf("Value = %d, waiters = %d; want 0, 0", v, w)
		}
	}
}
