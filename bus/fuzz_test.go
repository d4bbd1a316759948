package bus

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/mindmeld-go/shm"
)

// FuzzSubscriber gives a subscriber hostile headers, entries and slots:
// Subscribe and the reading calls must return promptly, never panic, read
// out of range or hang.
func FuzzSubscriber(f *testing.F) {
	const size = 4096
	seg, err := shm.CreateAnonymous(size)
	if err != nil {
		f.Skip(err)
	}
	f.Cleanup(func() { seg.Close() })
	c := Config{Slots: 4, SlotSize: 64, Subscribers: 2}
	if _, err := Create(seg, c); err != nil {
		f.Fatal(err)
	}
	good := append([]byte(nil), seg.Bytes()[:Size(c)]...)
	f.Add(good, uint64(3), uint64(0), uint64(8), uint32(5))
	f.Add(good, uint64(1<<63), uint64(7), uint64(1<<40), uint32(70))
	f.Add(good[:64], uint64(0), uint64(0), uint64(0), uint32(0))
	f.Fuzz(func(t *testing.T, img []byte, tail, slotSeq, length uint64, which uint32) {
		raw := seg.Bytes()
		clear(raw)
		copy(raw, img)
		binary.NativeEndian.PutUint64(raw[64:], tail)
		// Plant a slot header where geometry from the header would put it.
		subs := int(binary.NativeEndian.Uint32(raw[16:]))
		ss := int(binary.NativeEndian.Uint32(raw[12:]))
		nslots := int(binary.NativeEndian.Uint32(raw[8:]))
		if subs > 0 && subs < 64 && ss > 0 && ss < 1024 && nslots > 0 {
			off := HeaderSize + EntrySize*subs + int(which%uint32(nslots))*(SlotHeader+ss)
			if off+16 <= size {
				binary.NativeEndian.PutUint64(raw[off:], slotSeq)
				binary.NativeEndian.PutUint64(raw[off+8:], length)
			}
		}
		s, err := Subscribe(seg, nil)
		if err != nil {
			return
		}
		buf := make([]byte, 64)
		for range 4 {
			s.TryReceive(buf)
			if msg, err := s.TryRead(); err == nil {
				_ = msg[len(msg)-1:]
				s.Release()
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		s.ReceiveContext(ctx, buf)
		cancel()
		s.Close()
	})
}
