package shm

import (
	"context"
	"sync/atomic"
	"time"
)

// Peer liveness.
//
// Shared words that name a process (the owner of a [Mutex], the ends of a
// ring) hold its token, from [ProcessToken], rather than its PID: a PID
// means nothing in another PID namespace, and a PID whose thread-group
// leader has exited looks dead in /proc while the process runs on.
//
// On Linux a token is a random number, and the proof that its process is
// alive is a lock the kernel keeps for it: every writable mapping of a
// segment holds an open file description (OFD) write lock on a byte range,
// past the end of the segment's file, derived from the token (fcntl(2)
// F_OFD_SETLK; see the wire specification). The kernel releases the lock
// when the process's last descriptor for that open file description is
// closed: when it closes the Segment, or when the whole process is gone,
// whatever its PID namespace and whichever of its threads exited first. A
// peer asks with F_OFD_GETLK, and waits for a death with F_OFD_SETLKW.
//
// Elsewhere (macOS, FreeBSD) the token packs the PID and a fold of the
// process start time, and liveness is [ProcessStart], which is valid only
// within one PID namespace (FreeBSD jail).

// ProcessToken returns this process's token: the identity it records in
// shared words, nonzero, at most 62 bits wide, with its low 30 bits
// nonzero so that it fits a futex word beside two flag bits. It is the same
// for the life of the process.
func ProcessToken() uint64 { return selfToken() }

// PeerAlive reports whether the process whose token is tok still maps s
// (writable). It reports true when it cannot tell: the platform has no way
// to know, or the kernel refused the question. Only a definite answer of
// absence gives false, so a live process is never reported dead. tok 0 and
// tokens no process can have give false. This process's own token gives
// true while s is open.
func (s *Segment) PeerAlive(tok uint64) bool {
	if tok == 0 {
		return false
	}
	if tok == selfToken() {
		return s.Fd() >= 0
	}
	return peerAlive(s, tok)
}

// AfterPeer arranges to call f, in its own goroutine, once the process
// whose token is tok no longer maps s: it died or closed the segment. It
// returns a stop function that, as for [context.AfterFunc], reports whether
// it stopped f from being run (false once f has started, or stop was called
// before). Calling stop does not wait for a running f.
//
// On Linux the notice comes from the kernel (a blocked F_OFD_SETLKW on a
// helper thread), within about a millisecond of the death. One helper
// serves every Segment of a file and every caller watching the same peer;
// it holds a thread and a descriptor of its own, and since the kernel call
// cannot be interrupted, a helper nobody needs any longer stays until its
// peer lets go of the file. At most 64 helpers block at once in a process;
// beyond that, and elsewhere (macOS, FreeBSD), the peer is checked once a
// second.
func (s *Segment) AfterPeer(tok uint64, f func()) (stop func() bool) {
	return afterPeer(s, tok, f)
}

// WaitContext is [Wait] that also gives up, with ctx.Err(), when ctx is
// done: within about a millisecond of it, however the cancellation and the
// sleep interleave. It never writes to *addr; after it returns, nothing it
// started touches the word again.
func WaitContext(ctx context.Context, addr *atomic.Uint32, val uint32, timeout time.Duration) error {
	return waitContext(ctx, wordAddr(addr), val, timeout)
}
