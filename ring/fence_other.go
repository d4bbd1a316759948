//go:build !amd64 || race

package ring

import "sync/atomic"

// storeRelease stores v in *a with (at least) release order.
func storeRelease(a *atomic.Uint32, v uint32) { a.Store(v) }
