//go:build !linux || !amd64 || race

package ring

import "sync/atomic"

// Without membarrier (or where the entry store is sequentially consistent
// anyway: arm64's STLR then LDAR, and every platform under the race
// detector) a call's entry uses a sequentially consistent store.
const asymmetric = false

func heavyBarrier() {}

func storeBusy(a *atomic.Uint32) { a.Store(1) }

// publish stores a position with sequentially consistent order: wakers
// here keep the symmetric form of RING-25 (on arm64 Go's store is STLR
// and its load LDAR, which are not reordered; under the race detector the
// plain store is not used).
func publish(a *atomic.Uint64, v uint64) { a.Store(v) }
