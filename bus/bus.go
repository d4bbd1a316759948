// Package bus is a broadcast ring in POSIX shared memory: one producer
// process writes each message once, into a ring of fixed-size slots, and up
// to N subscriber processes each read every message through a cursor of
// their own.
//
// # Modes
//
// A bus is made lossless or lossy ([Config.Lossless]), once, by [Create].
//
// Lossy (the default, as Aeron's broadcast transmitter): the producer never
// waits. A subscriber that falls more than the ring's slot count behind is
// overtaken: its next call returns a [*LappedError] matching [ErrLapped]
// that says how many messages it lost, and it resumes at the oldest message
// still held. Every slot carries a sequence word that the producer makes
// odd before it writes and even after; a subscriber validates it after
// reading, so overwritten data is reported, never delivered.
//
// Lossless: the producer waits for the slowest live subscriber. A
// subscriber whose process is gone (it no longer maps the segment,
// [shm.Segment.PeerAlive]) is evicted when the waiting producer notices,
// within about 10 ms, and the producer goes on. A live subscriber that does
// not read stalls the producer for as long as it does not read: that is
// the contract. SendContext and ClaimContext give up when their context
// ends with a [*StalledError] naming the subscriber that held them back.
//
// # Calls
//
// The calls are the ring's: Send, TrySend, SendContext and the zero-copy
// Claim and Commit for the producer; Receive, TryReceive, ReceiveContext
// (copying) and the zero-copy Read and Release for subscribers. A
// zero-copy Read returns the message in place; on a lossy bus it is valid
// only if the Release that follows returns nil (the producer may have
// overwritten it meanwhile). When the producer closes the bus, subscribers
// get io.EOF once they have read everything; if it dies they get an error
// matching [ErrPeerDead].
//
// A Producer and a Subscriber are each for one goroutine at a time, and
// their Close must not race their other calls.
//
// # Hostile peers and shrunk segments
//
// Everything read from shared memory is validated: the geometry once at
// Subscribe, then every sequence, length and position on each call. A
// subscriber keeps its cursor privately and only publishes it for the
// producer, so no peer can make another read out of range; a producer
// clamps the cursors it reads. Every loop is bounded or observes a
// context. Calls run with [runtime/debug.SetPanicOnFault], so a segment
// that a peer shrinks gives an error wrapping syscall.EFAULT. Slices from
// Read and Claim are not guarded.
//
// The layout is specified byte by byte in SPEC.md.
package bus

// This file uses unsafe to address the subscriber table and the slots in
// the mapping; every offset is computed from geometry that was validated
// against the segment's size.

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/mindmeld-go/shm"
)

// Layout constants (SPEC.md §2).
const (
	// Magic is the first word of a bus: the bytes "BCST" read as a
	// little-endian uint32.
	Magic = 0x54534342
	// Version is the layout version this package writes and reads.
	Version = 1
	// HeaderSize is the size of the header; the subscriber table follows.
	HeaderSize = 192
	// EntrySize is the size of one subscriber entry.
	EntrySize = 64
	// SlotHeader is the size of a slot's header; the payload follows.
	SlotHeader = 16

	flagLossless = 1

	maxSlots       = 1 << 24
	maxSlotSize    = 1 << 24
	maxSubscribers = 4096
)

// Errors.
var (
	ErrCorrupt  = errors.New("shm: bus: corrupt")
	ErrNotBus   = errors.New("shm: bus: not a bus of this layout version")
	ErrTooLarge = errors.New("shm: bus: message too large")
	// ErrFull: TrySend on a lossless bus whose slowest subscriber has not
	// made room; Subscribe with every subscriber entry taken.
	ErrFull = errors.New("shm: bus: full")
	// ErrEmpty: TryReceive or TryRead with no message to read.
	ErrEmpty = errors.New("shm: bus: empty")
	// ErrPeerDead: the producer's process no longer maps the segment and
	// never closed the bus.
	ErrPeerDead = errors.New("shm: bus: producer died")
	// ErrLapped: the producer overwrote messages this subscriber had not
	// read. The error is a *LappedError with the count.
	ErrLapped = errors.New("shm: bus: subscriber lapped")
	// ErrEvicted: the producer judged this subscriber dead and freed its
	// entry (it cannot happen to a live process mapping the segment with
	// write access).
	ErrEvicted = errors.New("shm: bus: subscriber evicted")
	// ErrStalled: a lossless producer's context ended while a subscriber
	// held it back. The error is a *StalledError.
	ErrStalled = errors.New("shm: bus: producer stalled by a subscriber")
)

