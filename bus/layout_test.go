package bus

import (
	"testing"
	"unsafe"
)

// TestLayout pins the offsets of SPEC.md §2 to the structs.
func TestLayout(t *testing.T) {
	var h header
	var e entry
	var s slot
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"header size", unsafe.Sizeof(h), HeaderSize},
		{"magic", unsafe.Offsetof(h.magic), 0}, {"version", unsafe.Offsetof(h.version), 4},
		{"slots", unsafe.Offsetof(h.slots), 8}, {"slot_size", unsafe.Offsetof(h.slotSize), 12},
		{"subscribers", unsafe.Offsetof(h.subscribers), 16}, {"flags", unsafe.Offsetof(h.flags), 20},
		{"tail", unsafe.Offsetof(h.tail), 64}, {"producer", unsafe.Offsetof(h.producer), 72},
		{"closed", unsafe.Offsetof(h.closed), 80}, {"sub_wake", unsafe.Offsetof(h.subWake), 84},
		{"sub_sleep", unsafe.Offsetof(h.subSleep), 88}, {"prod_wake", unsafe.Offsetof(h.prodWake), 128},
		{"prod_sleep", unsafe.Offsetof(h.prodSleep), 132},
		{"entry size", unsafe.Sizeof(e), EntrySize}, {"entry token", unsafe.Offsetof(e.token), 0},
		{"entry cursor", unsafe.Offsetof(e.cursor), 8},
		{"slot header", unsafe.Sizeof(s), SlotHeader}, {"slot seq", unsafe.Offsetof(s.seq), 0},
		{"slot length", unsafe.Offsetof(s.length), 8},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, SPEC.md says %d", f.name, f.got, f.want)
		}
	}
	m := uint32(Magic)
	if string([]byte{byte(m), byte(m >> 8), byte(m >> 16), byte(m >> 24)}) != "BCST" {
		t.Errorf("Magic %#x is not \"BCST\" in little-endian order", Magic)
	}
	if got := Size(Config{Slots: 4, SlotSize: 60, Subscribers: 2}); got != 192+128+4*(16+64) {
		t.Errorf("Size = %d, want %d", got, 192+128+4*(16+64))
	}
}
