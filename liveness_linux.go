package shm

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Presence locks (Linux). A process's token is a random 46-bit number
// whose low 30 bits are not zero. Every writable mapping of a segment takes
// an open file description (OFD) write lock, fcntl(2) F_OFD_SETLK, on one
// byte of the segment's own file at
//
//	presenceBase + tok<<16 + n,	n in [0, 2^16)
//
// far past the end of any segment (record locks may lie beyond the end of
// a file). n tells apart the mappings of one process: OFD locks of two
// open file descriptions conflict even within one process, so each mapping
// takes its own byte. A peer is present while any byte of its 2^16-byte
// range is write-locked: F_OFD_GETLK with F_RDLCK over the range answers
// F_UNLCK only when none is. F_OFD_SETLKW with F_RDLCK over the range
// blocks until none is, which is how AfterPeer hears of a death.
//
// The kernel drops OFD locks when the last descriptor of the open file
// description is closed (fs/locks.c locks_remove_file), that is when the
// Segment is closed or the whole process (every thread sharing its
// descriptor table) is gone. That is independent of PID namespaces and of
// which thread exits first, unlike /proc/PID (see PLATFORMS.md). OFD locks
// are in Linux since 3.15; where they are refused (EINVAL) a mapping takes
// no lock, and queries answer "unknown", which counts as alive.
const (
	presenceBase  = 1 << 62
	presenceShift = 16
	tokenBits     = 46
)

var selfTokenValue = sync.OnceValue(func() uint64 {
	for {
		t := rand.Uint64() & (1<<tokenBits - 1)
		if t&mutexPidMask != 0 {
			return t
		}
	}
})

func selfToken() uint64 { return selfTokenValue() }

// presenceSeq hands out the per-mapping byte n.
var presenceSeq atomic.Uint32

// takePresence locks a byte of this process's range in fd's file and
// returns its offset, or -1 when no lock was taken because OFD locks are
// refused here (EINVAL: then peers cannot ask either, and count us alive).
// A byte that is locked already is skipped for the next one; when every
// byte tried is locked, it waits a little and tries again, and after about
// a second it fails with EAGAIN. It never maps without presence because of
// a conflict: the conflicting lock may be a read lock over the whole range
// (a peer's watcher, granted for a moment after this process's last
// mapping of the file closed, or anyone's), which a peer's F_OFD_GETLK
// does not report, so this process would look dead. Any other failure
// (ENOLCK) is an error too: mapping without presence would let peers take
// this process for dead. Only writable descriptors can hold a write lock;
// read-only mappings never name this process in shared words.
func takePresence(fd int) (int64, error) {
	tok := selfToken()
	pause := 100 * time.Microsecond
	for deadline := time.Now().Add(time.Second); ; {
		for range 64 {
			n := uint64(presenceSeq.Add(1)-1) & (1<<presenceShift - 1)
			off := int64(presenceBase + tok<<presenceShift + n)
			lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
			err := ignoringEINTR(func() error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk) })
			switch err {
			case nil:
				return off, nil
			case unix.EAGAIN, unix.EACCES:
				continue
			case unix.EINVAL:
				return -1, nil
			default:
				return -1, err
			}
		}
		if time.Now().After(deadline) {
			return -1, unix.EAGAIN
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// dropPresence releases the lock takePresence took. Closing the descriptor
// would, too, but only once every duplicate of it is closed.
func dropPresence(fd int, off int64) {
	if off < 0 {
		return
	}
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: off, Len: 1}
	ignoringEINTR(func() error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk) })
}

// validToken reports whether tok is a token some process could have.
func validToken(tok uint64) bool { return tok>>tokenBits == 0 && tok&mutexPidMask != 0 }

func presenceRange(tok uint64, typ int16) unix.Flock_t {
	return unix.Flock_t{Type: typ, Whence: 0, Start: int64(presenceBase + tok<<presenceShift), Len: 1 << presenceShift}
}

func peerAlive(s *Segment, tok uint64) bool {
	if !validToken(tok) {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return true // cannot tell
	}
	return fdPeerAlive(s.fd, tok)
}

func fdPeerAlive(fd int, tok uint64) bool {
	lk := presenceRange(tok, unix.F_RDLCK)
	if err := ignoringEINTR(func() error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk) }); err != nil {
		return true // cannot tell
	}
	return lk.Type != unix.F_UNLCK
}

