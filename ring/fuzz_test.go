package ring

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzReader feeds arbitrary bytes to a consumer as the ring's positions,
// records and header. The consumer must return messages inside the data
// area or errors, never panic, and never loop: every call is bounded.
func FuzzReader(f *testing.F) {
	// Seeds: a real ring's contents after some sends.
	for _, producers := range []int{1, 2} {
		r, err := Create(testName(f), 256, &Options{Producers: producers})
		if err != nil {
			f.Fatal(err)
		}
		p, _ := r.Producer()
		for i := range 5 {
			p.Send(make([]byte, 10*i+1))
		}
		p.TrySend(make([]byte, 200))
		line0 := append([]byte(nil), r.seg.Bytes()[:64]...)
		f.Add(line0, r.h.Head.Load(), r.h.Tail.Load(), append([]byte(nil), r.data...), producers > 1)
		r.Close()
	}
	rings := map[bool]*Ring{}
	for _, multi := range []bool{false, true} {
		n := 1
		if multi {
			n = 3
		}
		r, err := Create(testName(f), 256, &Options{Producers: n})
		if err != nil {
			f.Fatal(err)
		}
		// Unlinked at once: fuzzing workers are killed without cleanup.
		r.Unlink()
		f.Cleanup(func() { r.Close() })
		rings[multi] = r
	}
	f.Fuzz(func(t *testing.T, line0 []byte, head, tail uint64, data []byte, multi bool) {
		r := rings[multi]
		h := r.h
		// The header's constant line, through Open's validation.
		if len(line0) >= 64 {
			seg := r.seg.Bytes()
			saved := append([]byte(nil), seg[:64]...)
			copy(seg[:64], line0)
			if line0[0]&1 == 0 { // mostly keep the magic, to reach the geometry checks
				binary.LittleEndian.PutUint64(seg, Magic)
				binary.LittleEndian.PutUint32(seg[8:], Version)
			} else if binary.LittleEndian.Uint64(seg) == 0 {
				seg[0] = 1 // a zero magic means "still being created": Open waits
			}
			if _, err := attach(r.seg, false); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotRing) {
				t.Errorf("Open with a fuzzed header: %v, want ErrCorrupt or ErrNotRing", err)
			}
			copy(seg[:64], saved)
		}
		clear(r.data)
		copy(r.data, data)
		h.Head.Store(head)
		h.Tail.Store(tail)
		h.ConsumerToken.Store(0)
		c, err := r.Consumer()
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Consumer: %v", err)
			}
			return
		}
		defer c.Close()
		for range 100 {
			msg, err := c.TryRead()
			if err != nil {
				break
			}
			if len(msg) > r.maxMsg {
				t.Fatalf("message of %d bytes, max %d", len(msg), r.maxMsg)
			}
			c.Release()
		}
		if multi {
			c.unblock()
			c.TryRead()
		}
	})
}
