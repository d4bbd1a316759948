// Package cell is a latest-value cell in POSIX shared memory: one value of a
// pointer-free type T that a writer replaces with [Cell.Store] and any
// number of processes read with [Cell.Load], without locks, always as a
// consistent copy.
//
// A Cell is a seqlock. The writer makes a sequence word odd, writes the
// value and makes the word even again; a reader copies the value between
// two reads of the word and retries if they differ or are odd. Readers
// never write to the cell on the way (they may map it read-only), and never
// hold the writer back. There is one writer at a time: several writing
// processes take a [shm.Mutex] around Store.
//
// A writer that dies in mid-store leaves the word odd for ever. The writer
// records its process token ([shm.ProcessToken]) before it starts, so a
// reader that finds the word odd for longer than a moment asks whether that
// process still maps the segment ([shm.Segment.PeerAlive]) and, if not,
// gets an error matching [ErrPeerDead] instead of retrying for ever. The
// next Store repairs the cell.
//
// The layout (a 128-byte header followed by the value) is specified byte
// by byte in SPEC.md, for peers in other languages. Everything read from
// the header is validated; a segment shrunk by another process gives an
// error wrapping syscall.EFAULT, never a crash.
package cell

// This file uses unsafe only to see a T as its bytes, for the word-by-word
// copy in internal/seqcopy. The address of the value comes from shm.View,
// which checks bounds, alignment and that T holds no pointers.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/seqcopy"
)

// Layout constants (SPEC.md §2).
const (
	// Magic is the first word of a cell's header: the bytes "CELL" read as
	// a little-endian uint32 on every host.
	Magic = 0x4c4c4543
	// Version is the layout version this package writes and reads.
	Version = 1
	// HeaderSize is the size of the header; the value follows it.
	HeaderSize = 128
)

// Errors.
var (
	// ErrPeerDead: the cell's sequence word is odd (a store is under way)
	// and the process that began the store no longer maps the segment.
	ErrPeerDead = errors.New("shm: cell writer died in mid-store")
	// ErrCorrupt: the header is not a cell this package can read, or a
	// value read from it is impossible.
	ErrCorrupt = errors.New("shm: corrupt cell")
	// ErrStalled: a Load found a store under way for longer than the
	// stall timeout (see [Cell.SetStallTimeout]) while its writer lives,
	// or kept losing the race with a writer storing without pause.
	ErrStalled = errors.New("shm: cell store did not finish in time")
)

// header is the first 128 bytes of a cell (SPEC.md §2).
type header struct {
	magic     atomic.Uint32 // 0
	version   atomic.Uint32 // 4
	valueSize atomic.Uint32 // 8
	flags     atomic.Uint32 // 12: 0; a reader refuses any bit
	_         [48]byte      // 16..63: reserved, 0
	seq       atomic.Uint64 // 64: even: stable; odd: a store is under way
	writer    atomic.Uint64 // 72: token of the last writer to begin a store
	notify    atomic.Uint32 // 80: low 32 bits of the version, futex word
	sleepers  atomic.Uint32 // 84: readers in Wait
	_         [40]byte      // 88..127: reserved, 0
}

// A Cell is a handle on a cell in a segment. Its methods may be called
// from any number of goroutines, except that Store must not run
// concurrently with another Store (of any process) unless the callers
// serialise them, for example with a [shm.Mutex].
//
// The Cell is valid while its segment is open; after the segment is closed
// its methods must not be called.
type Cell[T any] struct {
	seg     *shm.Segment
	h       *header
	val     unsafe.Pointer // *T in the segment
	size    int
	tok     uint64
	stall   atomic.Int64 // nanoseconds
	retries atomic.Uint64
}

// Size returns the bytes a Cell[T] occupies: the header plus T's size
// rounded up to 8.
func Size[T any]() int {
	var v T
	return HeaderSize + (int(unsafe.Sizeof(v))+7)&^7
}

// New makes a cell at offset (a multiple of 8; 64 is best) in s and returns
// a handle on it. It writes the whole header and a zero value, the magic
// word last, so a reader that attaches meanwhile is refused rather than
// misled. Any cell already there is overwritten: call New once, in the
// creating process, before others attach.
func New[T any](s *shm.Segment, offset int) (*Cell[T], error) {
	c, err := locate[T](s, offset)
	if err != nil {
		return nil, err
	}
	if s.ReadOnly() {
		return nil, &fs.PathError{Op: "cell.New", Path: s.Name(), Err: fmt.Errorf("segment is mapped read-only: %w", fs.ErrPermission)}
	}
	err = guard(func() {
		h := c.h
		h.magic.Store(0)
		h.version.Store(Version)
		h.valueSize.Store(uint32(c.size))
		h.flags.Store(0)
		raw := unsafe.Slice((*byte)(unsafe.Pointer(h)), HeaderSize)
		clear(raw[16:64])
		h.seq.Store(0)
		h.writer.Store(0)
		h.notify.Store(0)
		h.sleepers.Store(0)
		clear(raw[88:])
		seqcopy.Store(c.val, make([]byte, (c.size+7)&^7))
		h.magic.Store(Magic)
	})
	if err != nil {
		return nil, c.faultErr("cell.New", err)
	}
	return c, nil
}

