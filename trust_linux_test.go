package shm

// Liveness that never takes a live peer for dead: owners in another PID
// namespace, and an owner whose main thread has exited while the process
// runs on. Both fooled PID-based checks (see PLATFORMS.md).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func init() {
	children["mutexleader"] = childMutexLeaderExit
	children["mutexnswait"] = childMutexNSWait
	children["peertoken"] = childPeerToken
	// The leader-exit child must run its role on the main thread, so that
	// ending that thread ends the process's leader: LockOSThread in an
	// init function keeps the main goroutine on the main thread.
	if os.Getenv("SHM_TEST_CHILD") == "mutexleader" {
		runtime.LockOSThread()
	}
}

// inNamespace rewrites cmd to run in a PID namespace of its own (and a
// mount namespace with its own /proc), killed when unshare dies. It skips
// the test where that is not permitted.
func inNamespace(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare(1) not found")
	}
	if out, err := exec.Command(path, "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --pid --fork --mount-proc not permitted here: %v: %s", err, out)
	}
	ns := exec.Command(path, append([]string{"--pid", "--fork", "--kill-child", "--mount-proc"}, cmd.Args...)...)
	ns.Env = cmd.Env
	return ns
}

type trustHeader struct {
	mu     Mutex
	phase  atomic.Uint32 // child progress, see each test
	killed atomic.Int64  // UnixNano of the parent's SIGKILL
	tok    atomic.Uint64 // a child's ProcessToken
}

func waitPhase(t *testing.T, h *trustHeader, want uint32, cmd *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for h.phase.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("child did not reach phase %d within 30s", want)
		}
		Wait(&h.phase, h.phase.Load(), 50*time.Millisecond)
	}
}

// startTrustHolder starts a child that locks h.mu and sleeps, optionally
// in its own PID namespace.
func startTrustHolder(t *testing.T, name string, h *trustHeader, ns bool) *exec.Cmd {
	t.Helper()
	cmd := childCmd(t, "mutexhold", name, "sleep")
	if ns {
		cmd = inNamespace(t, cmd)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// childMutexHold reports in holdHeader.locked, which is trustHeader.phase.
	waitPhase(t, h, 1, cmd)
	return cmd
}

// checkNoTakeover tries the lock for d while its holder lives.
func checkNoTakeover(t *testing.T, h *trustHeader, d time.Duration, who string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := h.mu.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil || errors.Is(err, ErrOwnerDead) {
			h.mu.Unlock()
		}
		t.Fatalf("LockContext while %s holds the lock = %v, want context.DeadlineExceeded", who, err)
	}
}

func killAndTakeOver(t *testing.T, h *trustHeader, cmd *exec.Cmd) time.Duration {
	t.Helper()
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res <- h.mu.LockContext(ctx)
	}()
	time.Sleep(50 * time.Millisecond) // let the waiter fall asleep
	killed := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	err := <-res
	took := time.Since(killed)
	cmd.Wait()
	if !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("LockContext after SIGKILL of the owner = %v, want ErrOwnerDead", err)
	}
	h.mu.Unlock()
	if took > takeoverBound {
		t.Errorf("takeover took %v after SIGKILL, want well under %v", took, takeoverBound)
	}
	return took
}

// The holder lives in its own PID namespace, where it is PID 1: on the
// host, PID 1 is another process with another start time.
func TestMutexHolderInPIDNamespace(t *testing.T) {
	name, h := newSegmentView[trustHeader](t, 4096)
	cmd := startTrustHolder(t, name, h, true)
	checkNoTakeover(t, h, 1500*time.Millisecond, "a process in another PID namespace")
	t.Logf("takeover %v after SIGKILL across PID namespaces", killAndTakeOver(t, h, cmd))
}

// The waiter lives in its own PID namespace and the holder on the host.
func TestMutexWaiterInPIDNamespace(t *testing.T) {
	name, h := newSegmentView[trustHeader](t, 4096)
	holder := startTrustHolder(t, name, h, false)
	var out strings.Builder
	w := inNamespace(t, childCmd(t, "mutexnswait", name))
	w.Stdout, w.Stderr = &out, os.Stderr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Wait()
	waitPhase(t, h, 2, w) // the child's first, bounded LockContext ended
	h.killed.Store(time.Now().UnixNano())
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	if err := w.Wait(); err != nil {
		t.Fatalf("waiter in a PID namespace: %v\n%s", err, out.String())
	}
	t.Logf("waiter in a PID namespace: %s", strings.TrimSpace(out.String()))
}

