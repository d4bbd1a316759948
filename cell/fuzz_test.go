package cell

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// FuzzAttachLoad gives Attach, Load, Version and Wait hostile headers: they
// must return (a value or an error) promptly, never panic or hang.
func FuzzAttachLoad(f *testing.F) {
	good := make([]byte, HeaderSize+16)
	binary.LittleEndian.PutUint32(good[0:], Magic)
	binary.LittleEndian.PutUint32(good[4:], Version)
	binary.LittleEndian.PutUint32(good[8:], 16)
	f.Add(good)
	odd := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(odd[64:], 7)
	binary.LittleEndian.PutUint64(odd[72:], 12345)
	f.Add(odd)
	f.Add([]byte{})
	seg, err := newFuzzSegment()
	if err != nil {
		f.Skip(err)
	}
	f.Cleanup(func() { seg.Close() })
	f.Fuzz(func(t *testing.T, hdr []byte) {
		raw := seg.Bytes()
		clear(raw)
		copy(raw, hdr)
		c, err := Attach[[16]byte](seg, 0)
		if err != nil {
			return
		}
		c.SetStallTimeout(time.Millisecond)
		c.Load()
		c.Version()
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		c.Wait(ctx, 0)
		cancel()
	})
}