// Attach returns a handle on the cell New made at offset in s. It checks
// the magic word, the layout version, the flags, the reserved bytes of the
// first line and that the stored value size is T's, and returns an error
// matching [ErrCorrupt] that says which check failed. s may be read-only:
// then Store fails and Wait polls.
func Attach[T any](s *shm.Segment, offset int) (*Cell[T], error) {
	c, err := locate[T](s, offset)
	if err != nil {
		return nil, err
	}
	var verr error
	err = guard(func() { verr = c.validate() })
	if err != nil {
		return nil, c.faultErr("cell.Attach", err)
	}
	if verr != nil {
		return nil, &fs.PathError{Op: "cell.Attach", Path: s.Name(), Err: verr}
	}
	return c, nil
}

func (c *Cell[T]) validate() error {
	h := c.h
	if m := h.magic.Load(); m != Magic {
		return fmt.Errorf("%w: magic %#08x, want %#08x (not a cell, or not yet made)", ErrCorrupt, m, Magic)
	}
	if v := h.version.Load(); v != Version {
		return fmt.Errorf("%w: layout version %d, this package reads version %d", ErrCorrupt, v, Version)
	}
	if f := h.flags.Load(); f != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, f)
	}
	if n := h.valueSize.Load(); n != uint32(c.size) {
		var v T
		return fmt.Errorf("%w: the cell holds %d-byte values, %T is %d bytes", ErrCorrupt, n, v, c.size)
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(h)), HeaderSize)
	for i := 16; i < 64; i++ {
		if raw[i] != 0 {
			return fmt.Errorf("%w: reserved byte %d is %#x, want 0", ErrCorrupt, i, raw[i])
		}
	}
	return nil
}

func locate[T any](s *shm.Segment, offset int) (*Cell[T], error) {
	if offset < 0 || offset%8 != 0 {
		return nil, &fs.PathError{Op: "cell", Path: s.Name(), Err: fmt.Errorf("%w: offset %d is not a non-negative multiple of 8", fs.ErrInvalid, offset)}
	}
	h, err := shm.View[header](s, offset)
	if err != nil {
		return nil, err
	}
	v, err := shm.View[T](s, offset+HeaderSize)
	if err != nil {
		return nil, err
	}
	size := int(unsafe.Sizeof(*v))
	// The last word of the value is read whole: it must be in the mapping.
	if _, err := shm.Slice[uint64](s, offset+HeaderSize, (size+7)/8); err != nil {
		return nil, err
	}
	c := &Cell[T]{seg: s, h: h, val: unsafe.Pointer(v), size: size, tok: shm.ProcessToken()}
	c.stall.Store(int64(time.Second))
	return c, nil
}

// SetStallTimeout sets how long Load waits for a store that is under way
// before it gives up with [ErrStalled] (default 1 s). A dead writer is
// reported sooner, as [ErrPeerDead].
func (c *Cell[T]) SetStallTimeout(d time.Duration) { c.stall.Store(int64(d)) }

// Retries returns how many times this handle's Loads found that a store
// had overlapped their copy and copied again.
func (c *Cell[T]) Retries() uint64 { return c.retries.Load() }

// Store replaces the value. Readers see the old value or the new one,
// never a mixture. It returns an error only if the segment is read-only or
// faults (another process shrank it). A Store that finds a store under way
// (a writer that died in mid-store) completes the cell in its place.
func (c *Cell[T]) Store(v T) (err error) {
	if c.seg.ReadOnly() {
		return &fs.PathError{Op: "cell.Store", Path: c.seg.Name(), Err: fmt.Errorf("segment is mapped read-only: %w", fs.ErrPermission)}
	}
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err, c)
	h := c.h
	h.writer.Store(c.tok) // W1
	s := h.seq.Load()
	if s&1 == 0 {
		s++
		h.seq.Store(s) // W2: odd
	}
	seqcopy.Store(c.val, unsafe.Slice((*byte)(unsafe.Pointer(&v)), c.size)) // W3
	s++
	h.seq.Store(s)                 // W4: even
	h.notify.Store(uint32(s >> 1)) // W5
	if h.sleepers.Load() != 0 {    // W6
		shm.Wake(&h.notify, math.MaxInt32)
	}
	return nil
}