// A watcher waits, on a thread of its own, for one peer to let go of one
// segment, and then runs the functions registered with AfterPeer. It
// blocks in F_OFD_SETLKW for a read lock over the peer's range, on a
// descriptor of its own (a fresh open file description of the same file,
// so that nothing this process locks through the Segment's descriptor can
// outlive Close in it). The blocked call cannot be interrupted (Go's signal
// handlers restart it), so a watcher nobody needs any longer stays until the
// peer goes; it then closes its descriptor. It never touches the mapping.
type watcher struct {
	seg   *Segment
	tok   uint64
	mu    sync.Mutex
	fns   map[uint64]func()
	next  uint64
	fired bool
}

func afterPeer(s *Segment, tok uint64, f func()) func() bool {
	s.watchMu.Lock()
	w := s.watchers[tok]
	if w == nil {
		w = &watcher{seg: s, tok: tok, fns: make(map[uint64]func())}
		if s.watchers == nil {
			s.watchers = make(map[uint64]*watcher)
		}
		s.watchers[tok] = w
		go w.run()
	}
	w.mu.Lock()
	id := w.next
	w.next++
	if w.fired {
		// Cannot happen: a fired watcher leaves the map first. Still,
		// run f rather than lose it.
		w.mu.Unlock()
		s.watchMu.Unlock()
		go f()
		return func() bool { return false }
	}
	w.fns[id] = f
	w.mu.Unlock()
	s.watchMu.Unlock()
	return func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.fns[id]; !ok {
			return false
		}
		delete(w.fns, id)
		return true
	}
}

func (w *watcher) run() {
	gone := w.wait()
	s := w.seg
	s.watchMu.Lock()
	if s.watchers[w.tok] == w {
		delete(s.watchers, w.tok)
	}
	w.mu.Lock()
	w.fired = true
	fns := w.fns
	w.fns = nil
	w.mu.Unlock()
	s.watchMu.Unlock()
	if !gone {
		return // the Segment was closed, or nobody listens: nothing to tell
	}
	for _, f := range fns {
		f()
	}
}

// wait returns true once the peer is gone, or at once for a token no
// process can have; false when it gave up (see below).
func (w *watcher) wait() bool {
	if !validToken(w.tok) {
		return true
	}
	fd := w.reopen()
	if fd >= 0 {
		lk := presenceRange(w.tok, unix.F_RDLCK)
		err := ignoringEINTR(func() error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLKW, &lk) })
		unix.Close(fd) // drops the read lock with the open file description
		if err == nil {
			return true
		}
	}
	// No descriptor of our own, or the kernel refused to wait: ask once a
	// second, for as long as the Segment is open and someone listens.
	for {
		time.Sleep(time.Second)
		if w.seg.Fd() < 0 {
			return false
		}
		if !w.seg.PeerAlive(w.tok) {
			return true
		}
		w.mu.Lock()
		idle := len(w.fns) == 0
		w.mu.Unlock()
		if idle {
			return false
		}
	}
}

// reopen opens the Segment's file afresh, read-only, through
// /proc/self/fd, which gives a new open file description; -1 if it cannot.
func (w *watcher) reopen() int {
	s := w.seg
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return -1
	}
	fd, err := reopenFd(s.fd, unix.O_RDONLY)
	if err != nil {
		return -1
	}
	return fd
}

// ownDescription returns a descriptor of a fresh open file description of
// the file behind fd, a received descriptor, closing fd; or fd itself when
// it cannot open one. A received descriptor shares the sender's open file
// description, and with it the OFD locks: the receiver's presence lock
// would outlive the receiver for as long as the sender keeps the segment,
// and F_OFD_GETLK through the shared description does not report the
// sender's own lock, so the live sender would look dead to the receiver.
func ownDescription(fd int, readOnly bool) int {
	acc := unix.O_RDWR
	if readOnly {
		acc = unix.O_RDONLY
	}
	nfd, err := reopenFd(fd, acc)
	if err != nil {
		return fd
	}
	// reopenFd sets O_NONBLOCK, which a shared memory file ignores.
	unix.Close(fd)
	return nfd
}

// reopenFd opens the file behind fd again, as a new open file description
// with access mode acc, through /proc/self/fd (proc(5): opening the link
// opens the file itself, a memfd included).
func reopenFd(fd int, acc int) (int, error) {
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	var nfd int
	err := ignoringEINTR(func() error {
		var err error
		nfd, err = unix.Open(path, acc|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		return err
	})
	return nfd, err
}
