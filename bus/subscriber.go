package bus

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"runtime"
	"runtime/debug"
	"time"
	"unsafe"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/seqcopy"
)

// Options for [Subscribe].
type Options struct {
	// FromOldest starts the subscriber at the oldest message the ring
	// still holds instead of at the next one published.
	FromOldest bool
	// Polling makes the subscriber spin (yielding) instead of sleeping in
	// the kernel while the bus is empty.
	Polling bool
}

// A Subscriber reads every message of a bus through its own cursor.
type Subscriber struct {
	b       *bus
	e       *entry
	index   int
	next    uint64 // next message number, private
	reading bool   // a Read is not yet released
	seq     uint64 // the slot sequence the Read saw
	polling bool
	closed  bool
	prodTok uint64
}

// Subscribe validates the bus in seg and attaches a subscriber to it: it
// takes a free entry in the subscriber table (or that of a process that is
// gone) and starts at the next message, or the oldest held. The segment
// must be writable: the entry is how the producer sees the subscriber.
// With every entry taken by live processes it returns an error matching
// [ErrFull]; a header that is not a valid bus gives one matching
// [ErrNotBus] or [ErrCorrupt].
func Subscribe(seg *shm.Segment, o *Options) (*Subscriber, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if seg.ReadOnly() {
		return nil, &fs.PathError{Op: "bus.Subscribe", Path: seg.Name(), Err: fmt.Errorf("segment is mapped read-only: %w", fs.ErrPermission)}
	}
	c, err := readConfig(seg)
	if err != nil {
		return nil, err
	}
	b, err := mapBus(seg, c)
	if err != nil {
		return nil, err
	}
	s := &Subscriber{b: b, index: -1, polling: opts.Polling}
	var serr error
	err = guard(func() { serr = s.attach(opts.FromOldest) })
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, &fs.PathError{Op: "bus.Subscribe", Path: seg.Name(), Err: err}
	}
	return s, nil
}

func (s *Subscriber) attach(fromOldest bool) error {
	b := s.b
	s.prodTok = b.h.producer.Load()
	for pass := 0; pass < 2 && s.e == nil; pass++ {
		for i := range b.entries {
			e := &b.entries[i]
			tok := e.token.Load()
			if tok == 0 || (pass == 1 && !b.seg.PeerAlive(tok)) {
				if e.token.CompareAndSwap(tok, b.tok) { // A1
					s.e, s.index = e, i
					break
				}
			}
		}
	}
	if s.e == nil {
		return fmt.Errorf("%w: all %d subscriber entries are taken by live processes", ErrFull, len(b.entries))
	}
	tail := b.h.tail.Load()
	s.next = tail
	if fromOldest {
		if tail > b.slots {
			s.next = tail - b.slots
		} else {
			s.next = 0
		}
	}
	s.e.cursor.Store(s.next) // A2
	s.wakeProducer()
	return nil
}

// Entry returns the index of the subscriber's entry in the table.
func (s *Subscriber) Entry() int { return s.index }

// Next returns the sequence number of the message the subscriber reads
// next (messages are numbered from 0).
func (s *Subscriber) Next() uint64 { return s.next }

// Receive copies the next message into buf and returns its length,
// waiting while there is none. A buffer shorter than the message gets its
// first len(buf) bytes and an error wrapping io.ErrShortBuffer (the
// message is consumed). On a lossy bus the copy is validated: a message
// overwritten meanwhile is not delivered but reported in a [*LappedError].
func (s *Subscriber) Receive(buf []byte) (int, error) {
	return s.receive(context.Background(), buf, true)
}

// TryReceive is Receive that returns an error matching [ErrEmpty] instead
// of waiting.
func (s *Subscriber) TryReceive(buf []byte) (int, error) {
	return s.receive(context.Background(), buf, false)
}

// ReceiveContext is Receive that gives up with ctx.Err() when ctx ends.
func (s *Subscriber) ReceiveContext(ctx context.Context, buf []byte) (int, error) {
	return s.receive(ctx, buf, true)
}

