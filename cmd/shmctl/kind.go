package main

import (
	"encoding/binary"

	"github.com/mindmeld-go/shm/bus"
	"github.com/mindmeld-go/shm/cell"
	"github.com/mindmeld-go/shm/ring"
)

// Kinds of segment, as ls and stat show them.
const (
	kindRing    = "ring"
	kindBus     = "bus"
	kindCell    = "cell"
	kindPlain   = "plain"
	kindUnknown = "?" // the first bytes could not be read
)

// headSize is how many of a segment's first bytes classify needs.
const headSize = 16

// classify tells a segment's kind from its first bytes, as the packages
// that made it lay them out, in the host's byte order (README "Memory
// layout"):
//
//   - ring: the 64-bit ring.Magic at offset 0, the 32-bit layout version at
//     offset 8 (ring/ring.go);
//   - bus: the 32-bit bus.Magic ("BCST") at offset 0, the version at 4
//     (bus/bus.go, SPEC.md §2);
//   - cell: the 32-bit cell.Magic ("CELL") at offset 0, the version at 4
//     (cell/cell.go).
//
// Anything else is plain, and so is a ring, bus or cell being made: each
// stores its magic last, after the rest of its header, so until then the
// magic reads 0. head may be shorter than headSize (a small segment). The
// version is returned as found, whether or not this build reads it.
func classify(head []byte) (kind string, version uint32) {
	ne := binary.NativeEndian
	if len(head) >= 12 && ne.Uint64(head) == ring.Magic {
		return kindRing, ne.Uint32(head[8:])
	}
	if len(head) >= 8 {
		switch ne.Uint32(head) {
		case bus.Magic:
			return kindBus, ne.Uint32(head[4:])
		case cell.Magic:
			return kindCell, ne.Uint32(head[4:])
		}
	}
	return kindPlain, 0
}

// setKind sets e's kind from the first bytes read from the segment, or from
// the error that kept them from being read.
func (e *entry) setKind(head []byte, err error) {
	if err != nil {
		e.Kind, e.KindError = kindUnknown, err.Error()
		return
	}
	e.Kind, e.Version = classify(head)
}
