//go:build !linux

package shm

import (
	"errors"
	"os"
	"sync"
	"time"
)

// Without OFD locks, a token packs the PID (low 30 bits) and a fold of the
// process start time (the 32 bits above), and a peer is alive unless
// ProcessStart says that PID is gone or belongs to a later process. This
// is valid only within one PID namespace.

var selfTokenOnce = sync.OnceValue(func() uint64 {
	pid := os.Getpid()
	var fold uint32
	if start, err := processStart(pid); err == nil {
		fold = foldStart(start)
	}
	return uint64(fold)<<30 | uint64(pid)&mutexPidMask
})

func selfToken() uint64 { return selfTokenOnce() }

// tokenAlive reports whether the process of token tok may be alive.
func tokenAlive(tok uint64) bool {
	pid := int(tok & mutexPidMask)
	fold := uint32(tok >> 30)
	if pid == 0 || tok>>62 != 0 {
		return false
	}
	start, err := processStart(pid)
	if errors.Is(err, os.ErrProcessDone) {
		return false
	}
	if err != nil {
		return true
	}
	return fold == 0 || start == 0 || foldStart(start) == fold
}

func peerAlive(s *Segment, tok uint64) bool { return tokenAlive(tok) }

// afterPeer polls the peer once a second.
func afterPeer(s *Segment, tok uint64, f func()) func() bool {
	done := make(chan struct{})
	var once sync.Once
	var fired sync.Once
	started := false
	var mu sync.Mutex
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if !s.PeerAlive(tok) {
				mu.Lock()
				select {
				case <-done:
					mu.Unlock()
					return
				default:
				}
				started = true
				mu.Unlock()
				fired.Do(f)
				return
			}
		}
	}()
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		stopped := false
		once.Do(func() {
			close(done)
			stopped = !started
		})
		return stopped
	}
}

func takePresence(fd int) (int64, error) { return -1, nil }

func dropPresence(fd int, off int64) {}

// ownDescription: without OFD locks a shared description does no harm.
func ownDescription(fd int, readOnly bool) (int, error) { return fd, nil }

// sendDescription: SendSegment sends a duplicate here.
func sendDescription(fd int, readOnly bool) (int, error) { return -1, errors.ErrUnsupported }
