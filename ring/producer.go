package ring

import (
	"context"
	"errors"
	"fmt"
	"unsafe"
)

// A Producer is a sending end of a ring. It is meant for one goroutine at
// a time; Close may be called from any goroutine.
type Producer struct {
	end
	slot      *slot
	tail      uint64 // single producer: our position; the shared Tail mirrors it
	headCache uint64 // last head seen
	// The claim in progress, between Claim and Commit.
	claimed  bool
	claimIdx uint64 // index of its record header
	claimLen int32  // its record length
	claimEnd uint64 // single producer: tail after it
	// Statistics (stats.go): messages and payload bytes committed through
	// our slot or, on a single-producer ring, the header, counted on from
	// what the previous producer left; stored with each commit.
	sent, sentBytes uint64
	statMsgs        *uint64
	statBytes       *uint64
}

// Producer attaches this process as a producer. A single-producer ring
// takes one producer at a time and a multi-producer ring as many as it has
// slots; beyond that the error matches [ErrBusy]. The slot of a producer
// that died without closing is taken over (the consumer is told with
// [ErrPeerDead]); on a multi-producer ring only once the consumer has
// recovered the claim the dead producer left, if any.
func (r *Ring) Producer() (*Producer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosedRing(r)
	}
	p := &Producer{end: end{r: r, guard: r.guard, watches: make([]watch, 1)}}
	var err error
	if ferr := catchFault(func() { err = p.attach() }); ferr != nil {
		return nil, faultErr(r.Name(), ferr)
	}
	if err != nil {
		return nil, err
	}
	r.ends = append(r.ends, p)
	return p, nil
}

func (p *Producer) attach() error {
	r, h := p.r, p.r.h
	// Before a slot is taken, so that a consumer that finds every slot
	// free afterwards knows a producer has been here (io.EOF).
	h.ProducersEver.Store(1)
	var s *slot
	took := false
	for i := range r.slots {
		cand := &r.slots[i]
		for range 4 {
			tok := cand.Token.Load()
			if tok == 0 {
				if cand.Token.CompareAndSwap(0, r.tok) {
					s = cand
					break
				}
				continue
			}
			// A dead producer's slot is ours to take only if it left no
			// claim: the consumer recovers claims, by the slot's extent.
			if cand.ClaimEnd.Load() != 0 || r.alive(tok) {
				break
			}
			if cand.Token.CompareAndSwap(tok, r.tok) {
				s, took = cand, true
				break
			}
		}
		if s != nil {
			break
		}
	}
	if s == nil {
		return fmt.Errorf("shm: ring %s: producer: %w (%d slots)", r.Name(), ErrBusy, len(r.slots))
	}
	// A sleeping consumer looks at the slots again and watches us. (A
	// producer killed before this wake is found by the consumer's
	// periodic look, within sleepMax.)
	r.wakeConsumer()
	if took {
		h.Takeovers.Add(1)
	}
	hook("producer attached")
	s.Pid.Store(r.pid)
	h.Attaches.Add(1)
	hook("producer counted")
	p.slot = s
	head := h.Head.Load()
	hook("producer positions")
	tail := h.Tail.Load()
	// On a multi-producer ring the other producers and the consumer move
	// both positions between the two loads, so tail-head may exceed the
	// capacity on an honest ring; tryClaimMulti reads them consistently and
	// validates them, and head (never above the true head) is only its hint.
	if head%recordAlign != 0 || tail%recordAlign != 0 || (!r.multi && tail-head > r.cap) {
		s.Pid.Store(0)
		s.Token.CompareAndSwap(r.tok, 0)
		p.countCorrupt()
		return corruptf(r.Name(), "head %d, tail %d, capacity %d", head, tail, r.cap)
	}
	p.tail, p.headCache = tail, head
	if r.multi {
		p.statMsgs, p.statBytes = &s.StatCommitted, &s.StatCommitB
	} else {
		p.statMsgs, p.statBytes = &h.StatCommitted, &h.StatCommitB
	}
	p.sent, p.sentBytes = loadStat(p.statMsgs), loadStat(p.statBytes)
	return nil
}

