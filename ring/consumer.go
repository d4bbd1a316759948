package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// A Consumer is the receiving end of a ring. It is meant for one goroutine.
type Consumer struct {
	r          *Ring
	head       uint64 // our position; the shared Head mirrors it
	tailCache  uint64 // last tail seen (single producer)
	pending    uint64 // aligned size of the message Read returned, 0 if none
	deathsSeen uint32
	closed     bool
}

// Consumer attaches this process as the ring's consumer. A ring has one
// consumer at a time: if a live process holds the end the error matches
// [ErrBusy]; a consumer that died without closing is replaced, and the new
// one continues where it stopped (a message it had read but not released is
// delivered again).
func (r *Ring) Consumer() (*Consumer, error) {
	h := r.h
	me := uint64(os.Getpid())
	for {
		pid := h.ConsumerPid.Load()
		if pid == 0 {
			if h.ConsumerPid.CompareAndSwap(0, me) {
				break
			}
			continue
		}
		start := h.ConsumerStart.Load()
		if h.ConsumerPid.Load() != pid {
			continue
		}
		if r.alive(pid, start) {
			return nil, fmt.Errorf("shm: ring %s: consumer: %w (pid %d)", r.Name(), ErrBusy, pid)
		}
		// A dead consumer: free the end, start token first (see reap),
		// then take it as a free one.
		if h.ConsumerStart.CompareAndSwap(start, 0) {
			h.ConsumerPid.CompareAndSwap(pid, 0)
		}
	}
	if testHook != nil {
		testHook("consumer attached")
	}
	h.ConsumerStart.Store(r.start)
	h.ConsumerState.Store(consumerAttached)
	c := &Consumer{r: r, deathsSeen: h.Deaths.Load()}
	head, tail := h.Head.Load(), h.Tail.Load()
	if head%recordAlign != 0 || tail%recordAlign != 0 || tail-head > r.cap {
		h.ConsumerStart.Store(0)
		h.ConsumerPid.Store(0)
		return nil, corruptf(r.Name(), "head %d, tail %d, capacity %d", head, tail, r.cap)
	}
	c.head, c.tailCache = head, head
	r.addEnd(c)
	r.wakeProducers() // a producer may wait for a consumer's state to change
	return c, nil
}

// Receive copies the next message into buf and returns its length, blocking
// while the ring is empty. If buf is too short the message stays in the ring
// and the error wraps io.ErrShortBuffer. Once every producer has closed and
// the ring is drained it returns io.EOF; see [ErrPeerDead] for a producer
// that died.
func (c *Consumer) Receive(buf []byte) (int, error) {
	if n, ok := c.fastReceive(buf); ok {
		return n, nil
	}
	return c.receive(context.Background(), buf, true)
}

// TryReceive is Receive without blocking: an empty ring gives [ErrEmpty].
func (c *Consumer) TryReceive(buf []byte) (int, error) {
	if n, ok := c.fastReceive(buf); ok {
		return n, nil
	}
	return c.receive(context.Background(), buf, false)
}

// ReceiveContext is Receive, giving up with ctx's error when ctx is done.
func (c *Consumer) ReceiveContext(ctx context.Context, buf []byte) (int, error) {
	return c.receive(ctx, buf, true)
}

// fastReceive copies out the next message if fastRead finds one that fits
// in buf; otherwise the caller takes the full path, which also reports a
// short buffer.
func (c *Consumer) fastReceive(buf []byte) (int, bool) {
	msg := c.fastRead()
	if msg == nil {
		return 0, false
	}
	if len(msg) > len(buf) {
		c.pending = 0 // left in the ring for receive to report
		return 0, false
	}
	n := copy(buf, msg)
	c.release()
	return n, true
}

