package bus

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/mindmeld-go/shm/internal/childtest"
)

// TestShrunkSegment: a peer truncates the segment; calls on either end
// return an error wrapping EFAULT instead of crashing.
func TestShrunkSegment(t *testing.T) {
	childtest.SkipIfEmulated(t, "qemu-user reports a SIGBUS fault address as 0, so a fault in a shrunk segment looks like a nil dereference and cannot be recovered")
	seg, p := newBus(t, Config{Slots: 4, SlotSize: 4096, Subscribers: 2})
	s, err := Subscribe(seg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate("/dev/shm"+seg.Name(), 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Send([]byte("x")); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("Send on a shrunk bus = %v, want EFAULT", err)
	}
	if _, err := s.TryReceive(make([]byte, 8)); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("TryReceive on a shrunk bus = %v, want EFAULT", err)
	}
	if _, err := Subscribe(seg, nil); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("Subscribe on a shrunk bus = %v, want EFAULT", err)
	}
	if _, err := ReadStats(seg); !errors.Is(err, syscall.EFAULT) {
		t.Errorf("ReadStats on a shrunk bus = %v, want EFAULT", err)
	}
}