// Send copies msg into the ring as one message, blocking while the ring is
// full. A message longer than [Ring.MaxMessage] gives [ErrTooLarge]. When
// the consumer has closed it returns [ErrPeerClosed], and when the consumer
// died while we wait, [ErrPeerDead]. Once Close has begun it returns an
// error matching fs.ErrClosed.
func (p *Producer) Send(msg []byte) (err error) {
	if !p.enter() {
		return p.refuse("producer")
	}
	if !p.guard { // no fault to catch: no deferred recover on the fast path
		if buf := p.fastClaim(len(msg)); buf != nil {
			copyIn(buf, msg)
			p.commit()
			p.exit()
			return nil
		}
	}
	defer p.leave(&err)
	if buf := p.fastClaim(len(msg)); buf != nil {
		copyIn(buf, msg)
		p.commit()
		return nil
	}
	return p.send(context.Background(), msg, true)
}

// TrySend is Send without blocking: a full ring gives [ErrFull].
func (p *Producer) TrySend(msg []byte) (err error) {
	if !p.enter() {
		return p.refuse("producer")
	}
	if !p.guard { // no fault to catch: no deferred recover on the fast path
		if buf := p.fastClaim(len(msg)); buf != nil {
			copyIn(buf, msg)
			p.commit()
			p.exit()
			return nil
		}
	}
	defer p.leave(&err)
	if buf := p.fastClaim(len(msg)); buf != nil {
		copyIn(buf, msg)
		p.commit()
		return nil
	}
	return p.send(context.Background(), msg, false)
}

// SendContext is Send, giving up with ctx's error when ctx is done.
func (p *Producer) SendContext(ctx context.Context, msg []byte) (err error) {
	if !p.enter() {
		return p.refuse("producer")
	}
	defer p.leave(&err)
	return p.send(ctx, msg, true)
}

func (p *Producer) send(ctx context.Context, msg []byte, block bool) error {
	buf, err := p.claim(ctx, len(msg), block)
	if err != nil {
		return err
	}
	copyIn(buf, msg)
	p.commit()
	return nil
}

// copyIn copies a message into the ring. A payload starts 8 bytes after an
// 8-aligned record, so it is often not 16-byte aligned. For such a
// destination Go's memmove on amd64 (runtime/memmove_amd64.s) skips REP
// MOVSB and, from 1 MiB on, uses non-temporal stores, which send the
// message to memory just before the consumer reads it (measured: 1 MiB
// Send+Receive between two processes ~10 % slower than C's memcpy).
// Copying the first bytes separately aligns the rest.
func copyIn(dst, src []byte) {
	if len(src) >= 2048 {
		if k := int(-uintptr(unsafe.Pointer(unsafe.SliceData(dst))) & 15); k != 0 {
			copy(dst[:k], src)
			dst, src = dst[k:], src[k:]
		}
	}
	copy(dst, src)
}

// Claim reserves room for a message of n bytes and returns it, in the ring,
// for the caller to fill; [Producer.Commit] then publishes it. It blocks
// while the ring is full and fails as Send does. Nothing else may be sent
// on this Producer between Claim and Commit. The slice is valid until
// Commit or Close.
func (p *Producer) Claim(n int) (buf []byte, err error) {
	if !p.enter() {
		return nil, p.refuse("producer")
	}
	if !p.guard {
		if buf := p.fastClaim(n); buf != nil {
			p.exit()
			return buf, nil
		}
	}
	defer p.leave(&err)
	if buf := p.fastClaim(n); buf != nil {
		return buf, nil
	}
	return p.claim(context.Background(), n, true)
}

// TryClaim is Claim without blocking: a full ring gives [ErrFull].
func (p *Producer) TryClaim(n int) (buf []byte, err error) {
	if !p.enter() {
		return nil, p.refuse("producer")
	}
	defer p.leave(&err)
	return p.claim(context.Background(), n, false)
}

