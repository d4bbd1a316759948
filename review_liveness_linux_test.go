package shm

// Adversarial review of liveness v2 (OFD presence locks): cases that the
// trust tests do not cover.

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	children["review-recv-lock"] = childReviewRecvLock
	children["review-send-lock"] = childReviewSendLock
	children["review-send-hold"] = childReviewSendHold
}

// A read lock over this process's presence range (what another process's
// watcher holds for a moment after this process's last mapping of the file
// closed, or what any peer may hold) must not make a new mapping go without
// a presence lock: peers would then take this live process for dead.
func TestReviewPresenceBlockedByReadLock(t *testing.T) {
	name := testName(t)
	s, err := Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // no mapping of the file left in this process
	// Another open file description read-locks our range, as a watcher
	// that was just granted its lock does.
	fd, err := unix.Open("/dev/shm/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	lk := presenceRange(selfToken(), unix.F_RDLCK)
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	// The reader lets go shortly, as a watcher closes its descriptor.
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Close(fd)
	}()
	s2, err := Open(name)
	if err != nil {
		// Failing is acceptable; mapping without presence is not.
		t.Logf("Open with our range read-locked: %v", err)
		return
	}
	defer s2.Close()
	q, err := unix.Open("/dev/shm/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(q)
	time.Sleep(50 * time.Millisecond) // the reader is gone
	if s2.presence < 0 || !fdPeerAlive(q, selfToken()) {
		t.Fatalf("Open succeeded without a presence lock (offset %d): peers see this live process as dead", s2.presence)
	}
}

// A segment received with SCM_RIGHTS shares the sender's open file
// description unless the receiver opens its own. The receiver's presence
// lock then lives in the sender's description and outlives the receiver:
// a receiver killed while holding a Mutex is never taken over.
func TestReviewReceivedSegmentOwnerKilled(t *testing.T) {
	s, err := CreateAnonymous(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := View[trustHeader](s, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, sock := socketPair(t, unix.SOCK_STREAM)
	cmd := childCmd(t, "review-recv-lock")
	startWithSocket(t, cmd, sock)
	if err := SendSegment(c, s); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, h, 1, cmd)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = h.mu.LockContext(ctx)
	if err == nil || errors.Is(err, ErrOwnerDead) {
		h.mu.Unlock()
	}
	if !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("LockContext after SIGKILL of a receiver that held the lock = %v, want ErrOwnerDead", err)
	}
}

func childReviewRecvLock(args []string) int {
	c, err := childConn()
	if err != nil {
		return childFail("conn: %v", err)
	}
	s, err := ReceiveSegment(c, nil)
	if err != nil {
		return childFail("ReceiveSegment: %v", err)
	}
	h, err := View[trustHeader](s, 0)
	if err != nil {
		return childFail("%v", err)
	}
	h.mu.Lock()
	h.phase.Store(1)
	Wake(&h.phase, 1<<30)
	time.Sleep(time.Hour)
	return 0
}

// The other direction: the sender locks, sends, and is killed while the
// receiver (this process) keeps the segment.
func TestReviewSenderKilledAfterSend(t *testing.T) {
	c, sock := socketPair(t, unix.SOCK_STREAM)
	cmd := childCmd(t, "review-send-lock")
	startWithSocket(t, cmd, sock)
	s, err := ReceiveSegment(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := View[trustHeader](s, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, h, 1, cmd)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = h.mu.LockContext(ctx)
	if err == nil || errors.Is(err, ErrOwnerDead) {
		h.mu.Unlock()
	}
	if !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("LockContext after SIGKILL of the sender that held the lock = %v, want ErrOwnerDead", err)
	}
}

func childReviewSendLock(args []string) int {
	c, err := childConn()
	if err != nil {
		return childFail("conn: %v", err)
	}
	s, err := CreateAnonymous(4096)
	if err != nil {
		return childFail("%v", err)
	}
	h, err := View[trustHeader](s, 0)
	if err != nil {
		return childFail("%v", err)
	}
	h.mu.Lock()
	if err := SendSegment(c, s); err != nil {
		return childFail("SendSegment: %v", err)
	}
	h.phase.Store(1)
	Wake(&h.phase, 1<<30)
	time.Sleep(time.Hour)
	return 0
}

func countDir(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A process that opens a segment, waits a little for a Mutex a live peer
// holds, and closes the segment again, leaves a watcher (one OS thread, one
// descriptor) behind for each Segment, for as long as the peer lives.
func TestReviewWatcherLeakPerSegment(t *testing.T) {
	name, h := newSegmentView[trustHeader](t, 4096)
	holder := startTrustHolder(t, name, h, false)
	_ = holder
	const rounds = 30
	try := func() {
		s, err := Open(name)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := View[trustHeader](s, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		v.mu.LockContext(ctx)
		cancel()
		s.Close()
	}
	try() // warm up the runtime's threads
	time.Sleep(50 * time.Millisecond)
	fds0, thr0 := countDir(t, "/proc/self/fd"), countDir(t, "/proc/self/task")
	for range rounds {
		try()
	}
	time.Sleep(100 * time.Millisecond)
	fds1, thr1 := countDir(t, "/proc/self/fd"), countDir(t, "/proc/self/task")
	t.Logf("after %d Open/LockContext/Close rounds: descriptors %d -> %d, threads %d -> %d", rounds, fds0, fds1, thr0, thr1)
	if fds1-fds0 > 2 || thr1-thr0 > 4 {
		t.Errorf("descriptors grew by %d and threads by %d over %d rounds against one live peer", fds1-fds0, thr1-thr0, rounds)
	}
}

// A receiver that shares the sender's open file description asks about the
// sender through that description, and F_OFD_GETLK does not report locks
// that the asking description itself holds: the live sender looks dead and
// its lock is taken over.
func TestReviewReceiverSeesLiveSender(t *testing.T) {
	c, sock := socketPair(t, unix.SOCK_STREAM)
	cmd := childCmd(t, "review-send-hold")
	startWithSocket(t, cmd, sock)
	s, err := ReceiveSegment(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := View[trustHeader](s, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, h, 1, cmd)
	if !s.PeerAlive(h.tok.Load()) {
		t.Errorf("PeerAlive(live sender) = false")
	}
	checkNoTakeover(t, h, 300*time.Millisecond, "the live sender")
}

// childReviewSendHold locks, sends and lives on, holding the lock.
func childReviewSendHold(args []string) int {
	c, err := childConn()
	if err != nil {
		return childFail("conn: %v", err)
	}
	s, err := CreateAnonymous(4096)
	if err != nil {
		return childFail("%v", err)
	}
	h, err := View[trustHeader](s, 0)
	if err != nil {
		return childFail("%v", err)
	}
	h.mu.Lock()
	h.tok.Store(ProcessToken())
	if err := SendSegment(c, s); err != nil {
		return childFail("SendSegment: %v", err)
	}
	h.phase.Store(1)
	Wake(&h.phase, 1<<30)
	time.Sleep(time.Hour)
	return 0
}

// A third mapping (here a second Open in this process, its own open file
// description) sees a receiver that was killed holding the lock as alive
// for as long as the sender keeps the description the receiver shared.
func TestReviewThirdPartySeesDeadReceiver(t *testing.T) {
	name := testName(t)
	s, err := Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sh, _ := View[trustHeader](s, 0)
	c, sock := socketPair(t, unix.SOCK_STREAM)
	cmd := childCmd(t, "review-recv-lock")
	startWithSocket(t, cmd, sock)
	if err := SendSegment(c, s); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, sh, 1, cmd)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	s2, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	h, _ := View[trustHeader](s2, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = h.mu.LockContext(ctx)
	if err == nil || errors.Is(err, ErrOwnerDead) {
		h.mu.Unlock()
	}
	if !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("LockContext through another description after SIGKILL of a receiver that held the lock = %v, want ErrOwnerDead", err)
	}
}
