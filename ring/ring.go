// Package ring is a message ring in POSIX shared memory: one consumer
// process receives length-delimited messages that one producer (or several,
// see [Options.Producers]) sends, without a system call on a busy ring and
// without copying through an intermediate buffer.
//
// The ring lives in a segment made with [shm.Create] (or, with [CreateIn],
// in a segment the caller made, such as a sealed anonymous one). Its
// layout, fixed by [Version] so that C or Python peers can implement it, is
// given byte by byte in the header and slot structs in ring.go and in the
// README's "Memory layout" table, with the order of every store.
//
// # Ends
//
// A [Ring] is the mapping. Attach to it as a [Producer] or a [Consumer].
// Each end is meant for one goroutine at a time; a process that wants
// several producing goroutines on a multi-producer ring attaches one
// Producer per goroutine. Close is the exception: [Ring.Close],
// [Producer.Close] and [Consumer.Close] may be called from any goroutine,
// at any time. A call blocked on the end (or running on it) then returns
// an error matching fs.ErrClosed, and the ring is unmapped only after every
// call has left it. A slice returned by Read or Claim is the caller's
// until Release or Commit, or until Close: [Producer.Close] drops an
// uncommitted claim (it becomes padding), [Consumer.Close] leaves a
// message read but not released in the ring for the next consumer, and
// after Ring.Close the slice's memory is unmapped, so a goroutine must not
// use such a slice across a Close.
//
// # Waiting
//
// A side that cannot proceed (ring full for a producer, empty for a consumer)
// spins briefly and then sleeps on a futex word in the header. The other side
// calls the kernel to wake it only when it is asleep, so a busy ring makes no
// system calls. On Linux a side about to sleep first runs a cross-process
// memory barrier (membarrier(2)), so that the other side's store of the tail
// or head needs no locked instruction of its own (SPEC.md RING-25). With
// [Options.Polling] an end never sleeps. A *Context call
// returns within about a millisecond of its context being done.
//
// # Peers
//
// Each end records its process's token ([shm.ProcessToken]) in the header,
// and its PID beside it for operators; liveness is judged only by the token,
// through [shm.Segment.PeerAlive] and [shm.Segment.AfterPeer], never by the
// PID, so PID namespaces and a process whose main thread has exited do not
// fool it. Closing an end is seen by the other side: a blocked Receive
// returns io.EOF once no producer is attached and the ring is drained. A
// peer that dies without closing is noticed by a blocked end as soon as the
// kernel reports it (on Linux within milliseconds, elsewhere within about a
// second), and that end then gets an error matching [ErrPeerDead].
//
// # Hostile peers and shrunk segments
//
// Everything read from shared memory is validated before use: positions,
// record lengths and types, the geometry in the header. A corrupt value gives
// an error matching [ErrCorrupt], never a panic, an out-of-range access or an
// endless loop: every retry loop is bounded and observes the context.
//
// A peer that shrinks the segment (ftruncate) makes the memory past the new
// end fault. Every ring call runs with [runtime/debug.SetPanicOnFault] and
// turns such a fault into an error wrapping both [ErrCorrupt] and
// syscall.EFAULT; the end is unusable afterwards (but for Close). A
// blocked call also checks the segment's size whenever it looks at its
// peers, at least once a second, so it fails even when the memory it
// waits on survived. Slices from Read and Claim are not guarded: touching
// them after a peer shrank the segment faults as any access through
// [shm.Segment.Bytes] does. A ring made with [CreateIn] or opened with
// [OpenIn] on a segment sealed with [shm.SealShrink] cannot shrink: its
// calls skip the guard, whose deferred recover costs about a third of a
// named ring's throughput with small messages.
package ring

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mindmeld-go/shm"
)