// ClaimContext is Claim, giving up with ctx's error when ctx is done.
func (p *Producer) ClaimContext(ctx context.Context, n int) (buf []byte, err error) {
	if !p.enter() {
		return nil, p.refuse("producer")
	}
	defer p.leave(&err)
	return p.claim(ctx, n, true)
}

// Commit publishes the message reserved by Claim.
func (p *Producer) Commit() (err error) {
	if !p.enter() {
		return p.refuse("producer")
	}
	if !p.guard && p.claimed {
		p.commit()
		p.exit()
		return nil
	}
	defer p.leave(&err)
	if !p.claimed {
		return errors.New("shm: ring: Commit without Claim")
	}
	p.commit()
	return nil
}

func (p *Producer) commit() {
	r := p.r
	p.claimed = false
	// The counts are stored before the message is published, on the line
	// the publishing store writes anyway: the consumer's next look at
	// that line sees both, and a reader of the statistics never sees a
	// message released that is not counted as committed.
	p.sent++
	p.sentBytes += uint64(p.claimLen) - recordHeader
	storeStat(p.statMsgs, p.sent)
	storeStat(p.statBytes, p.sentBytes)
	if r.multi {
		publish(&r.words[p.claimIdx/8], pack(p.claimLen, typeData))
		hook("commit header")
		p.slot.ClaimEnd.Store(0)
	} else {
		// The tail store publishes the header: a plain write is enough,
		// and spares a locked instruction per message.
		r.plain[p.claimIdx/8] = pack(p.claimLen, typeData)
		p.tail = p.claimEnd
		publish(&r.h.Tail, p.tail)
	}
	r.wakeConsumer()
}

// fastClaim is the common case of claim on a single-producer ring: the
// record fits before the end of the ring and in the free space last seen.
// It returns nil whenever anything else is needed (padding, a fresh head,
// waiting, an error), and claim then does the full work. It is kept small
// and free of waiting state so that a busy producer spends a few
// instructions per message.
func (p *Producer) fastClaim(n int) []byte {
	r := p.r
	if p.claimed || r.multi || uint(n) > uint(r.maxMsg) ||
		r.h.ConsumerState.Load() == consumerClosed {
		return nil
	}
	size := align(uint64(n) + recordHeader)
	tail := p.tail
	idx := tail & r.mask
	if size > r.cap-idx || size > r.cap-(tail-p.headCache) {
		return nil
	}
	p.claimed = true
	p.claimIdx = idx
	p.claimLen = int32(uint64(n) + recordHeader)
	p.claimEnd = tail + size
	return r.data[idx+recordHeader : idx+recordHeader+uint64(n) : idx+recordHeader+uint64(n)]
}

