package ring

import (
	"testing"
	"unsafe"
)

// TestLayout pins the byte offsets documented for C and Python peers.
func TestLayout(t *testing.T) {
	var h header
	var s slot
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"Magic", unsafe.Offsetof(h.Magic), 0},
		{"Version", unsafe.Offsetof(h.Version), 8},
		{"Flags", unsafe.Offsetof(h.Flags), 12},
		{"Capacity", unsafe.Offsetof(h.Capacity), 16},
		{"MaxMsg", unsafe.Offsetof(h.MaxMsg), 24},
		{"Slots", unsafe.Offsetof(h.Slots), 32},
		{"DataOff", unsafe.Offsetof(h.DataOff), 40},
		{"Tail", unsafe.Offsetof(h.Tail), 64},
		{"Head", unsafe.Offsetof(h.Head), 128},
		{"ConsumerWaiting", unsafe.Offsetof(h.ConsumerWaiting), 192},
		{"ProducerWaiting", unsafe.Offsetof(h.ProducerWaiting), 256},
		{"ConsumerToken", unsafe.Offsetof(h.ConsumerToken), 320},
		{"ConsumerPid", unsafe.Offsetof(h.ConsumerPid), 328},
		{"ConsumerState", unsafe.Offsetof(h.ConsumerState), 336},
		{"Attaches", unsafe.Offsetof(h.Attaches), 340},
		{"ProducersEver", unsafe.Offsetof(h.ProducersEver), 344},
		{"Takeovers", unsafe.Offsetof(h.Takeovers), 348},
		{"sizeof(header)", unsafe.Sizeof(h), slotsOffset},
		{"slot.Token", unsafe.Offsetof(s.Token), 0},
		{"slot.Pid", unsafe.Offsetof(s.Pid), 8},
		{"slot.ClaimStart", unsafe.Offsetof(s.ClaimStart), 16},
		{"slot.ClaimEnd", unsafe.Offsetof(s.ClaimEnd), 24},
		{"sizeof(slot)", unsafe.Sizeof(s), slotSize},
	} {
		if c.got != c.want {
			t.Errorf("offset of %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