// Errors. Match them with errors.Is.
var (
	// ErrCorrupt is wrapped by every error caused by an invalid value read
	// from shared memory: a position out of range, a bad record length or
	// type, a header whose geometry does not fit the segment, and a memory
	// fault because the segment was shrunk (that error wraps
	// syscall.EFAULT too).
	ErrCorrupt = errors.New("shm: ring: corrupt")
	// ErrNotRing is returned by Open for a segment that has no ring header
	// (wrong magic number) or a ring of another layout version.
	ErrNotRing = errors.New("shm: ring: not a ring of this layout version")
	// ErrTooLarge is returned for a message longer than the ring's maximum.
	ErrTooLarge = errors.New("shm: ring: message too large")
	// ErrFull is returned by TrySend and TryClaim when there is no room.
	ErrFull = errors.New("shm: ring: full")
	// ErrEmpty is returned by TryReceive and TryRead when there is no message.
	ErrEmpty = errors.New("shm: ring: empty")
	// ErrPeerDead reports that a peer process died without closing its end.
	// For a consumer it is returned once per dead producer, after the
	// messages that producer committed have been received; messages it had
	// claimed but not committed are lost. For a producer it means the
	// consumer is gone.
	ErrPeerDead = errors.New("shm: ring: peer process died")
	// ErrPeerClosed is returned by a producer when the consumer has closed.
	ErrPeerClosed = errors.New("shm: ring: consumer closed")
	// ErrBusy is returned when attaching an end that a live process holds
	// already (the consumer, the producer of a single-producer ring, or all
	// producer slots).
	ErrBusy = errors.New("shm: ring: end already attached by a live process")
)

// Magic and Version identify a ring and its layout in the first 12 bytes of
// the segment: Magic is the 64-bit word at offset 0 (the bytes "SHMRING\x00"
// read as a little-endian uint64), stored last by [Create]; Version is the
// 32-bit layout version at offset 8. Words are in the host's byte order.
const (
	// Magic is the value of the word at offset 0 of a ring's segment.
	Magic = 0x00474e49524d4853
	// Version is the layout version this package reads and writes. Version
	// 2 named processes by token ([shm.ProcessToken]) instead of PID and
	// start time, recorded a claim's whole extent in the producer's slot,
	// and derived the number of producers from the slots. Version 3 has
	// the same bytes; its sleepers run a cross-process memory barrier
	// (membarrier(2) on Linux) before they re-check, so that a waker may
	// publish a position with a plain store (SPEC.md RING-25). A version-2
	// sleeper does not, so the two cannot share a ring.
	Version = 3
)

// Layout constants. Offsets are in bytes from the start of the segment.
const (
	lineSize    = 64
	slotsOffset = 384 // first producer slot
	slotSize    = 64
	headerMin   = slotsOffset

	// Record header: one 64-bit word, length in the low 32 bits (int32),
	// type in the high 32 bits.
	recordHeader = 8
	recordAlign  = 8

	typeData    = 1
	typePadding = 2

	flagMultiProducer = 1

	minCapacity  = 64
	maxCapacity  = 1 << 30 // record lengths are int32
	maxProducers = 1024

	// sleepMax bounds one sleep of a blocked end. Peer deaths wake it at
	// once (AfterPeer); this is the backstop for what nothing announces:
	// a peer that died while attaching, a segment shrunk under a sleeper.
	sleepMax = time.Second
	// maxRetry bounds every compare-and-swap retry loop on shared words, so
	// that a peer that keeps rewriting them cannot hold a caller.
	maxRetry = 64
)