// Load returns a consistent copy of the value. While a store is under way
// it retries, yielding; if the writer no longer maps the segment it
// returns an error matching [ErrPeerDead], and after the stall timeout one
// matching [ErrStalled].
func (c *Cell[T]) Load() (v T, err error) {
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err, c)
	h := c.h
	dst := unsafe.Slice((*byte)(unsafe.Pointer(&v)), c.size)
	s1 := h.seq.Load() // R1
	if s1&1 == 0 {
		seqcopy.Load(dst, c.val) // R2
		if h.seq.Load() == s1 {  // R3
			return v, nil
		}
		c.retries.Add(1)
	}
	if err = c.loadSlow(dst); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// loadSlow retries Load's copy into dst until it is consistent.
func (c *Cell[T]) loadSlow(dst []byte) error {
	h := c.h
	var start time.Time
	var lastCheck time.Time
	for i := 0; ; i++ {
		s1 := h.seq.Load()
		if s1&1 == 0 {
			seqcopy.Load(dst, c.val)
			if h.seq.Load() == s1 {
				return nil
			}
			c.retries.Add(1)
		}
		if i < 16 {
			continue
		}
		runtime.Gosched()
		if i%16 != 0 {
			continue
		}
		now := time.Now()
		if start.IsZero() {
			start, lastCheck = now, now
			continue
		}
		if s1&1 == 1 && now.Sub(lastCheck) >= 100*time.Microsecond {
			lastCheck = now
			if err := c.checkWriter(s1); err != nil {
				return err
			}
		}
		if d := time.Duration(c.stall.Load()); now.Sub(start) >= d {
			return &fs.PathError{Op: "cell.Load", Path: c.seg.Name(), Err: fmt.Errorf("%w: sequence %d after %v", ErrStalled, s1, d)}
		}
	}
}

// checkWriter is called with an odd sequence s: if the writer recorded in
// the header is gone and the sequence is still s, the store will never
// finish.
func (c *Cell[T]) checkWriter(s uint64) error {
	h := c.h
	tok := h.writer.Load()
	if c.seg.PeerAlive(tok) {
		return nil
	}
	if h.seq.Load() != s {
		return nil
	}
	return &fs.PathError{Op: "cell.Load", Path: c.seg.Name(), Err: fmt.Errorf("%w: writer token %#x, sequence %d", ErrPeerDead, tok, s)}
}

// Version returns the number of stores completed since New (a store that
// never finished is not counted). It changes exactly when the value may
// have.
func (c *Cell[T]) Version() (ver uint64, err error) {
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err, c)
	return c.h.seq.Load() >> 1, nil
}

// Wait blocks until the version differs from last and no store is under
// way, and returns the new version. It returns ctx.Err() when ctx is done
// (within about a millisecond), and an error matching [ErrPeerDead] if a
// store is left unfinished by a writer that is gone. Readers that wait
// sleep in the kernel and the writer wakes them only when some are asleep;
// on a read-only mapping Wait cannot announce itself and polls instead,
// every millisecond.
func (c *Cell[T]) Wait(ctx context.Context, last uint64) (ver uint64, err error) {
	old := debug.SetPanicOnFault(true)
	defer unguard(old, &err, c)
	h := c.h
	ro := c.seg.ReadOnly()
	var oddSince time.Time
	for {
		s := h.seq.Load()
		if s&1 == 0 {
			oddSince = time.Time{}
			if s>>1 != last {
				return s >> 1, nil
			}
		} else {
			if oddSince.IsZero() {
				oddSince = time.Now()
			} else if time.Since(oddSince) > time.Millisecond {
				if err := c.checkWriter(s); err != nil {
					return 0, err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		timeout := time.Second
		if s&1 == 1 {
			timeout = 10 * time.Millisecond
		}
		if ro {
			t := time.NewTimer(time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, ctx.Err()
			case <-t.C:
			}
			continue
		}
		h.sleepers.Add(1) // S1
		n := h.notify.Load()
		if h.seq.Load() == s { // S2
			err = shm.WaitContext(ctx, &h.notify, n, timeout)
		}
		h.sleepers.Add(^uint32(0))
		if err != nil && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		err = nil
	}
}

// guard runs f with faults turned into an error (see unguard).
func guard(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer unguard[struct{}](old, &err, nil)
	f()
	return nil
}

// unguard is deferred by every call that touches the segment: it restores
// the goroutine's fault setting and turns a memory fault (SIGBUS or
// SIGSEGV: a peer shrank the segment) into an error wrapping
// syscall.EFAULT, as shm.Segment.ReadAt does. Other panics pass through.
func unguard[T any](old bool, errp *error, c *Cell[T]) {
	debug.SetPanicOnFault(old)
	r := recover()
	if r == nil {
		return
	}
	if _, ok := r.(interface{ Addr() uintptr }); !ok {
		panic(r)
	}
	err := fmt.Errorf("memory fault: %w (was the segment shrunk by another process?)", syscall.EFAULT)
	if c != nil {
		err = c.faultErr("cell", err)
	}
	*errp = err
}

func (c *Cell[T]) faultErr(op string, err error) error {
	return &fs.PathError{Op: op, Path: c.seg.Name(), Err: err}
}
