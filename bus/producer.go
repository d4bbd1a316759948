package bus

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"runtime"
	"runtime/debug"
	"time"
	"unsafe"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/seqcopy"
)

// A Producer is the one writing end of a bus.
type Producer struct {
	b       *bus
	tail    uint64 // next message number, private
	limit   uint64 // lossless: messages below limit may be written
	claimed int    // -1, or the length of the claimed message
	closed  bool
}

// Create makes a bus of geometry c in seg (which must be at least
// [Size](c) bytes) and returns its producer. It writes the whole layout,
// the magic word last. Whatever was in the segment is overwritten.
func Create(seg *shm.Segment, c Config) (*Producer, error) {
	c, err := c.normal()
	if err != nil {
		return nil, &fs.PathError{Op: "bus.Create", Path: seg.Name(), Err: err}
	}
	b, err := mapBus(seg, c)
	if err != nil {
		return nil, err
	}
	err = guard(func() {
		raw := unsafe.Slice((*byte)(unsafe.Pointer(b.h)), HeaderSize)
		b.h.magic.Store(0)
		clear(raw[4:])
		b.h.version.Store(Version)
		b.h.slots.Store(uint32(c.Slots))
		b.h.slotSize.Store(uint32(c.SlotSize))
		b.h.subscribers.Store(uint32(c.Subscribers))
		var f uint32
		if c.Lossless {
			f |= flagLossless
		}
		b.h.flags.Store(f)
		for i := range b.entries {
			b.entries[i].token.Store(0)
			b.entries[i].cursor.Store(math.MaxUint64)
		}
		for n := uint64(0); n < b.slots; n++ {
			s := b.slot(n)
			s.seq.Store(0)
			seqcopy.StoreWord(unsafe.Pointer(&s.length), 0)
		}
		b.h.producer.Store(b.tok)
		b.h.magic.Store(Magic)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "bus.Create", Path: seg.Name(), Err: err}
	}
	return &Producer{b: b, claimed: -1, limit: b.slots}, nil
}

// MaxMessage returns the largest message the bus carries.
func (p *Producer) MaxMessage() int { return p.b.slotSize }

// Send publishes a copy of msg. On a lossless bus it waits while the
// slowest live subscriber has not read the message msg's slot holds.
func (p *Producer) Send(msg []byte) error { return p.send(context.Background(), msg, true) }

// TrySend is Send that returns an error matching [ErrFull] instead of
// waiting.
func (p *Producer) TrySend(msg []byte) error { return p.send(context.Background(), msg, false) }

// SendContext is Send that gives up when ctx ends, with a [*StalledError]
// naming the subscriber it waited for.
func (p *Producer) SendContext(ctx context.Context, msg []byte) error {
	return p.send(ctx, msg, true)
}

func (p *Producer) send(ctx context.Context, msg []byte, block bool) (err error) {
	if err := p.check(len(msg)); err != nil {
		return err
	}
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err)
	if err := p.room(ctx, block); err != nil {
		return err
	}
	b := p.b
	n := p.tail
	s := b.slot(n)
	s.seq.Store(2*n + 1)                                           // P1
	seqcopy.Store(b.payload(s), msg)                               // P2
	seqcopy.StoreWord(unsafe.Pointer(&s.length), uint64(len(msg))) // P3
	p.publish(s, n)
	return nil
}

// Claim reserves the next slot and returns n bytes of it to write the
// message into, in place; Commit publishes it. The slice is valid until
// Commit.
func (p *Producer) Claim(n int) ([]byte, error) { return p.claim(context.Background(), n, true) }

// TryClaim is Claim that returns an error matching [ErrFull] instead of
// waiting.
func (p *Producer) TryClaim(n int) ([]byte, error) { return p.claim(context.Background(), n, false) }

// ClaimContext is Claim that gives up when ctx ends.
func (p *Producer) ClaimContext(ctx context.Context, n int) ([]byte, error) {
	return p.claim(ctx, n, true)
}

func (p *Producer) claim(ctx context.Context, size int, block bool) (buf []byte, err error) {
	if err := p.check(size); err != nil {
		return nil, err
	}
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err)
	if err := p.room(ctx, block); err != nil {
		return nil, err
	}
	n := p.tail
	s := p.b.slot(n)
	s.seq.Store(2*n + 1)
	p.claimed = size
	return unsafe.Slice((*byte)(p.b.payload(s)), size), nil
}