// header is the fixed part of the ring at offset 0 of the segment. Each
// position lives on its own cache line.
type header struct {
	// Line 0 (offset 0): written once by the creator.
	Magic    atomic.Uint64 // 0: Magic, stored last by Create
	Version  uint32        // 8
	Flags    uint32        // 12: flagMultiProducer
	Capacity uint64        // 16: bytes of the data area, a power of two
	MaxMsg   uint64        // 24: longest payload
	Slots    uint32        // 32: producer slots (1 for single producer)
	_        uint32        // 36
	DataOff  uint64        // 40: offset of the data area
	_        [2]uint64     // 48

	// Line 1 (offset 64): producer position, bytes ever claimed, and the
	// producers' statistics (advisory, see stats.go).
	Tail          atomic.Uint64
	StatCommitted uint64        // 72: messages committed (single producer)
	StatCommitB   uint64        // 80: payload bytes committed (single producer)
	StatFullWaits atomic.Uint64 // 88: blocking claims that found the ring full
	_             [4]uint64
	// Line 2 (offset 128): consumer position, bytes ever released, and the
	// consumer's statistics.
	Head           atomic.Uint64
	StatReleased   uint64        // 136: messages released
	StatReleaseB   uint64        // 144: payload bytes released
	StatEmptyWaits atomic.Uint64 // 152: blocking reads that found the ring empty
	_              [4]uint64
	// Line 3 (offset 192): futex word, 1 while the consumer sleeps.
	ConsumerWaiting   atomic.Uint32
	_                 uint32
	StatConsumerWakes atomic.Uint64 // 200: wakes of a sleeping consumer
	_                 [6]uint64
	// Line 4 (offset 256): futex word, 1 while a producer sleeps.
	ProducerWaiting   atomic.Uint32
	_                 uint32
	StatProducerWakes atomic.Uint64 // 264: wakes of sleeping producers
	_                 [6]uint64
	// Line 5 (offset 320): lifecycle.
	ConsumerToken atomic.Uint64 // 320: token of the consumer's process, 0 when none
	ConsumerPid   atomic.Uint64 // 328: its PID, for operators only
	ConsumerState atomic.Uint32 // 336: 0 never attached, 1 attached, 2 closed
	Attaches      atomic.Uint32 // 340: incremented by each producer once it holds its slot
	ProducersEver atomic.Uint32 // 344: 1 once a producer has begun to attach
	Takeovers     atomic.Uint32 // 348: slots of dead producers taken over by new producers
	// Statistics of rare events (advisory, see stats.go).
	StatReaped         atomic.Uint32 // 352: dead producers reaped by the consumer
	StatConsumerTakes  atomic.Uint32 // 356: dead consumers replaced
	StatRecovered      atomic.Uint32 // 360: dead claims turned into padding
	StatCorruptions    atomic.Uint32 // 364: ends that saw corrupt data (once per end)
	StatProducerSleeps atomic.Uint64 // 368: producer futex waits
	StatConsumerSleeps atomic.Uint64 // 376: consumer futex waits
}

// slot is one producer's lifecycle record, at slotsOffset + i*slotSize.
type slot struct {
	Token      atomic.Uint64 // +0: token of the producer's process, 0 when free
	Pid        atomic.Uint64 // +8: its PID, for operators only
	ClaimStart atomic.Uint64 // +16: position where the claim in progress starts
	ClaimEnd   atomic.Uint64 // +24: position just past it; 0 when there is no claim
	// Statistics of the slot's producers (advisory, see stats.go).
	StatCommitted uint64 // +32: messages committed through this slot
	StatCommitB   uint64 // +40: their payload bytes
	_             [2]uint64
}

const (
	consumerNever    = 0
	consumerAttached = 1
	consumerClosed   = 2
)

// Options configure a ring. The zero value (or nil) is a single-producer
// ring whose largest message fills it, with blocking waits.
type Options struct {
	// MaxMessage is the largest payload in bytes; 0 means capacity-8, a
	// message whose record fills the whole ring. Set by Create only.
	MaxMessage int
	// Producers is the number of producer slots: 0 or 1 makes a
	// single-producer ring; more (at most 1024) makes a multi-producer ring
	// on which up to that many producers may be attached at once. Set by
	// Create only.
	Producers int
	// Polling makes this process's ends spin instead of sleeping in the
	// kernel while they wait: lowest latency, one busy core per waiting end.
	Polling bool
}

// A Ring is a ring mapped into this process. Attach ends to it with
// [Ring.Producer] and [Ring.Consumer].
type Ring struct {
	seg     *shm.Segment
	h       *header
	slots   []slot
	words   []atomic.Uint64 // the data area as words (record headers)
	plain   []uint64        // the same words, for writes a later atomic store publishes
	data    []byte          // the data area as bytes (payloads)
	cap     uint64
	mask    uint64
	maxMsg  int
	multi   bool
	polling bool
	guard   bool   // the segment may shrink: calls catch memory faults
	size    uint64 // bytes of the segment the ring needs

	tok uint64 // this process's token
	pid uint64

	mu     sync.Mutex
	ends   []closer
	closed bool
}

type closer interface {
	Close() error
	base() *end
}

// segmentSize returns the segment size needed for a ring of the given capacity and
// producer slots.
func segmentSize(capacity uint64, slots int) (dataOff, size uint64) {
	dataOff = uint64(slotsOffset + slots*slotSize)
	return dataOff, dataOff + capacity
}

// Size returns the size in bytes of a segment that holds a ring of the
// given capacity and options, for [CreateIn]. It returns 0 for an invalid
// capacity or producer count.
func Size(capacity int, opts *Options) int {
	var o Options
	if opts != nil {
		o = *opts
	}
	slots, err := checkOptions(capacity, &o)
	if err != nil {
		return 0
	}
	_, size := segmentSize(uint64(capacity), slots)
	return int(size)
}

