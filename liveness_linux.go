package shm

import (
	"fmt"
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

// A watcher waits for one peer to let go of one file, and then runs the
// functions registered with AfterPeer. Watchers are shared by the whole
// process, keyed by the file (device and inode) and the token, so that
// every Segment of that file and every waiter share one.
//
// A watcher blocks in F_OFD_SETLKW for a read lock over the peer's range,
// on a descriptor of its own: a fresh open file description of the file,
// opened when the watcher is made, so that it needs no Segment afterwards
// and so that nothing this process locks through a Segment's descriptor
// can outlive that Segment's Close. The blocked call cannot be interrupted
// (Go's signal handlers restart it), so a watcher nobody needs any longer
// stays until the peer goes, holding a thread and its descriptor; there
// are at most maxBlocking of them. Beyond that, and where no descriptor of
// its own can be had, a watcher asks once a second and ends when nobody
// listens. A watcher never touches a mapping.
type watcher struct {
	key   watchKey
	fd    int      // its own descriptor, -1 for none
	seg   *Segment // asked instead when fd is -1
	block bool     // waits in F_OFD_SETLKW, else polls
	mu    sync.Mutex
	fns   map[uint64]func()
	next  uint64
	fired bool
}

type watchKey struct{ dev, ino, tok uint64 }

// maxBlocking bounds the threads that watchers hold in F_OFD_SETLKW.
const maxBlocking = 64

var watchers struct {
	sync.Mutex
	m        map[watchKey]*watcher
	blocking int
}

func afterPeer(s *Segment, tok uint64, f func()) func() bool {
	if !validToken(tok) {
		go f()
		return func() bool { return false }
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.data == nil {
		return func() bool { return true } // closed: nothing will be told
	}
	var st unix.Stat_t
	if err := unix.Fstat(s.fd, &st); err != nil {
		return func() bool { return true }
	}
	key := watchKey{uint64(st.Dev), st.Ino, tok}
	watchers.Lock()
	defer watchers.Unlock()
	w := watchers.m[key]
	if w == nil {
		w = &watcher{key: key, fd: -1, fns: make(map[uint64]func())}
		if fd, err := reopenFd(s.fd, unix.O_RDONLY); err == nil {
			w.fd = fd
		} else {
			w.seg = s
		}
		if w.fd >= 0 && watchers.blocking < maxBlocking {
			w.block = true
			watchers.blocking++
		}
		if watchers.m == nil {
			watchers.m = make(map[watchKey]*watcher)
		}
		watchers.m[key] = w
		go w.run()
	}
	w.mu.Lock()
	id := w.next
	w.next++
	w.fns[id] = f
	w.mu.Unlock()
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
	var gone bool
	if w.block {
		lk := presenceRange(w.key.tok, unix.F_RDLCK)
		err := ignoringEINTR(func() error { return unix.FcntlFlock(uintptr(w.fd), unix.F_OFD_SETLKW, &lk) })
		gone = err == nil
		if !gone {
			gone = w.poll()
		}
	} else {
		gone = w.poll()
	}
	watchers.Lock()
	if watchers.m[w.key] == w {
		delete(watchers.m, w.key)
	}
	if w.block {
		watchers.blocking--
	}
	w.mu.Lock()
	w.fired = true
	fns := w.fns
	w.fns = nil
	w.mu.Unlock()
	watchers.Unlock()
	if w.fd >= 0 {
		unix.Close(w.fd) // drops a granted read lock with its description
	}
	if !gone {
		return // nobody listens, or the Segment asked was closed
	}
	for _, f := range fns {
		f()
	}
}

// poll asks once a second whether the peer is gone (true), for as long as
// someone listens; false when nobody does, or the Segment it asks through
// closed. It decides "nobody listens" under the registry's lock, so that
// a function registered meanwhile is not dropped.
func (w *watcher) poll() bool {
	for {
		time.Sleep(time.Second)
		if w.fd >= 0 {
			if !fdPeerAlive(w.fd, w.key.tok) {
				return true
			}
		} else {
			if w.seg.Fd() < 0 {
				return false
			}
			if !w.seg.PeerAlive(w.key.tok) {
				return true
			}
		}
		watchers.Lock()
		w.mu.Lock()
		idle := len(w.fns) == 0
		if idle && watchers.m[w.key] == w {
			delete(watchers.m, w.key) // no newcomer can join now
		}
		w.mu.Unlock()
		watchers.Unlock()
		if idle {
			return false
		}
	}
}

// ownDescription returns a descriptor of a fresh open file description
// of the file behind fd, a received descriptor, closing fd. A received
// descriptor shares the sender's open file description, and with it the
// OFD locks: the receiver's presence lock would outlive the receiver for as
// long as the sender keeps the segment, and F_OFD_GETLK through the shared
// description does not report the sender's own lock, so the live sender
// would look dead to the receiver. When no fresh description can be had
// (no /proc) it fails, closing fd, rather than judge peers wrongly
// (SPEC.md PASS-5).
func ownDescription(fd int, readOnly bool) (int, error) {
	acc := unix.O_RDWR
	if readOnly {
		acc = unix.O_RDONLY
	}
	nfd, err := reopenFd(fd, acc)
	unix.Close(fd)
	if err != nil {
		return -1, fmt.Errorf("shm: receive segment: opening an open file description of its own through /proc/self/fd (needed for liveness): %w", err)
	}
	// reopenFd sets O_NONBLOCK, which a shared memory file ignores.
	return nfd, nil
}

// sendDescription returns a descriptor, of a fresh open file description
// of the file behind fd, for SendSegment to send. A duplicate would carry
// this process's open file description, and with it its presence lock,
// into the receiver: this process would look alive for as long as the
// receiver keeps it, and a receiver asking through it would not see this
// process's lock at all.
func sendDescription(fd int, readOnly bool) (int, error) {
	acc := unix.O_RDWR
	if readOnly {
		acc = unix.O_RDONLY
	}
	return reopenFd(fd, acc)
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
