//go:build !linux || !amd64 || race

package ring

import "sync/atomic"

// Without membarrier (or where the entry store is sequentially consistent
// anyway: arm64's STLR then LDAR, and every platform under the race
// detector) a call's entry uses a sequentially consistent store.
const asymmetric = false

func heavyBarrier() {}

func storeBusy(a *atomic.Uint32) { a.Store(1) }