// Commit publishes the message reserved by Claim.
func (p *Producer) Commit() (err error) {
	if p.claimed < 0 {
		return fmt.Errorf("shm: bus: Commit without Claim: %w", fs.ErrInvalid)
	}
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err)
	n := p.tail
	s := p.b.slot(n)
	seqcopy.StoreWord(unsafe.Pointer(&s.length), uint64(p.claimed))
	p.claimed = -1
	p.publish(s, n)
	return nil
}

func (p *Producer) check(size int) error {
	switch {
	case p.closed:
		return fmt.Errorf("shm: bus: producer: %w", fs.ErrClosed)
	case p.claimed >= 0:
		return fmt.Errorf("shm: bus: a claimed message is not committed: %w", fs.ErrInvalid)
	case size < 0 || size > p.b.slotSize:
		return fmt.Errorf("%w: %d bytes, the bus carries at most %d", ErrTooLarge, size, p.b.slotSize)
	}
	return nil
}

// publish completes message n in slot s.
func (p *Producer) publish(s *slot, n uint64) {
	h := p.b.h
	s.seq.Store(2*n + 2) // P4
	h.tail.Store(n + 1)  // P5
	p.tail = n + 1
	// P6: wake sleepers once per sleep: the flag is cleared here, so the
	// messages sent while they get up make no system call.
	if h.subSleep.Load() != 0 && h.subSleep.Swap(0) != 0 {
		h.subWake.Add(1)
		shm.Wake(&h.subWake, math.MaxInt32)
	}
}

// room makes sure message p.tail may be written: always on a lossy bus; on
// a lossless one once every live subscriber's cursor is above
// p.tail - slots.
func (p *Producer) room(ctx context.Context, block bool) error {
	b := p.b
	if !b.lossless || p.tail < p.limit {
		return nil
	}
	p.scan()
	if p.tail < p.limit {
		return nil
	}
	if !block {
		return fmt.Errorf("%w: the slowest subscriber has not read message %d", ErrFull, p.tail-b.slots)
	}
	h := b.h
	for i := 0; ; i++ {
		if i < 50 {
			runtime.Gosched()
		} else {
			h.prodSleep.Store(1) // L1
			w := h.prodWake.Load()
			p.scan() // L2
			if p.tail >= p.limit {
				shm.WaitContext(ctx, &h.prodWake, w, 10*time.Millisecond)
			}
			h.prodSleep.Store(0)
			p.evictDead()
		}
		p.scan()
		if p.tail < p.limit {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return p.stalled(err)
		}
	}
}

// cursorOf returns entry e's cursor clamped to [0, tail]: ^0 (none) and
// hostile values beyond the tail hold nothing back.
func (p *Producer) cursorOf(e *entry) (tok, cur uint64, ok bool) {
	tok = e.token.Load()
	if tok == 0 {
		return 0, 0, false
	}
	cur = e.cursor.Load()
	if cur > p.tail {
		cur = p.tail
	}
	return tok, cur, true
}

// scan recomputes p.limit from the subscribers' cursors.
func (p *Producer) scan() {
	b := p.b
	min := p.tail
	for i := range b.entries {
		if _, cur, ok := p.cursorOf(&b.entries[i]); ok && cur < min {
			min = cur
		}
	}
	p.limit = min + b.slots
}

// evictDead frees the entries, among those holding the producer back,
// whose process no longer maps the segment.
func (p *Producer) evictDead() {
	b := p.b
	for i := range b.entries {
		e := &b.entries[i]
		tok, cur, ok := p.cursorOf(e)
		if !ok || cur+b.slots > p.tail {
			continue
		}
		if !b.seg.PeerAlive(tok) {
			if e.token.CompareAndSwap(tok, 0) { // E1
				e.cursor.Store(math.MaxUint64) // E2
			}
		}
	}
}

func (p *Producer) stalled(err error) error {
	b := p.b
	se := &StalledError{Entry: -1, Err: err}
	for i := range b.entries {
		tok, cur, ok := p.cursorOf(&b.entries[i])
		if ok && (se.Entry < 0 || cur < se.Cursor) {
			se.Entry, se.Token, se.Cursor = i, tok, cur
		}
	}
	se.Behind = p.tail - se.Cursor
	return se
}

// Close marks the bus closed: subscribers get io.EOF once they have read
// every message. It does not close the segment. A second Close returns an
// error matching fs.ErrClosed.
func (p *Producer) Close() (err error) {
	if p.closed {
		return fmt.Errorf("shm: bus: producer: %w", fs.ErrClosed)
	}
	p.closed = true
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err)
	h := p.b.h
	h.closed.Store(1) // C1
	h.subWake.Add(1)
	shm.Wake(&h.subWake, math.MaxInt32)
	return nil
}
