package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// A Consumer is the receiving end of a ring. It is meant for one goroutine
// at a time; Close may be called from any goroutine.
type Consumer struct {
	end
	head          uint64   // our position; the shared Head mirrors it
	tailCache     uint64   // last tail seen (single producer)
	pending       uint64   // aligned size of the message Read returned, 0 if none
	takeoversSeen uint32   // h.Takeovers as last counted into deaths
	deaths        []uint64 // dead producers not yet reported: the tail when each was found
	sawDeath      bool     // a producer died since attach: the stream had begun (RING-32)
	deadPending   bool     // a dead producer's slot waits for its claim to be passed
	lastCheck     time.Time
	// Statistics (stats.go): messages and payload bytes released, counted
	// on from what the previous consumer left; stored with each release.
	released, releasedBytes uint64
	pendingN                uint64 // payload bytes of the pending message
}

// Consumer attaches this process as the ring's consumer. A ring has one
// consumer at a time: if a live process holds the end the error matches
// [ErrBusy]; a consumer that died without closing is replaced, and the new
// one continues where it stopped (a message it had read but not released is
// delivered again).
func (r *Ring) Consumer() (*Consumer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosedRing(r)
	}
	c := &Consumer{end: end{r: r, guard: r.guard, watches: make([]watch, len(r.slots))}}
	var err error
	if ferr := catchFault(func() { err = c.attach() }); ferr != nil {
		return nil, faultErr(r.Name(), ferr)
	}
	if err != nil {
		return nil, err
	}
	r.ends = append(r.ends, c)
	return c, nil
}

func (c *Consumer) attach() error {
	r, h := c.r, c.r.h
	for try := 0; ; try++ {
		if try == maxRetry {
			return fmt.Errorf("shm: ring %s: consumer: %w (the consumer token keeps changing)", r.Name(), ErrBusy)
		}
		tok := h.ConsumerToken.Load()
		if tok == 0 {
			if h.ConsumerToken.CompareAndSwap(0, r.tok) {
				break
			}
			continue
		}
		if r.alive(tok) {
			return fmt.Errorf("shm: ring %s: consumer: %w (pid %d)", r.Name(), ErrBusy, h.ConsumerPid.Load())
		}
		// A dead consumer: take its end over.
		if h.ConsumerToken.CompareAndSwap(tok, r.tok) {
			h.StatConsumerTakes.Add(1)
			break
		}
	}
	hook("consumer attached")
	h.ConsumerPid.Store(r.pid)
	h.ConsumerState.Store(consumerAttached)
	c.takeoversSeen = h.Takeovers.Load()
	head, tail := h.Head.Load(), h.Tail.Load()
	if head%recordAlign != 0 || tail%recordAlign != 0 || tail-head > r.cap {
		h.ConsumerPid.Store(0)
		h.ConsumerToken.CompareAndSwap(r.tok, 0)
		c.countCorrupt()
		return corruptf(r.Name(), "head %d, tail %d, capacity %d", head, tail, r.cap)
	}
	c.head, c.tailCache = head, head
	c.released, c.releasedBytes = loadStat(&h.StatReleased), loadStat(&h.StatReleaseB)
	if r.multi && head != tail {
		// Finish a release a killed predecessor left half done (see
		// unblock); an error here shows again at the first read (whenEmpty
		// runs recoverHead at each look).
		c.unblock()
	}
	r.wakeProducers() // a producer may wait for a consumer's state to change
	return nil
}

// Receive copies the next message into buf and returns its length, blocking
// while the ring is empty. If buf is too short the message stays in the ring
// and the error wraps io.ErrShortBuffer. Once no producer is attached and
// the ring is drained it returns io.EOF; see [ErrPeerDead] for a producer
// that died. Once Close has begun it returns an error matching
// fs.ErrClosed.
func (c *Consumer) Receive(buf []byte) (n int, err error) {
	if !c.enter() {
		return 0, c.refuse("consumer")
	}
	if !c.guard { // no fault to catch: no deferred recover on the fast path
		if n, ok := c.fastReceive(buf); ok {
			c.exit()
			return n, nil
		}
	}
	defer c.leave(&err)
	if n, ok := c.fastReceive(buf); ok {
		return n, nil
	}
	return c.receive(context.Background(), buf, true)
}

