package cell

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/mindmeld-go/shm/internal/childtest"
)

// TestShrunkSegment: a peer truncates the segment under the cell; every
// call returns an error wrapping EFAULT instead of crashing.
func TestShrunkSegment(t *testing.T) {
	childtest.SkipIfEmulated(t, "qemu-user reports a SIGBUS fault address as 0, so a fault in a shrunk segment looks like a nil dereference and cannot be recovered")
	seg, c := newCell(t)
	if err := os.Truncate("/dev/shm"+seg.Name(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("Load of a shrunk cell = %v, want EFAULT", err)
	}
	if err := c.Store(mkState(1)); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("Store to a shrunk cell = %v, want EFAULT", err)
	}
	if _, err := c.Version(); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("Version of a shrunk cell = %v, want EFAULT", err)
	}
	if _, err := Attach[state](seg, 64); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("Attach to a shrunk cell = %v, want EFAULT", err)
	}
}