// A LappedError reports messages a subscriber lost to the producer.
type LappedError struct {
	Lost uint64 // messages skipped
	Next uint64 // sequence number of the message the subscriber reads next
}

func (e *LappedError) Error() string {
	return fmt.Sprintf("shm: bus: subscriber lapped: lost %d messages, resuming at %d", e.Lost, e.Next)
}

// Is makes a LappedError match ErrLapped.
func (e *LappedError) Is(target error) bool { return target == ErrLapped }

// A StalledError names the subscriber that held a lossless producer back
// when its context ended.
type StalledError struct {
	Entry  int    // index of the subscriber's entry
	Token  uint64 // its process token
	Cursor uint64 // the next message it will read
	Behind uint64 // how many messages it is behind the producer
	Err    error  // the context's error
}

func (e *StalledError) Error() string {
	return fmt.Sprintf("shm: bus: producer stalled by subscriber %d (token %#x), at message %d, %d behind: %v",
		e.Entry, e.Token, e.Cursor, e.Behind, e.Err)
}

// Is makes a StalledError match ErrStalled; Unwrap gives the context error.
func (e *StalledError) Is(target error) bool { return target == ErrStalled }
func (e *StalledError) Unwrap() error        { return e.Err }

// header is the first 192 bytes of a bus (SPEC.md §2).
type header struct {
	magic       atomic.Uint32 // 0
	version     atomic.Uint32 // 4
	slots       atomic.Uint32 // 8
	slotSize    atomic.Uint32 // 12
	subscribers atomic.Uint32 // 16
	flags       atomic.Uint32 // 20
	_           [40]byte      // 24..63
	tail        atomic.Uint64 // 64: messages published
	producer    atomic.Uint64 // 72: producer's token
	closed      atomic.Uint32 // 80: 1 once the producer closed
	subWake     atomic.Uint32 // 84: futex word subscribers sleep on
	subSleep    atomic.Uint32 // 88: 1 once a subscriber announced a sleep
	_           [36]byte      // 92..127
	prodWake    atomic.Uint32 // 128: futex word the producer sleeps on
	prodSleep   atomic.Uint32 // 132: 1 while the producer announces a sleep
	_           [56]byte      // 136..191
}

// entry is one subscriber's 64-byte line in the table.
type entry struct {
	token  atomic.Uint64 // 0: 0 = free
	cursor atomic.Uint64 // 8: next message it reads; ^0 = none
	_      [48]byte
}

// slot is the 16-byte header of a slot; the payload follows.
type slot struct {
	seq    atomic.Uint64 // 0: 0 never written; 2n+1 writing n; 2n+2 holds n
	length uint64        // 8: payload length in the low 32 bits, written in the seqlock
}

// Config is the geometry of a bus, fixed by Create.
type Config struct {
	// Slots is the number of messages the ring holds, a power of two
	// (default 1024).
	Slots int
	// SlotSize is the largest message in bytes, rounded up to a multiple
	// of 8 (default 1024).
	SlotSize int
	// Subscribers is the number of subscriber entries (default 64).
	Subscribers int
	// Lossless makes the producer wait for the slowest live subscriber.
	Lossless bool
}

func (c Config) normal() (Config, error) {
	if c.Slots == 0 {
		c.Slots = 1024
	}
	if c.SlotSize == 0 {
		c.SlotSize = 1024
	}
	if c.Subscribers == 0 {
		c.Subscribers = 64
	}
	c.SlotSize = (c.SlotSize + 7) &^ 7
	switch {
	case c.Slots < 2 || c.Slots > maxSlots || c.Slots&(c.Slots-1) != 0:
		return c, fmt.Errorf("%w: slots %d is not a power of two from 2 to %d", fs.ErrInvalid, c.Slots, maxSlots)
	case c.SlotSize < 8 || c.SlotSize > maxSlotSize:
		return c, fmt.Errorf("%w: slot size %d is not from 8 to %d", fs.ErrInvalid, c.SlotSize, maxSlotSize)
	case c.Subscribers < 1 || c.Subscribers > maxSubscribers:
		return c, fmt.Errorf("%w: subscribers %d is not from 1 to %d", fs.ErrInvalid, c.Subscribers, maxSubscribers)
	}
	return c, nil
}