// TryReceive is Receive without blocking: an empty ring gives [ErrEmpty].
func (c *Consumer) TryReceive(buf []byte) (n int, err error) {
	if !c.enter() {
		return 0, c.refuse("consumer")
	}
	if !c.guard { // no fault to catch: no deferred recover on the fast path
		if n, ok := c.fastReceive(buf); ok {
			c.exit()
			return n, nil
		}
	}
	defer c.leave(&err)
	if n, ok := c.fastReceive(buf); ok {
		return n, nil
	}
	return c.receive(context.Background(), buf, false)
}

// ReceiveContext is Receive, giving up with ctx's error when ctx is done.
func (c *Consumer) ReceiveContext(ctx context.Context, buf []byte) (n int, err error) {
	if !c.enter() {
		return 0, c.refuse("consumer")
	}
	defer c.leave(&err)
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
// which must be called before the next Read or Receive, or until Close.
// Errors are those of Receive.
func (c *Consumer) Read() (msg []byte, err error) {
	if !c.enter() {
		return nil, c.refuse("consumer")
	}
	if !c.guard {
		if msg := c.fastRead(); msg != nil {
			c.exit()
			return msg, nil
		}
	}
	defer c.leave(&err)
	if msg := c.fastRead(); msg != nil {
		return msg, nil
	}
	return c.read(context.Background(), true)
}

// TryRead is Read without blocking: an empty ring gives [ErrEmpty].
func (c *Consumer) TryRead() (msg []byte, err error) {
	if !c.enter() {
		return nil, c.refuse("consumer")
	}
	if !c.guard {
		if msg := c.fastRead(); msg != nil {
			c.exit()
			return msg, nil
		}
	}
	defer c.leave(&err)
	if msg := c.fastRead(); msg != nil {
		return msg, nil
	}
	return c.read(context.Background(), false)
}

// ReadContext is Read, giving up with ctx's error when ctx is done.
func (c *Consumer) ReadContext(ctx context.Context) (msg []byte, err error) {
	if !c.enter() {
		return nil, c.refuse("consumer")
	}
	defer c.leave(&err)
	return c.read(ctx, true)
}

// Release gives the space of the message returned by Read back to the
// producers.
func (c *Consumer) Release() (err error) {
	if !c.enter() {
		return c.refuse("consumer")
	}
	if !c.guard && c.pending != 0 {
		c.release()
		c.exit()
		return nil
	}
	defer c.leave(&err)
	if c.pending == 0 {
		return errors.New("shm: ring: Release without a message from Read")
	}
	c.release()
	return nil
}

func (c *Consumer) release() {
	// Counted before the head store, on its line (see Producer.commit).
	r := c.r
	c.released++
	c.releasedBytes += c.pendingN
	storeStat(&r.h.StatReleased, c.released)
	storeStat(&r.h.StatReleaseB, c.releasedBytes)
	c.advance(c.pending)
	c.pending = 0
}

// advance consumes size bytes at head. A multi-producer ring must be zero
// behind its head, so that a record header not yet written reads as 0. The
// record becomes padding, in one store, before its payload is cleared: a
// consumer killed while clearing leaves padding, which its successor skips,
// never a message with part of it zeroed.
func (c *Consumer) advance(size uint64) {
	r := c.r
	if r.multi {
		idx := c.head & r.mask
		w := &r.words[idx/8]
		if _, typ := unpack(w.Load()); typ != typePadding {
			w.Store(pack(int32(size), typePadding))
			hook("release padded")
		}
		clear(r.data[idx+recordHeader : idx+size])
		hook("release cleared")
		w.Store(0)
		hook("release header zeroed")
	}
	c.head += size
	publish(&r.h.Head, c.head)
	r.wakeProducers()
}

func (c *Consumer) read(ctx context.Context, block bool) ([]byte, error) {
	if c.pending != 0 {
		return nil, errors.New("shm: ring: Read before Release of the previous message")
	}
	// The wait state is made only once the call blocks: a TryRead or
	// TryReceive on an empty ring allocates nothing.
	var w *waitState
	defer func() {
		if w != nil {
			w.done()
		}
	}()
	look := true // run whenEmpty: at first, after a check, after a sleep
	for {
		msg, ok, err := c.poll()
		if err != nil || ok {
			return msg, err
		}
		if c.closing.Load() {
			return nil, c.errClosed()
		}
		if !block && time.Since(c.lastCheck) >= 100*time.Millisecond {
			look = true
			if err := c.checkProducers(); err != nil {
				return nil, err
			}
		}
		if look || c.deadPending {
			look = false
			if err := c.whenEmpty(); err != nil {
				return nil, err
			}
		}
		if !block {
			return nil, ErrEmpty
		}
		if w == nil {
			c.r.h.StatEmptyWaits.Add(1)
			w = &waitState{e: &c.end, polling: c.r.polling, sleeps: &c.r.h.StatConsumerSleeps, watch: c.watchProducers, soon: &c.deadPending}
		}
		st, err := w.pause(ctx, &c.r.h.ConsumerWaiting, c.ready)
		if err != nil {
			return nil, err
		}
		if st != pollAgain {
			look = true
		}
		if st == lookPeers {
			if err := c.checkProducers(); err != nil {
				return nil, err
			}
		}
	}
}

// fastRead is the common case of read on a single-producer ring: a data
// record below the tail (reloaded only when everything seen is consumed).
// It validates the record exactly as poll does and returns nil (leaving
// nothing pending) whenever anything else is needed: a fresh tail, padding,
// waiting, or an error to report, which read then produces.
func (c *Consumer) fastRead() []byte {
	r := c.r
	head := c.head
	if c.pending != 0 || r.multi {
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
	c.pending, c.pendingN = size, n
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
			c.pending, c.pendingN = size, n
			return r.data[idx+recordHeader : idx+recordHeader+n : idx+recordHeader+n], true, nil
		default:
			return nil, false, corruptf(r.Name(), "record at %d: unknown type %d", head, typ)
		}
	}
	return nil, false, nil
}

