//go:build !linux

package ring

// sleeperBarrier has nothing to do where there is no membarrier(2): no
// waker can register for it, so every waker keeps its own store-load fence
// (SPEC.md RING-25).
func sleeperBarrier() bool { return true }