// checkOptions validates capacity and o, filling in o.MaxMessage, and
// returns the number of producer slots.
func checkOptions(capacity int, o *Options) (int, error) {
	if capacity < minCapacity || uint64(capacity) > maxCapacity || capacity&(capacity-1) != 0 {
		return 0, fmt.Errorf("shm: ring: %w: capacity %d is not a power of two between %d and 2^30", fs.ErrInvalid, capacity, minCapacity)
	}
	if o.MaxMessage == 0 {
		o.MaxMessage = capacity - recordHeader
	}
	if o.MaxMessage < 0 || o.MaxMessage > capacity-recordHeader {
		return 0, fmt.Errorf("shm: ring: %w: max message %d is not in 1..%d (capacity-8)", fs.ErrInvalid, o.MaxMessage, capacity-recordHeader)
	}
	slots := 1
	if o.Producers > 1 {
		slots = o.Producers
	}
	if o.Producers < 0 || slots > maxProducers {
		return 0, fmt.Errorf("shm: ring: %w: %d producers; want 0..%d", fs.ErrInvalid, o.Producers, maxProducers)
	}
	_, size := segmentSize(uint64(capacity), slots)
	if size > uint64(int(^uint(0)>>1)) {
		return 0, fmt.Errorf("shm: ring: %w: capacity %d does not fit in this address space", fs.ErrInvalid, capacity)
	}
	return slots, nil
}

// Create creates a segment called name holding an empty ring whose data area
// is capacity bytes, a power of two of at least 64. opts may be nil.
//
// Errors from creating the segment are *fs.PathError (fs.ErrExist when the
// name is taken); invalid options match fs.ErrInvalid.
func Create(name string, capacity int, opts *Options) (*Ring, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	slots, err := checkOptions(capacity, &o)
	if err != nil {
		return nil, err
	}
	_, size := segmentSize(uint64(capacity), slots)
	seg, err := shm.Create(name, int(size))
	if err != nil {
		return nil, err
	}
	r, err := initRing(seg, capacity, slots, &o)
	if err != nil {
		seg.Close()
		seg.Unlink()
		return nil, err
	}
	return r, nil
}

// CreateIn writes an empty ring into seg, which must be zero-filled (as a
// new segment is) and at least [Size] bytes, and returns it. The Ring owns
// seg from then on: [Ring.Close] closes it. Use it for a ring in an
// anonymous segment ([shm.CreateAnonymous]) passed to the peer with
// [shm.SendSegment]; sealed with [shm.SealShrink] (or [shm.SealSize])
// before it is sent, such a segment can never shrink, and the peer opens
// it with [OpenIn].
func CreateIn(seg *shm.Segment, capacity int, opts *Options) (*Ring, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	slots, err := checkOptions(capacity, &o)
	if err != nil {
		return nil, err
	}
	_, size := segmentSize(uint64(capacity), slots)
	if uint64(seg.Size()) < size {
		return nil, fmt.Errorf("shm: ring: %w: segment of %d bytes, a ring of capacity %d needs %d", fs.ErrInvalid, seg.Size(), capacity, size)
	}
	return initRing(seg, capacity, slots, &o)
}

func initRing(seg *shm.Segment, capacity, slots int, o *Options) (*Ring, error) {
	h, err := shm.View[header](seg, 0)
	if err != nil {
		return nil, err
	}
	if err := catchFault(func() {
		h.Version = Version
		if slots > 1 {
			h.Flags = flagMultiProducer
		}
		h.Capacity = uint64(capacity)
		h.MaxMsg = uint64(o.MaxMessage)
		h.Slots = uint32(slots)
		h.DataOff, _ = segmentSize(uint64(capacity), slots)
		h.Magic.Store(Magic) // publishes the fields above
	}); err != nil {
		return nil, faultErr(seg.Name(), err)
	}
	return attach(seg, o.Polling)
}

// Open maps the existing ring called name and validates its header. Only
// opts.Polling is used; opts may be nil. A segment that is not a ring, or a
// ring of another layout version, gives an error matching [ErrNotRing]; a
// header that does not fit the segment matches [ErrCorrupt].
func Open(name string, opts *Options) (*Ring, error) {
	seg, err := shm.Open(name)
	if err != nil {
		return nil, err
	}
	r, err := OpenIn(seg, opts)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return r, nil
}