func (c *Consumer) receive(ctx context.Context, buf []byte, block bool) (int, error) {
	msg, err := c.read(ctx, block)
	if err != nil {
		return 0, err
	}
	if len(msg) > len(buf) {
		c.pending = 0 // left in the ring for the next call
		return 0, fmt.Errorf("shm: ring: message of %d bytes, buffer of %d: %w", len(msg), len(buf), io.ErrShortBuffer)
	}
	n := copy(buf, msg)
	c.release()
	return n, nil
}

// Read returns the next message in place, blocking while the ring is empty.
// The slice aliases shared memory and is valid until [Consumer.Release],
// which must be called before the next Read or Receive. Errors are those of
// Receive.
func (c *Consumer) Read() ([]byte, error) {
	if msg := c.fastRead(); msg != nil {
		return msg, nil
	}
	return c.read(context.Background(), true)
}

// TryRead is Read without blocking: an empty ring gives [ErrEmpty].
func (c *Consumer) TryRead() ([]byte, error) {
	if msg := c.fastRead(); msg != nil {
		return msg, nil
	}
	return c.read(context.Background(), false)
}

// ReadContext is Read, giving up with ctx's error when ctx is done.
func (c *Consumer) ReadContext(ctx context.Context) ([]byte, error) { return c.read(ctx, true) }

// Release gives the space of the message returned by Read back to the
// producers.
func (c *Consumer) Release() error {
	if c.pending == 0 {
		return errors.New("shm: ring: Release without a message from Read")
	}
	c.release()
	return nil
}

func (c *Consumer) release() {
	c.advance(c.pending)
	c.pending = 0
}

// advance consumes size bytes at head. A multi-producer ring must be zero
// behind its head, so that a record header not yet written reads as 0.
func (c *Consumer) advance(size uint64) {
	r := c.r
	if r.multi {
		idx := c.head & r.mask
		clear(r.data[idx+recordHeader : idx+size])
		r.words[idx/8].Store(0)
	}
	c.head += size
	r.h.Head.Store(c.head)
	r.wakeProducers()
}

func (c *Consumer) read(ctx context.Context, block bool) ([]byte, error) {
	if c.closed {
		return nil, fmt.Errorf("shm: ring %s: consumer: %w", c.r.Name(), fs.ErrClosed)
	}
	if c.pending != 0 {
		return nil, errors.New("shm: ring: Read before Release of the previous message")
	}
	w := waitState{polling: c.r.polling}
	defer w.done()
	for {
		msg, ok, err := c.poll()
		if err != nil || ok {
			return msg, err
		}
		if err := c.whenEmpty(); err != nil {
			return nil, err
		}
		if !block {
			return nil, ErrEmpty
		}
		if err := w.pause(ctx, &c.r.h.ConsumerWaiting, c.ready); err != nil {
			return nil, err
		}
		if w.due {
			if err := c.checkProducers(); err != nil {
				return nil, err
			}
		}
	}
}

// fastRead is the common case of read on a single-producer ring: a data
// record below the tail (reloaded only when everything seen is consumed). It validates the record exactly as poll
// does and returns nil (leaving nothing pending) whenever anything else is
// needed: a fresh tail, padding, waiting, or an error to report, which read
// then produces.
func (c *Consumer) fastRead() []byte {
	r := c.r
	head := c.head
	if c.closed || c.pending != 0 || r.multi {
		return nil
	}
	if head == c.tailCache {
		t := r.h.Tail.Load()
		if t == head || t%recordAlign != 0 || t-head > r.cap {
			return nil
		}
		c.tailCache = t
	}
	idx := head & r.mask
	length, typ := unpack(r.words[idx/8].Load())
	if typ != typeData || length < recordHeader {
		return nil
	}
	size := align(uint64(length))
	n := uint64(length) - recordHeader
	if size > c.tailCache-head || idx+size > r.cap || n > uint64(r.maxMsg) {
		return nil
	}
	c.pending = size
	return r.data[idx+recordHeader : idx+recordHeader+n : idx+recordHeader+n]
}

