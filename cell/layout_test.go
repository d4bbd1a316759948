package cell

import (
	"testing"
	"unsafe"
)

// TestLayout pins the offsets of SPEC.md §2 to the header struct.
func TestLayout(t *testing.T) {
	var h header
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"header size", unsafe.Sizeof(h), HeaderSize},
		{"magic", unsafe.Offsetof(h.magic), 0}, {"version", unsafe.Offsetof(h.version), 4},
		{"value_size", unsafe.Offsetof(h.valueSize), 8}, {"flags", unsafe.Offsetof(h.flags), 12},
		{"seq", unsafe.Offsetof(h.seq), 64}, {"writer", unsafe.Offsetof(h.writer), 72},
		{"notify", unsafe.Offsetof(h.notify), 80}, {"sleepers", unsafe.Offsetof(h.sleepers), 84},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, SPEC.md says %d", f.name, f.got, f.want)
		}
	}
	m := uint32(Magic)
	if string([]byte{byte(m), byte(m >> 8), byte(m >> 16), byte(m >> 24)}) != "CELL" {
		t.Errorf("Magic %#x is not \"CELL\" in little-endian order", Magic)
	}
}
