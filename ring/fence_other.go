//go:build !amd64 || race

package ring

import "sync/atomic"

// storeRelease stores v in *a with (at least) release order.
func storeRelease(a *atomic.Uint32, v uint32) { a.Store(v) }

// storeRelease64 stores v in *a with (at least) release order.
func storeRelease64(a *atomic.Uint64, v uint64) { a.Store(v) }