// ready reports whether poll may find something, or whenEmpty io.EOF; it
// runs after the consumer announced it will sleep. A producer that closes
// stores 0 in the waiting word and wakes it after it frees its slot, but
// that store may come before our announcement: only this look at the
// slots, after it, sees the last producer gone (Dekker's pattern, RING-25).
// A producer that attaches wakes us after it takes its slot; a sleep that
// misses it only delays our watch on it.
func (c *Consumer) ready() bool {
	r, h := c.r, c.r.h
	if r.multi {
		if length, _ := unpack(r.words[(c.head&r.mask)/8].Load()); length > 0 {
			return true
		}
	} else if h.Tail.Load() != c.head {
		return true
	}
	if h.ProducersEver.Load() == 0 || (h.Attaches.Load() == 0 && !c.sawDeath) {
		return false
	}
	for i := range r.slots {
		if r.slots[i].Token.Load() != 0 {
			return false
		}
	}
	return h.Tail.Load() == c.head
}

// whenEmpty runs when poll found nothing. It reports producers that died
// and io.EOF once no producer holds a slot and the ring is drained.
func (c *Consumer) whenEmpty() error {
	r, h := c.r, c.r.h
	if c.deadPending {
		if err := c.checkProducers(); err != nil {
			return err
		}
	}
	if r.multi {
		// A record at the head that no slot's claim covers is acted on at
		// once: unannounced and claimed it is corrupt, a run of zeros is
		// a killed consumer's release. One that a slot covers waits for
		// its claimant or, if that one died, for checkProducers.
		if err := c.recoverHead(false); err != nil {
			return err
		}
	}
	for t := h.Takeovers.Load(); t != c.takeoversSeen && len(c.deaths) < maxProducers; c.takeoversSeen++ {
		c.deaths = append(c.deaths, h.Tail.Load())
		c.sawDeath = true
	}
	// A death is reported once the consumer has passed the tail as it was
	// when the death was found: after every message the dead producer
	// committed.
	if len(c.deaths) > 0 && c.head >= c.deaths[0] {
		c.deaths = c.deaths[1:]
		return fmt.Errorf("shm: ring %s: a producer: %w", r.Name(), ErrPeerDead)
	}
	if h.ProducersEver.Load() == 0 {
		return nil
	}
	// No slot held, and no producer took one while we looked (a producer
	// counts itself in Attaches once it holds its slot), and nothing left
	// below the tail read after that: every producer is gone. A producer
	// commits before it detaches, so the ring is drained.
	//
	// Attaches 0 means no producer has finished attaching: the first one
	// may be between its store of ProducersEver and its token CAS
	// (RING-11), with every slot still 0. That is not the end of a stream
	// that has not begun, unless a producer died after taking its slot
	// and before counting itself (this consumer reaped it).
	a := h.Attaches.Load()
	if a == 0 && !c.sawDeath {
		return nil
	}
	for i := range r.slots {
		if r.slots[i].Token.Load() != 0 {
			return nil
		}
	}
	if h.Attaches.Load() != a || h.Tail.Load() != c.head {
		return nil
	}
	return io.EOF
}