func (s *Subscriber) receive(ctx context.Context, buf []byte, block bool) (n int, err error) {
	if s.reading {
		return 0, fmt.Errorf("shm: bus: Receive during an unreleased Read: %w", fs.ErrInvalid)
	}
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err)
	sl, size, seq, err := s.find(ctx, block)
	if err != nil {
		return 0, err
	}
	m := min(size, len(buf))
	seqcopy.Load(buf[:m], s.b.payload(sl))
	if err := s.advance(sl, seq); err != nil {
		return 0, err
	}
	if m < size {
		return m, fmt.Errorf("shm: bus: %d-byte message, %d-byte buffer: %w", size, len(buf), io.ErrShortBuffer)
	}
	return m, nil
}

// Read returns the next message in place, waiting while there is none.
// The slice is valid until Release, which must follow before any other
// call; on a lossy bus its contents count only if Release returns nil.
// (On weakly ordered CPUs, such as arm64, the check in Release orders
// after the caller's plain loads of the slice only through the atomic
// operations between them; Receive, which copies with atomic loads, is
// exact everywhere.)
func (s *Subscriber) Read() ([]byte, error) { return s.read(context.Background(), true) }

// TryRead is Read that returns an error matching [ErrEmpty] instead of
// waiting.
func (s *Subscriber) TryRead() ([]byte, error) { return s.read(context.Background(), false) }

// ReadContext is Read that gives up with ctx.Err() when ctx ends.
func (s *Subscriber) ReadContext(ctx context.Context) ([]byte, error) {
	return s.read(ctx, true)
}

func (s *Subscriber) read(ctx context.Context, block bool) (msg []byte, err error) {
	if s.reading {
		return nil, fmt.Errorf("shm: bus: Read during an unreleased Read: %w", fs.ErrInvalid)
	}
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err)
	sl, size, seq, err := s.find(ctx, block)
	if err != nil {
		return nil, err
	}
	s.reading, s.seq = true, seq
	return unsafe.Slice((*byte)(s.b.payload(sl)), size), nil
}

// Release ends the Read: it moves the cursor past the message and, on a
// lossy bus, reports in a [*LappedError] whether the producer overwrote
// the message while it was being read (then its contents were not that
// message).
func (s *Subscriber) Release() (err error) {
	if !s.reading {
		return fmt.Errorf("shm: bus: Release without Read: %w", fs.ErrInvalid)
	}
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err)
	s.reading = false
	return s.advance(s.b.slot(s.next), s.seq)
}

// advance validates the read of message s.next from slot sl, whose
// sequence was seq, and moves past it.
func (s *Subscriber) advance(sl *slot, seq uint64) error {
	b := s.b
	if sl.seq.Load() != seq { // R4
		return s.lapped(s.next + 1)
	}
	s.next++
	if b.lossless {
		s.e.cursor.Store(s.next) // R5
		s.wakeProducer()
		if s.e.token.Load() != b.tok {
			return s.evicted()
		}
	}
	return nil
}

func (s *Subscriber) wakeProducer() {
	h := s.b.h
	if h.prodSleep.Load() != 0 && h.prodSleep.Swap(0) != 0 { // R6
		h.prodWake.Add(1)
		shm.Wake(&h.prodWake, 1)
	}
}

func (s *Subscriber) evicted() error {
	return fmt.Errorf("%w: entry %d no longer holds this process's token", ErrEvicted, s.index)
}

// lapped resumes at the oldest message still held, or at least if that is
// later, and
// reports the messages skipped.
func (s *Subscriber) lapped(least uint64) error {
	b := s.b
	tail := b.h.tail.Load()
	next := least
	if tail >= b.slots && tail-b.slots > next {
		// The oldest message held; if the producer is overwriting it
		// meanwhile, the next read reports that as a lap of its own.
		next = tail - b.slots
	}
	if next > tail {
		next = tail
	}
	if next < s.next { // a hostile tail
		return fmt.Errorf("%w: tail %d is behind this subscriber's cursor %d", ErrCorrupt, tail, s.next)
	}
	lost := next - s.next
	s.next = next
	if b.lossless {
		s.e.cursor.Store(next)
		s.wakeProducer()
	}
	return &LappedError{Lost: lost, Next: next}
}