// OpenIn validates the ring in seg and returns it; it is Open for a
// segment the caller has mapped, such as one received with
// [shm.ReceiveSegment]. On success the Ring owns seg: [Ring.Close] closes
// it. On error seg is left open.
func OpenIn(seg *shm.Segment, opts *Options) (*Ring, error) {
	polling := opts != nil && opts.Polling
	return attach(seg, polling)
}

// attach validates the header in seg and builds a Ring over it. The
// geometry is read once and kept in the Ring: a peer changing it later
// cannot move our bounds.
func attach(seg *shm.Segment, polling bool) (r *Ring, err error) {
	name := seg.Name()
	if seg.Size() < headerMin {
		return nil, fmt.Errorf("shm: ring %s: %w: segment of %d bytes is smaller than a ring header (%d)", name, ErrNotRing, seg.Size(), headerMin)
	}
	h, err := shm.View[header](seg, 0)
	if err != nil {
		return nil, err
	}
	var magic, capacity, maxMsg, slots, dataOff uint64
	var version, flags uint32
	if ferr := catchFault(func() {
		// A creator publishes Magic last; give one that is still writing
		// the header a moment.
		magic = h.Magic.Load()
		for deadline := time.Now().Add(200 * time.Millisecond); magic == 0 && time.Now().Before(deadline); magic = h.Magic.Load() {
			time.Sleep(time.Millisecond)
		}
		version = h.Version
		capacity, maxMsg, slots, dataOff, flags = h.Capacity, h.MaxMsg, uint64(h.Slots), h.DataOff, h.Flags
	}); ferr != nil {
		return nil, faultErr(name, ferr)
	}
	if magic != Magic {
		return nil, fmt.Errorf("shm: ring %s: %w: magic number %#x, want %#x", name, ErrNotRing, magic, uint64(Magic))
	}
	if version != Version {
		return nil, fmt.Errorf("shm: ring %s: %w: layout version %d, want %d", name, ErrNotRing, version, Version)
	}
	switch {
	case capacity < minCapacity || capacity > maxCapacity || bits.OnesCount64(capacity) != 1:
		return nil, corruptf(name, "capacity %d is not a power of two in [%d, 2^30]", capacity, minCapacity)
	case maxMsg == 0 || maxMsg > capacity-recordHeader:
		return nil, corruptf(name, "max message %d is not in 1..%d", maxMsg, capacity-recordHeader)
	case slots == 0 || slots > maxProducers || (slots > 1) != (flags&flagMultiProducer != 0):
		return nil, corruptf(name, "%d producer slots with flags %#x", slots, flags)
	case flags&^flagMultiProducer != 0:
		return nil, corruptf(name, "unknown flags %#x", flags)
	}
	wantOff, size := segmentSize(capacity, int(slots))
	if dataOff != wantOff {
		return nil, corruptf(name, "data offset %d, want %d", dataOff, wantOff)
	}
	if uint64(seg.Size()) < size {
		return nil, corruptf(name, "segment of %d bytes is too small for capacity %d (needs %d)", seg.Size(), capacity, size)
	}
	sl, err := shm.Slice[slot](seg, slotsOffset, int(slots))
	if err != nil {
		return nil, err
	}
	words, err := shm.Slice[atomic.Uint64](seg, int(dataOff), int(capacity/8))
	if err != nil {
		return nil, err
	}
	plain, err := shm.Slice[uint64](seg, int(dataOff), int(capacity/8))
	if err != nil {
		return nil, err
	}
	data, err := shm.Slice[byte](seg, int(dataOff), int(capacity))
	if err != nil {
		return nil, err
	}
	return &Ring{
		seg: seg, h: h, slots: sl, words: words, plain: plain, data: data,
		cap: capacity, mask: capacity - 1, maxMsg: int(maxMsg),
		multi: slots > 1, polling: polling, guard: mayShrink(seg), size: size,
		tok: shm.ProcessToken(), pid: uint64(os.Getpid()),
	}, nil
}

// mayShrink reports whether another process could shrink seg: true unless
// it is sealed against shrinking.
func mayShrink(seg *shm.Segment) bool {
	seals, err := seg.Seals()
	return err != nil || seals&shm.SealShrink == 0
}

