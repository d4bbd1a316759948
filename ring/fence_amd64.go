//go:build amd64 && !race

package ring

// This file uses unsafe for one plain store into an atomic word: the
// release store that the sync/atomic package does not offer.

import (
	"sync/atomic"
	"unsafe"
)

// storeRelease stores v in *a with release order. On amd64 every store has
// it (x86-TSO keeps stores in order, and a store never passes an earlier
// load), so a plain store spares the locked XCHG of atomic.Store; the
// compiler keeps it after the memory operations before it. Under the race
// detector the atomic form is used (fence_other.go).
func storeRelease(a *atomic.Uint32, v uint32) {
	*(*uint32)(unsafe.Pointer(a)) = v
}