// maxSkip bounds the padding records one poll consumes, so a peer that
// keeps writing padding cannot hold us in a loop.
const maxSkip = 64

// poll returns the message at head, if one is committed, after validating
// its record. ok is false when there is none yet.
func (c *Consumer) poll() (msg []byte, ok bool, err error) {
	r := c.r
	for range maxSkip {
		head := c.head
		var avail uint64
		if !r.multi {
			if head == c.tailCache {
				t := r.h.Tail.Load()
				if t%recordAlign != 0 || t-head > r.cap {
					return nil, false, corruptf(r.Name(), "tail %d with head %d and capacity %d", t, head, r.cap)
				}
				c.tailCache = t
				if t == head {
					return nil, false, nil
				}
			}
			avail = c.tailCache - head
		}
		idx := head & r.mask
		length, typ := unpack(r.words[idx/8].Load())
		if r.multi {
			if length <= 0 {
				return nil, false, nil
			}
			t := r.h.Tail.Load()
			if t%recordAlign != 0 || t-head > r.cap {
				return nil, false, corruptf(r.Name(), "tail %d with head %d and capacity %d", t, head, r.cap)
			}
			avail = t - head
		}
		if length < recordHeader {
			return nil, false, corruptf(r.Name(), "record at %d: length %d", head, length)
		}
		size := align(uint64(length))
		if size > avail || idx+size > r.cap {
			return nil, false, corruptf(r.Name(), "record at %d: length %d runs past the tail (%d bytes committed) or the end of the ring", head, length, avail)
		}
		switch typ {
		case typePadding:
			c.advance(size)
			continue
		case typeData:
			n := uint64(length) - recordHeader
			if n > uint64(r.maxMsg) {
				return nil, false, corruptf(r.Name(), "record at %d: %d bytes, more than the maximum %d", head, n, r.maxMsg)
			}
			c.pending = size
			return r.data[idx+recordHeader : idx+recordHeader+n : idx+recordHeader+n], true, nil
		default:
			return nil, false, corruptf(r.Name(), "record at %d: unknown type %d", head, typ)
		}
	}
	return nil, false, nil
}

// ready reports whether poll may find something, or the producers' state
// changed; it runs after the consumer announced it will sleep.
func (c *Consumer) ready() bool {
	r, h := c.r, c.r.h
	if r.multi {
		length, _ := unpack(r.words[(c.head&r.mask)/8].Load())
		if length > 0 {
			return true
		}
	} else if h.Tail.Load() != c.head {
		return true
	}
	return h.Deaths.Load() != c.deathsSeen || (h.ProducersEver.Load() != 0 && h.Producers.Load() == 0)
}

// whenEmpty runs when poll found nothing. It reports producers that died
// and io.EOF once all producers have gone and the ring is drained.
func (c *Consumer) whenEmpty() error {
	h := c.r.h
	if d := h.Deaths.Load(); d != c.deathsSeen {
		c.deathsSeen = d
		return fmt.Errorf("shm: ring %s: a producer: %w", c.r.Name(), ErrPeerDead)
	}
	if h.ProducersEver.Load() == 0 || h.Producers.Load() != 0 {
		return nil
	}
	// Every producer has gone. A producer commits before it detaches, so
	// polling again now sees everything it sent.
	for range 2 {
		msg, ok, err := c.poll()
		if err != nil {
			return err
		}
		if ok {
			_ = msg
			c.pending = 0 // leave it for read's next poll
			return nil
		}
		if !c.r.multi || h.Tail.Load() == c.head {
			break
		}
		// Claims left by producers that died: nobody will commit them.
		if err := c.unblock(); err != nil {
			return err
		}
	}
	if d := h.Deaths.Load(); d != c.deathsSeen {
		c.deathsSeen = d
		return fmt.Errorf("shm: ring %s: a producer: %w", c.r.Name(), ErrPeerDead)
	}
	if c.r.multi && h.Tail.Load() != c.head {
		return nil
	}
	return io.EOF
}

