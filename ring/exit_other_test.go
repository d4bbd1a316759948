//go:build !linux && !darwin && !freebsd

package ring

// exitThread stands in for exit_unix_test.go's where segments, and the
// child roles that call it, are unsupported; it lets the tests compile.
func exitThread() { panic("exitThread: not supported on this platform") }
