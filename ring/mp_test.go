package ring

import (
	"encoding/binary"
	"io"
	"sync"
	"testing"
)

// TestManyProducersInProcess runs producers as goroutines of one process.
func TestManyProducersInProcess(t *testing.T) {
	const producers, max = 4, 300
	count := 100_000
	if testing.Short() || raceEnabled {
		count = 10_000
	}
	r := newRing(t, 1<<12, &Options{MaxMessage: max, Producers: producers})
	c, _ := r.Consumer()
	var wg sync.WaitGroup
	for id := range producers {
		p, err := r.Producer()
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer p.Close()
			for seq := range uint64(count) {
				buf, err := p.Claim(16 + int(mix(seq)%uint64(max-16)))
				if err != nil {
					t.Errorf("producer %d: Claim %d: %v", id, seq, err)
					return
				}
				binary.LittleEndian.PutUint64(buf, seq)
				binary.LittleEndian.PutUint64(buf[8:], uint64(id))
				p.Commit()
			}
		})
	}
	next := make([]uint64, producers)
	for {
		msg, err := c.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		seq, id := binary.LittleEndian.Uint64(msg), binary.LittleEndian.Uint64(msg[8:])
		if id >= producers || seq != next[id] || len(msg) != 16+int(mix(seq)%uint64(max-16)) {
			t.Fatalf("message %d from producer %d (%d bytes), want message %d", seq, id, len(msg), next[id])
		}
		next[id]++
		c.Release()
	}
	wg.Wait()
}