// find returns the slot holding message s.next, its length and its
// sequence word, waiting for it if block.
func (s *Subscriber) find(ctx context.Context, block bool) (*slot, int, uint64, error) {
	if s.closed {
		return nil, 0, 0, fmt.Errorf("shm: bus: subscriber: %w", fs.ErrClosed)
	}
	b := s.b
	for i := 0; ; i++ {
		tail := b.h.tail.Load() // R1
		if tail > s.next {
			if tail-s.next > b.slots {
				return nil, 0, 0, s.lapped(s.next)
			}
			sl := b.slot(s.next)
			want := 2*s.next + 2
			seq := sl.seq.Load() // R2
			if seq != want {
				if seq > want { // overwritten, or being overwritten
					return nil, 0, 0, s.lapped(s.next + 1)
				}
				return nil, 0, 0, fmt.Errorf("%w: slot of message %d has sequence %d though the tail is %d", ErrCorrupt, s.next, seq, tail)
			}
			size := seqcopy.LoadWord(unsafe.Pointer(&sl.length)) // R3
			if size > uint64(b.slotSize) {
				if sl.seq.Load() != seq {
					return nil, 0, 0, s.lapped(s.next + 1)
				}
				return nil, 0, 0, fmt.Errorf("%w: message %d has length %d, slots hold %d", ErrCorrupt, s.next, size, b.slotSize)
			}
			return sl, int(size), seq, nil
		}
		if tail < s.next {
			return nil, 0, 0, fmt.Errorf("%w: tail %d is behind this subscriber's cursor %d", ErrCorrupt, tail, s.next)
		}
		if b.h.closed.Load() != 0 && b.h.tail.Load() == s.next {
			return nil, 0, 0, io.EOF
		}
		if b.lossless && s.e.token.Load() != b.tok {
			return nil, 0, 0, s.evicted()
		}
		if !block {
			return nil, 0, 0, ErrEmpty
		}
		if err := s.wait(ctx, i); err != nil {
			return nil, 0, 0, err
		}
	}
}

// wait waits for the tail to move past s.next, the bus to close, or ctx.
// It is called repeatedly, with i counting the calls.
func (s *Subscriber) wait(ctx context.Context, i int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h := s.b.h
	if i < 50 || s.polling {
		runtime.Gosched()
		if s.polling && i%1024 == 1023 {
			return s.checkProducer()
		}
		return nil
	}
	h.subSleep.Store(1) // S1
	w := h.subWake.Load()
	var err error
	if h.tail.Load() == s.next && h.closed.Load() == 0 { // S2
		err = shm.WaitContext(ctx, &h.subWake, w, 100*time.Millisecond)
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil { // timed out: is the producer still there?
		return s.checkProducer()
	}
	return nil
}

func (s *Subscriber) checkProducer() error {
	h := s.b.h
	if h.closed.Load() != 0 || h.tail.Load() != s.next {
		return nil
	}
	if !s.b.seg.PeerAlive(s.prodTok) {
		return fmt.Errorf("%w: producer token %#x no longer maps the segment", ErrPeerDead, s.prodTok)
	}
	return nil
}

// Close frees the subscriber's entry. It does not close the segment. A
// second Close returns an error matching fs.ErrClosed.
func (s *Subscriber) Close() (err error) {
	if s.closed {
		return fmt.Errorf("shm: bus: subscriber: %w", fs.ErrClosed)
	}
	s.closed = true
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err)
	e := s.e
	e.cursor.Store(math.MaxUint64)     // D1
	e.token.CompareAndSwap(s.b.tok, 0) // D2
	s.wakeProducer()
	return nil
}