// Size returns the bytes a bus of this geometry needs, or 0 if the
// geometry is invalid.
func Size(c Config) int {
	c, err := c.normal()
	if err != nil {
		return 0
	}
	return HeaderSize + EntrySize*c.Subscribers + c.Slots*(SlotHeader+c.SlotSize)
}

// bus is the shared mapping of a bus as one end sees it.
type bus struct {
	seg      *shm.Segment
	h        *header
	entries  []entry
	base     unsafe.Pointer // first slot
	stride   uintptr
	mask     uint64
	slots    uint64
	slotSize int
	lossless bool
	tok      uint64
}

func (b *bus) slot(n uint64) *slot {
	return (*slot)(unsafe.Add(b.base, uintptr(n&b.mask)*b.stride))
}

func (b *bus) payload(s *slot) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(s), SlotHeader) }

// mapBus checks that geometry c fits in seg and returns the bus.
func mapBus(seg *shm.Segment, c Config) (*bus, error) {
	need := Size(c)
	if need == 0 || need > seg.Size() {
		return nil, &fs.PathError{Op: "bus", Path: seg.Name(), Err: fmt.Errorf("%w: the bus needs %d bytes, the segment has %d", ErrCorrupt, need, seg.Size())}
	}
	h, err := shm.View[header](seg, 0)
	if err != nil {
		return nil, err
	}
	ents, err := shm.Slice[entry](seg, HeaderSize, c.Subscribers)
	if err != nil {
		return nil, err
	}
	first := HeaderSize + EntrySize*c.Subscribers
	words, err := shm.Slice[uint64](seg, first, c.Slots*(SlotHeader+c.SlotSize)/8)
	if err != nil {
		return nil, err
	}
	return &bus{
		seg: seg, h: h, entries: ents, base: unsafe.Pointer(unsafe.SliceData(words)),
		stride: uintptr(SlotHeader + c.SlotSize), mask: uint64(c.Slots - 1), slots: uint64(c.Slots),
		slotSize: c.SlotSize, lossless: c.Lossless, tok: shm.ProcessToken(),
	}, nil
}

// readConfig validates the header and returns its geometry.
func readConfig(seg *shm.Segment) (c Config, err error) {
	h, err := shm.View[header](seg, 0)
	if err != nil {
		return c, err
	}
	var verr error
	err = guard(func() {
		if m := h.magic.Load(); m != Magic {
			verr = fmt.Errorf("%w: magic %#08x, want %#08x", ErrNotBus, m, Magic)
			return
		}
		if v := h.version.Load(); v != Version {
			verr = fmt.Errorf("%w: layout version %d, this package reads version %d", ErrNotBus, v, Version)
			return
		}
		f := h.flags.Load()
		if f&^flagLossless != 0 {
			verr = fmt.Errorf("%w: unknown flags %#x", ErrNotBus, f)
			return
		}
		raw := unsafe.Slice((*byte)(unsafe.Pointer(h)), 64)
		for i := 24; i < 64; i++ {
			if raw[i] != 0 {
				verr = fmt.Errorf("%w: reserved byte %d is %#x, want 0", ErrCorrupt, i, raw[i])
				return
			}
		}
		c = Config{Slots: int(h.slots.Load()), SlotSize: int(h.slotSize.Load()), Subscribers: int(h.subscribers.Load()), Lossless: f&flagLossless != 0}
	})
	if err == nil {
		err = verr
	}
	if err != nil {
		return c, &fs.PathError{Op: "bus", Path: seg.Name(), Err: err}
	}
	n, nerr := c.normal()
	if nerr != nil || n != c {
		return c, &fs.PathError{Op: "bus", Path: seg.Name(), Err: fmt.Errorf("%w: geometry %+v", ErrCorrupt, c)}
	}
	return c, nil
}

// guard runs f with faults turned into an error (see unguard).
func guard(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err)
	f()
	return nil
}

// unguard is deferred by every call that touches the segment: it restores
// the goroutine's fault setting and turns a memory fault (a peer shrank
// the segment) into an error wrapping syscall.EFAULT. Other panics pass
// through.
func unguard(old bool, errp *error) {
	debug.SetPanicOnFault(old)
	r := recover()
	if r == nil {
		return
	}
	if _, ok := r.(interface{ Addr() uintptr }); !ok {
		panic(r)
	}
	*errp = fmt.Errorf("memory fault: %w (was the segment shrunk by another process?)", syscall.EFAULT)
}