// watchProducers watches the process of every producer that holds a slot.
func (c *Consumer) watchProducers() {
	for i := range c.r.slots {
		c.watchPeer(i, c.r.slots[i].Token.Load())
	}
}

// checkProducers watches every producer's process, frees the slots of
// producers that died once the ring has no claim of theirs left to
// recover, counting each as a death to report, and on a multi-producer
// ring turns a dead producer's claim at the head into padding.
func (c *Consumer) checkProducers() error {
	r := c.r
	c.lastCheck = time.Now()
	if err := r.checkSize(); err != nil {
		return err
	}
	c.deadPending = false
	for i := range r.slots {
		s := &r.slots[i]
		tok := s.Token.Load()
		c.watchPeer(i, tok)
		if tok == 0 || r.alive(tok) {
			continue
		}
		// A dead producer. Its claim, if its tail CAS took effect, lies
		// between the head and its end; until the head has passed it, the
		// slot keeps the extent unblock needs. The tail is loaded after
		// the death is known: one loaded before could precede a claim the
		// producer won just before it died, whose slot would then be freed
		// with its record unwritten and no announcement left to recover
		// it by (RING-27). It is also where the death is reported from:
		// every message the producer committed is below it.
		tail := r.h.Tail.Load()
		end := s.ClaimEnd.Load()
		if end != 0 && s.ClaimStart.Load() < tail && c.head < end {
			c.deadPending = true
			continue
		}
		hook("consumer reap")
		// Clear the claim end only if the dead producer left one: while it
		// is non-zero no producer can take the slot over, but once it is 0
		// a new producer may take the slot and announce a claim of its
		// own, which a blind store would erase.
		if end != 0 {
			s.ClaimEnd.CompareAndSwap(end, 0)
		}
		if pid := s.Pid.Load(); s.Token.Load() == tok {
			s.Pid.CompareAndSwap(pid, 0)
		}
		if s.Token.CompareAndSwap(tok, 0) {
			r.h.StatReaped.Add(1)
			c.deaths = append(c.deaths, tail)
			c.sawDeath = true
			c.watchPeer(i, 0)
		}
	}
	if r.multi && c.deadPending {
		return c.unblock()
	}
	return nil
}

// unblock handles a multi-producer ring stuck at its head on a record that
// was claimed (the tail moved past it) but is not committed. The producer
// that claimed it announced the claim's extent in its slot before moving
// the tail and withdraws it only after committing, so some slot's claim
// covers the head; where none does, a negated length is corrupt and a run
// of zeros is a killed consumer's release, padded. If the process of any
// slot whose claim covers the head lives, it may be the claimant, still
// writing: wait. Otherwise the claimant died, and the record becomes
// padding: as long as its header says, if the claimant wrote it, or else
// up to the nearest end of a covering claim (the claimant wrote nothing
// there: it writes the header first, and everything a dead process wrote
// is visible).
func (c *Consumer) unblock() error { return c.recoverHead(true) }

