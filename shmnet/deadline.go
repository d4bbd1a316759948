package shmnet

import (
	"context"
	"sync"
	"time"
)

// A deadline is the deadline of one direction of a Conn, as a context that
// blocking ring calls wait with. The context is a child of the
// connection's context, which is cancelled when the peer goes, so that
// one wait observes both without a goroutine per call.
//
// The context is cancelled when the deadline passes, and replaced by a new
// one when a later deadline (or none) is set; a Read or Write that was
// waiting with the old one sees expired false and waits again.
type deadline struct {
	parent context.Context

	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	timer   *time.Timer
	gen     uint64 // counts set calls; an old timer does nothing
	expired bool
}

func newDeadline(parent context.Context) *deadline {
	d := &deadline{parent: parent}
	d.ctx, d.cancel = context.WithCancel(parent)
	return d
}

// set sets the deadline to t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.expired {
		// The old context is cancelled: start a new one.
		d.expired = false
		d.ctx, d.cancel = context.WithCancel(d.parent)
	}
	if t.IsZero() {
		return
	}
	left := time.Until(t)
	if left <= 0 {
		d.expired = true
		d.cancel()
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(left, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !d.expired {
			d.expired = true
			d.cancel()
		}
	})
}

// context returns the context a blocking call waits with, and whether the
// deadline has passed already.
func (d *deadline) context() (context.Context, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ctx, d.expired
}

// stop releases the timer and the context.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.cancel()
}