// checkProducers looks for producers that died without closing, frees their
// slots and, on a multi-producer ring, turns claims they left at the head
// into padding.
func (c *Consumer) checkProducers() error {
	r := c.r
	for i := range r.slots {
		reap(r, &r.slots[i])
	}
	if r.multi {
		return c.unblock()
	}
	return nil
}

// reap frees slot s if its process is dead, counting the death.
//
// An owner's start token is cleared before its PID, by Close and here:
// a new owner takes a free slot (PID 0 to its own) before it can store its
// token, and a stale token left meanwhile would make it look like a reused
// PID, so that another process would reap the slot of a live producer.
func reap(r *Ring, s *slot) bool {
	pid := s.Pid.Load()
	if pid == 0 {
		return false
	}
	start := s.Start.Load()
	if s.Pid.Load() != pid || r.alive(pid, start) {
		return false
	}
	if !s.Start.CompareAndSwap(start, 0) || !s.Pid.CompareAndSwap(pid, 0) {
		return false
	}
	r.h.Producers.Add(^uint32(0))
	r.h.Deaths.Add(1)
	return true
}

// unblock handles a multi-producer ring stuck on a record that was claimed
// (the tail moved past it) but is not committed. If a live producer has a
// claim between head and tail, it is still writing: wait. Otherwise the
// claimant died: the record, or the run of zero words it left, becomes
// padding (Agrona's ManyToOneRingBuffer.unblock does the same after a
// timeout; we decide by the claimant's liveness instead of a clock).
func (c *Consumer) unblock() error {
	r := c.r
	head := c.head
	t := r.h.Tail.Load()
	if t%recordAlign != 0 || t-head > r.cap {
		return corruptf(r.Name(), "tail %d with head %d and capacity %d", t, head, r.cap)
	}
	if t == head {
		return nil
	}
	// Slots are read after the tail: a claim below t was announced in its
	// slot before the tail moved, and is cleared only after its commit.
	for i := range r.slots {
		s := &r.slots[i]
		pid := s.Pid.Load()
		claim := s.Claim.Load()
		if pid != 0 && claim != 0 && claim-1 >= head && claim-1 < t && r.alive(pid, s.Start.Load()) {
			return nil
		}
	}
	idx := head & r.mask
	w := r.words[idx/8].Load()
	length, _ := unpack(w)
	var size uint64
	switch {
	case length > 0:
		return nil // committed meanwhile
	case length < 0:
		size = align(uint64(-int64(length)))
		if size < recordHeader || size > t-head || idx+size > r.cap {
			return corruptf(r.Name(), "claimed record at %d: length %d", head, length)
		}
	default:
		// The claimant died before writing the header: the claim is the
		// run of zero words up to the next header, the tail or the end of
		// the ring. Consumed space is zero, so stale data cannot end it.
		end := idx + 8
		for end < r.cap && head+(end-idx) < t && r.words[end/8].Load() == 0 {
			end += 8
		}
		size = end - idx
	}
	if r.words[idx/8].CompareAndSwap(w, pack(int32(size), typePadding)) {
		r.wakeConsumer()
	}
	return nil
}

// Close detaches the consumer. Producers then get [ErrPeerClosed].
func (c *Consumer) Close() error {
	if c.closed {
		return fmt.Errorf("shm: ring %s: consumer: %w", c.r.Name(), fs.ErrClosed)
	}
	c.closed = true
	h := c.r.h
	h.ConsumerState.Store(consumerClosed)
	if me := uint64(os.Getpid()); h.ConsumerPid.Load() == me {
		h.ConsumerStart.Store(0) // before the PID: see reap
		h.ConsumerPid.CompareAndSwap(me, 0)
	}
	c.r.removeEnd(c)
	// Wake sleeping producers unconditionally so they see the state.
	h.ProducerWaiting.Store(0)
	wake(&h.ProducerWaiting, 1<<31-1)
	return nil
}