func (p *Producer) claim(ctx context.Context, n int, block bool) ([]byte, error) {
	r := p.r
	if p.claimed {
		return nil, errors.New("shm: ring: Claim or Send before Commit of the previous claim")
	}
	if n < 0 || n > r.maxMsg {
		return nil, fmt.Errorf("shm: ring %s: %w: %d bytes, the maximum is %d", r.Name(), ErrTooLarge, n, r.maxMsg)
	}
	size := align(uint64(n) + recordHeader)
	// The wait state is made only once the call blocks: a slow-path
	// TrySend or TryClaim allocates nothing.
	var w *waitState
	defer func() {
		if w != nil {
			w.done()
		}
	}()
	for {
		if r.h.ConsumerState.Load() == consumerClosed {
			return nil, fmt.Errorf("shm: ring %s: %w", r.Name(), ErrPeerClosed)
		}
		var buf []byte
		var err error
		if r.multi {
			buf, err = p.tryClaimMulti(n, size)
		} else {
			buf, err = p.tryClaim(n, size)
		}
		if err != nil || buf != nil {
			return buf, err
		}
		if !block {
			return nil, ErrFull
		}
		if r.multi {
			// tryClaimMulti may have spent its 64 tries racing a peer
			// that keeps moving the tail: look at the context each time.
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if w == nil {
			r.h.StatFullWaits.Add(1)
			w = &waitState{e: &p.end, polling: r.polling, sleeps: &r.h.StatProducerSleeps, watch: func() { p.watchPeer(0, r.h.ConsumerToken.Load()) }}
		}
		st, err := w.pause(ctx, &r.h.ProducerWaiting, func() bool { return p.ready(size) })
		if err != nil {
			return nil, err
		}
		if st == lookPeers {
			if err := r.checkSize(); err != nil {
				return nil, err
			}
			h := r.h
			tok := h.ConsumerToken.Load()
			p.watchPeer(0, tok)
			if tok != 0 && h.ConsumerState.Load() != consumerClosed && !r.alive(tok) {
				return nil, fmt.Errorf("shm: ring %s: consumer: %w", r.Name(), ErrPeerDead)
			}
		}
	}
}

// ready reports whether size bytes may be free, or the consumer closed.
func (p *Producer) ready(size uint64) bool {
	h := p.r.h
	tail := p.tail
	if p.r.multi {
		tail = h.Tail.Load()
	}
	return p.r.cap-(tail-h.Head.Load()) >= size || h.ConsumerState.Load() == consumerClosed
}

// loadHead reads the consumer's position and checks it against tail.
func (p *Producer) loadHead(tail uint64) (uint64, error) {
	head := p.r.h.Head.Load()
	if head%recordAlign != 0 || tail-head > p.r.cap {
		return 0, corruptf(p.r.Name(), "head %d with tail %d and capacity %d", head, tail, p.r.cap)
	}
	p.headCache = head
	return head, nil
}

// tryClaim claims size bytes on a single-producer ring. It returns a nil
// slice when the ring is too full. A record that does not fit before the
// end of the ring is preceded by a padding record to the end.
func (p *Producer) tryClaim(n int, size uint64) ([]byte, error) {
	r := p.r
	for range 2 {
		tail := p.tail
		idx := tail & r.mask
		var pad uint64
		if toEnd := r.cap - idx; size > toEnd {
			pad = toEnd
		}
		if pad+size > r.cap-(tail-p.headCache) {
			head, err := p.loadHead(tail)
			if err != nil {
				return nil, err
			}
			if free := r.cap - (tail - head); pad+size > free {
				if pad == 0 || pad > free {
					return nil, nil
				}
				// Room for the padding only: publish it alone, so that
				// a record as large as the ring waits for the consumer
				// at offset 0 instead of forever.
				r.words[idx/8].Store(pack(int32(pad), typePadding))
				p.tail += pad
				publish(&r.h.Tail, p.tail)
				r.wakeConsumer()
				continue
			}
		}
		if pad > 0 {
			r.plain[idx/8] = pack(int32(pad), typePadding)
			idx = 0
		}
		p.claimed = true
		p.claimIdx = idx
		p.claimLen = int32(uint64(n) + recordHeader)
		p.claimEnd = tail + pad + size
		return r.data[idx+recordHeader : idx+recordHeader+uint64(n) : idx+recordHeader+uint64(n)], nil
	}
	return nil, nil
}

// tryClaimMulti claims size bytes on a multi-producer ring by moving the
// shared tail with compare-and-swap. The claim's whole extent, padding
// included, is announced in our slot before the tail moves and withdrawn
// after the commit (or at once if the CAS fails), so the consumer can tell
// a slow producer's claim from a dead one's and knows how far a dead one
// reaches. The record header holds the negated length until Commit. It
// gives up (nil, nil: the caller waits and retries) after maxRetry lost
// races, so that a peer rewriting the tail cannot hold it.
func (p *Producer) tryClaimMulti(n int, size uint64) ([]byte, error) {
	r := p.r
	h := r.h
	s := p.slot
	fresh := false
	for range maxRetry {
		var head, tail uint64
		if fresh {
			// Both positions move: a head read between two equal reads
			// of the tail is consistent with it, and then an honest peer
			// has head <= tail <= head+capacity.
			stable := false
			for range 100 {
				tail = h.Tail.Load()
				head = h.Head.Load()
				if h.Tail.Load() == tail {
					stable = true
					break
				}
			}
			if !stable {
				return nil, nil // contended: let the caller wait and retry
			}
			if head%recordAlign != 0 || tail%recordAlign != 0 || tail-head > r.cap {
				return nil, corruptf(r.Name(), "head %d, tail %d, capacity %d", head, tail, r.cap)
			}
			p.headCache = head
		} else {
			head = p.headCache
			tail = h.Tail.Load()
			if tail%recordAlign != 0 || tail-head > r.cap {
				fresh = true
				continue
			}
		}
		idx := tail & r.mask
		var pad uint64
		if toEnd := r.cap - idx; size > toEnd {
			pad = toEnd
		}
		free := r.cap - (tail - head)
		if pad+size > free {
			if !fresh {
				fresh = true
				continue
			}
			fresh = false
			if pad == 0 || pad > free {
				return nil, nil
			}
			// Room for the padding only: claim it alone (see tryClaim).
			s.ClaimStart.Store(tail)
			s.ClaimEnd.Store(tail + pad)
			if h.Tail.CompareAndSwap(tail, tail+pad) {
				r.words[idx/8].Store(pack(int32(pad), typePadding))
				s.ClaimEnd.Store(0)
				r.wakeConsumer()
			} else {
				s.ClaimEnd.Store(0)
			}
			continue
		}
		end := tail + pad + size
		s.ClaimStart.Store(tail)
		s.ClaimEnd.Store(end)
		hook("claim cas")
		if !h.Tail.CompareAndSwap(tail, end) {
			// Withdraw the announcement: it names a record another
			// producer won.
			s.ClaimEnd.Store(0)
			fresh = false
			continue
		}
		hook("claim won")
		recIdx := (tail + pad) & r.mask
		length := int32(uint64(n) + recordHeader)
		if pad > 0 {
			r.words[idx/8].Store(pack(int32(pad), typePadding))
			hook("claim padded")
		}
		r.words[recIdx/8].Store(pack(-length, typeData))
		hook("claim header")
		if pad > 0 {
			r.wakeConsumer()
		}
		p.claimed = true
		p.claimIdx = recIdx
		p.claimLen = length
		return r.data[recIdx+recordHeader : recIdx+recordHeader+uint64(n) : recIdx+recordHeader+uint64(n)], nil
	}
	return nil, nil
}

// Close detaches the producer. Calls blocked on it in other goroutines
// return an error matching fs.ErrClosed, and Close waits for them to
// return. A claim not yet committed is dropped (on a multi-producer ring
// it becomes padding), and its slice must not be used any more. When no
// producer is left, the consumer receives io.EOF after the messages in the
// ring. A second Close returns an error matching fs.ErrClosed.
func (p *Producer) Close() error {
	if !p.beginClose() {
		return p.errClosed()
	}
	p.drain()
	p.stopWatches()
	p.r.removeEnd(p)
	defer p.finishClose()
	if p.fault != nil {
		return p.fault
	}
	r := p.r
	if ferr := catchFault(func() {
		s := p.slot
		if p.claimed && r.multi {
			r.words[p.claimIdx/8].Store(pack(int32(align(uint64(p.claimLen))), typePadding))
			hook("producer close padded")
		}
		p.claimed = false
		s.ClaimEnd.Store(0)
		hook("producer close claim")
		if s.Token.Load() == r.tok {
			s.Pid.Store(0)
			s.Token.CompareAndSwap(r.tok, 0)
		}
		hook("producer close slot")
		h := r.h
		h.ConsumerWaiting.Store(0)
		wake(&h.ConsumerWaiting, 1<<31-1)
	}); ferr != nil {
		return faultErr(r.Name(), ferr)
	}
	return nil
}