// checkSize reports a segment shrunk below the ring's size. A blocked end
// calls it whenever it looks at its peers, so that it notices a shrink
// even when it touches no memory past the new end.
func (r *Ring) checkSize() error {
	if !r.guard {
		return nil
	}
	fi, err := r.seg.Stat()
	if err != nil || fi.Size() >= int64(r.size) {
		return nil
	}
	return fmt.Errorf("shm: ring %s: %w: the segment was shrunk to %d bytes (the ring needs %d): %w", r.Name(), ErrCorrupt, fi.Size(), r.size, syscall.EFAULT)
}

func corruptf(name, format string, args ...any) error {
	return fmt.Errorf("shm: ring %s: %w: %s", name, ErrCorrupt, fmt.Sprintf(format, args...))
}

// Name returns the name of the ring's segment, with its leading slash.
func (r *Ring) Name() string { return r.seg.Name() }

// Capacity returns the size of the data area in bytes.
func (r *Ring) Capacity() int { return int(r.cap) }

// MaxMessage returns the largest payload the ring accepts.
func (r *Ring) MaxMessage() int { return r.maxMsg }

// MultiProducer reports whether several producers may attach at once.
func (r *Ring) MultiProducer() bool { return r.multi }

// Segment returns the segment holding the ring.
func (r *Ring) Segment() *shm.Segment { return r.seg }

// Close closes the ends attached through r (see [Producer.Close] and
// [Consumer.Close]: calls blocked on them return an error matching
// fs.ErrClosed), waits until every call on them has returned, and then
// unmaps the ring. It does not remove the name: see [Ring.Unlink]. A slice
// from Read or Claim must not be used once Close has begun: its memory is
// unmapped. A second Close returns an error matching fs.ErrClosed.
func (r *Ring) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("shm: ring %s: %w", r.Name(), fs.ErrClosed)
	}
	r.closed = true
	ends := r.ends
	r.ends = nil
	r.mu.Unlock()
	// Every end is marked closing first, so that no call blocked on one
	// sees another's Close (a consumer would see io.EOF) rather than its
	// own.
	for _, e := range ends {
		e.base().markClosing()
	}
	for _, e := range ends {
		e.Close()
	}
	return r.seg.Close()
}

// Unlink removes the ring's name; mappings stay valid until closed.
func (r *Ring) Unlink() error { return r.seg.Unlink() }

func errClosedRing(r *Ring) error { return fmt.Errorf("shm: ring %s: %w", r.Name(), fs.ErrClosed) }

// removeEnd forgets e, which has closed. (Ends are recorded under r.mu
// where they attach, in Producer and Consumer.)
func (r *Ring) removeEnd(e closer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.ends {
		if x == e {
			r.ends = append(r.ends[:i], r.ends[i+1:]...)
			return
		}
	}
}

// alive reports whether the process whose token is tok still maps the
// ring. Tokens come from shared memory: [shm.Segment.PeerAlive] counts 0
// and impossible values as dead, and anything it cannot decide as alive.
func (r *Ring) alive(tok uint64) bool { return r.seg.PeerAlive(tok) }

// testHook, when set by a test, is called at named points where a test
// needs to make another process act in a race window (or be killed in
// it). It is nil otherwise.
var testHook func(point string)

func hook(point string) {
	if testHook != nil {
		testHook(point)
	}
}

// pack builds a record header word.
func pack(length int32, typ int32) uint64 {
	return uint64(uint32(length)) | uint64(uint32(typ))<<32
}

func unpack(w uint64) (length int32, typ int32) {
	return int32(uint32(w)), int32(uint32(w >> 32))
}

func align(n uint64) uint64 { return (n + recordAlign - 1) &^ (recordAlign - 1) }

// wakeConsumer wakes the consumer if it sleeps. Called after publishing.
func (r *Ring) wakeConsumer() {
	if r.h.ConsumerWaiting.Load() != 0 && r.h.ConsumerWaiting.Swap(0) != 0 {
		r.h.StatConsumerWakes.Add(1)
		wake(&r.h.ConsumerWaiting, 1<<31-1)
	}
}

// wakeProducers wakes every sleeping producer. Called after releasing space
// or closing.
func (r *Ring) wakeProducers() {
	if r.h.ProducerWaiting.Load() != 0 && r.h.ProducerWaiting.Swap(0) != 0 {
		r.h.StatProducerWakes.Add(1)
		wake(&r.h.ProducerWaiting, 1<<31-1)
	}
}
