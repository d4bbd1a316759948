// Package seqcopy copies values in and out of seqlock-protected shared
// memory (the bus's slots and the cell's value) a 64-bit word at a time.
//
// A seqlock reader copies while the writer may be overwriting the same
// bytes, and validates the copy afterwards by re-reading the sequence word.
// For that validation to mean anything, the copy's loads must be ordered
// before the re-read. Go's atomic loads are sequentially consistent (LDAR
// on arm64, a plain MOV on amd64), so Load reads every word atomically and
// the re-read that follows cannot be satisfied before them. On amd64
// (total store order) the writer's stores keep their program order, so
// Store may copy plainly there outside the race detector; elsewhere, and
// under -race (where a plain write beside an atomic read is reported), it
// stores word by word atomically.
//
// The shared side is always 8-byte aligned and padded to a multiple of 8;
// the private side is a byte slice of any alignment.
package seqcopy

// This file uses unsafe to turn a shared-memory address into *uint64 for
// sync/atomic. Callers pass addresses they have bounds-checked.

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Load copies len(dst) bytes from the shared memory at src (8-aligned,
// readable up to len(dst) rounded up to 8) into dst.
func Load(dst []byte, src unsafe.Pointer) {
	n := len(dst)
	i := 0
	for ; i+8 <= n; i += 8 {
		w := atomic.LoadUint64((*uint64)(unsafe.Add(src, i)))
		binary.NativeEndian.PutUint64(dst[i:], w)
	}
	if i < n {
		var tmp [8]byte
		binary.NativeEndian.PutUint64(tmp[:], atomic.LoadUint64((*uint64)(unsafe.Add(src, i))))
		copy(dst[i:], tmp[:])
	}
}

// Store copies src into the shared memory at dst (8-aligned, writable up
// to len(src) rounded up to 8). What the padding past len(src) in the
// last word holds afterwards is unspecified.
func Store(dst unsafe.Pointer, src []byte) {
	n := len(src)
	if plainStores {
		copy(unsafe.Slice((*byte)(dst), n), src)
		return
	}
	i := 0
	for ; i+8 <= n; i += 8 {
		atomic.StoreUint64((*uint64)(unsafe.Add(dst, i)), binary.NativeEndian.Uint64(src[i:]))
	}
	if i < n {
		var tmp [8]byte
		copy(tmp[:], src[i:])
		atomic.StoreUint64((*uint64)(unsafe.Add(dst, i)), binary.NativeEndian.Uint64(tmp[:]))
	}
}

// StoreWord stores v in the 8-aligned shared word at p, inside a seqlock's
// write section, ordered as Store's stores are.
func StoreWord(p unsafe.Pointer, v uint64) {
	if plainStores {
		*(*uint64)(p) = v
		return
	}
	atomic.StoreUint64((*uint64)(p), v)
}

// LoadWord loads the 8-aligned shared word at p, inside a seqlock's read
// section.
func LoadWord(p unsafe.Pointer) uint64 { return atomic.LoadUint64((*uint64)(p)) }