// recoverHead is unblock. Without ask it does not ask whether the processes
// of covering slots live (a system call each) and takes every covering
// slot for a live claimant's: it then acts only where no slot covers the
// head. That needs no question: the tail is read before the slots, so the
// claimant of a record below it has announced its claim (RING-16), and it
// withdraws the announcement only after its commit (or padding) is stored,
// which the header load after the slots then sees.
func (c *Consumer) recoverHead(ask bool) error {
	r := c.r
	head := c.head
	t := r.h.Tail.Load()
	if t%recordAlign != 0 || t-head > r.cap {
		return corruptf(r.Name(), "tail %d with head %d and capacity %d", t, head, r.cap)
	}
	if t == head {
		return nil
	}
	idx := head & r.mask
	if length, _ := unpack(r.words[idx/8].Load()); length > 0 {
		return nil // committed
	}
	// Slots are read after the tail: a claim below t was announced in its
	// slot before the tail moved, and is withdrawn only after its commit.
	end := t
	covered := false
	for i := range r.slots {
		s := &r.slots[i]
		var start, e uint64
		for range 4 {
			e = s.ClaimEnd.Load()
			start = s.ClaimStart.Load()
			if s.ClaimEnd.Load() == e {
				break
			}
		}
		if e == 0 || start > head || e <= head {
			continue
		}
		if !ask || r.alive(s.Token.Load()) {
			return nil
		}
		covered = true
		end = min(end, e)
	}
	w := r.words[idx/8].Load()
	length, _ := unpack(w)
	var size uint64
	switch {
	case length > 0:
		return nil // committed meanwhile
	case !covered && length == 0:
		// No claim covers head and its header is 0: a consumer was killed
		// in a release (step 10) after it stored the header 0 and before
		// it stored H. The released record, zeroed by that consumer (a
		// dead process's stores are all visible), runs up to the next
		// header: a committed one is not 0, and an unwritten one is the
		// start of a claim announced before the tail moved. Pad the run.
		size = c.releasedRun(idx, t)
		if size == 0 {
			return corruptf(r.Name(), "record at %d is not committed and no producer claims it", head)
		}
	case !covered:
		return corruptf(r.Name(), "record at %d is not committed and no producer claims it", head)
	case length < 0:
		size = align(uint64(-int64(length)))
		if size < recordHeader || size > t-head || idx+size > r.cap {
			return corruptf(r.Name(), "claimed record at %d: length %d", head, length)
		}
	default:
		size = min(end-head, r.cap-idx)
		if size%recordAlign != 0 {
			return corruptf(r.Name(), "claim at %d ends at %d, not 8-aligned", head, end)
		}
	}
	hook("unblock")
	if r.words[idx/8].CompareAndSwap(w, pack(int32(size), typePadding)) {
		r.h.StatRecovered.Add(1)
	}
	return nil
}

// releasedRun returns the length of the run of zero words at index idx
// (position c.head), up to the tail t, the end of the ring, the start of
// any announced claim after head, or the first word that is not 0; 0 if
// there is none.
func (c *Consumer) releasedRun(idx, t uint64) uint64 {
	r := c.r
	head := c.head
	stop := min(t-head, r.cap-idx)
	for i := range r.slots {
		s := &r.slots[i]
		if s.ClaimEnd.Load() != 0 {
			if st := s.ClaimStart.Load(); st > head && st-head < stop {
				stop = st - head
			}
		}
	}
	n := uint64(0)
	for n < stop && r.words[(idx+n)/8].Load() == 0 {
		n += recordAlign
	}
	return n
}

// Close detaches the consumer. Calls blocked on it in other goroutines
// return an error matching fs.ErrClosed, and Close waits for them to
// return. A message read but not released stays in the ring, for the next
// consumer; its slice must not be used any more. Producers then get
// [ErrPeerClosed]. A second Close returns an error matching fs.ErrClosed.
func (c *Consumer) Close() error {
	if !c.beginClose() {
		return c.errClosed()
	}
	c.drain()
	c.stopWatches()
	c.r.removeEnd(c)
	defer c.finishClose()
	if c.fault != nil {
		return c.fault
	}
	r := c.r
	if ferr := catchFault(func() {
		h := r.h
		h.ConsumerState.Store(consumerClosed)
		if h.ConsumerToken.Load() == r.tok {
			h.ConsumerPid.Store(0)
			h.ConsumerToken.CompareAndSwap(r.tok, 0)
		}
		hook("consumer close")
		// Wake sleeping producers unconditionally so they see the state.
		h.ProducerWaiting.Store(0)
		wake(&h.ProducerWaiting, 1<<31-1)
	}); ferr != nil {
		return faultErr(r.Name(), ferr)
	}
	return nil
}