// childMutexNSWait: while the holder lives, a bounded LockContext must time
// out; after phase 2 the parent kills the holder and LockContext must take
// over.
func childMutexNSWait(args []string) int {
	s, h, err := openView[trustHeader](args[0])
	if err != nil {
		return childFail("%v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	err = h.mu.LockContext(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		return childFail("LockContext while the host's holder lives = %v, want context.DeadlineExceeded", err)
	}
	h.phase.Store(2)
	Wake(&h.phase, 1<<30)
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = h.mu.LockContext(ctx)
	took := time.Duration(time.Now().UnixNano() - h.killed.Load())
	if !errors.Is(err, ErrOwnerDead) {
		return childFail("LockContext after the holder was killed = %v, want ErrOwnerDead", err)
	}
	h.mu.Unlock()
	fmt.Printf("took the lock over %v after SIGKILL of a holder in another PID namespace\n", took)
	return 0
}

// The holder's main thread exits; its other threads run on, holding the
// lock. /proc/PID/stat then says Z (zombie) for the process.
func TestMutexHolderLeaderExited(t *testing.T) {
	skipIfEmulated(t, emuProcStat)
	name, h := newSegmentView[trustHeader](t, 4096)
	cmd := childCmd(t, "mutexleader", name)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPhase(t, h, 2, cmd)
	// The leader must really be gone.
	var state string
	for range 100 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if state = f[0]; state == "Z" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if state != "Z" {
		t.Fatalf("child's leader state %q, want Z after it exited", state)
	}
	checkNoTakeover(t, h, 1500*time.Millisecond, "a process whose main thread exited")
	t.Logf("takeover %v after SIGKILL of a process without its leader", killAndTakeOver(t, h, cmd))
}

// childMutexLeaderExit locks the Mutex on another goroutine and then ends
// the main thread alone with exit(2) (not exit_group). syscall.Syscall, not
// RawSyscall, so that the scheduler hands this thread's P on.
func childMutexLeaderExit(args []string) int {
	go func() {
		s, h, err := openView[trustHeader](args[0])
		if err != nil {
			os.Exit(childFail("%v", err))
		}
		_ = s
		h.mu.Lock()
		h.phase.Store(1)
		for h.phase.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		Wake(&h.phase, 1<<30)
		time.Sleep(time.Hour)
	}()
	go func() {
		// Wait for the main thread to be gone, then say so.
		for {
			b, _ := os.ReadFile("/proc/self/stat")
			if i := strings.LastIndexByte(string(b), ')'); i > 0 {
				if f := strings.Fields(string(b[i+1:])); len(f) > 0 && f[0] == "Z" {
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		for {
			// phase 1 (locked) is set by the other goroutine.
			if p := trustPhase.Load(); p != nil && p.CompareAndSwap(1, 2) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	trustPhaseReady(args[0])
	syscall.Syscall(syscall.SYS_EXIT, 0, 0, 0)
	return 0 // not reached
}

var trustPhase atomic.Pointer[atomic.Uint32] // set by the main thread, read by a goroutine

// trustPhaseReady maps the header for the watcher goroutine above.
func trustPhaseReady(name string) {
	_, h, err := openView[trustHeader](name)
	if err != nil {
		os.Exit(childFail("%v", err))
	}
	trustPhase.Store(&h.phase)
}

// PeerAlive and AfterPeer follow a child that maps the segment: alive
// while it does, gone once it closes it, told at once.
func TestPeerAliveAndAfterPeer(t *testing.T) {
	name := testName(t)
	s, err := Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := View[trustHeader](s, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !s.PeerAlive(ProcessToken()) {
		t.Error("PeerAlive(own token) = false")
	}
	if s.PeerAlive(0) || s.PeerAlive(1<<60) {
		t.Error("PeerAlive of an impossible token = true")
	}
	cmd := childCmd(t, "peertoken", name)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	waitPhase(t, h, 1, cmd)
	tok := h.tok.Load()
	if !s.PeerAlive(tok) {
		t.Fatal("PeerAlive(child) = false while the child maps the segment")
	}
	gone := make(chan time.Time, 1)
	stop := s.AfterPeer(tok, func() { gone <- time.Now() })
	defer stop()
	select {
	case <-gone:
		t.Fatal("AfterPeer fired while the child maps the segment")
	case <-time.After(300 * time.Millisecond):
	}
	closed := time.Now()
	h.phase.Store(2) // the child closes the segment and sleeps on
	Wake(&h.phase, 1<<30)
	select {
	case at := <-gone:
		t.Logf("AfterPeer fired %v after the child was told to close", at.Sub(closed))
	case <-time.After(10 * time.Second):
		t.Fatal("AfterPeer did not fire after the child closed the segment")
	}
	if s.PeerAlive(tok) {
		t.Error("PeerAlive(child) = true after the child closed the segment")
	}
	cmd.Process.Kill()
}

func childPeerToken(args []string) int {
	s, h, err := openView[trustHeader](args[0])
	if err != nil {
		return childFail("%v", err)
	}
	h.tok.Store(ProcessToken())
	h.phase.Store(1)
	Wake(&h.phase, 1<<30)
	for h.phase.Load() < 2 {
		Wait(&h.phase, 1, 100*time.Millisecond)
	}
	s.Close()
	time.Sleep(time.Hour)
	return 0
}
