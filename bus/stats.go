package bus

import (
	"fmt"
	"io/fs"
	"math"

	"github.com/mindmeld-go/shm"
)

// Stats are a bus's state as [ReadStats] finds it. They come from words the
// producer and the subscribers keep for the protocol anyway, so keeping them
// costs the hot path nothing; the bus has no statistics words of its own.
type Stats struct {
	// Slots, SlotSize and Lossless are the geometry fixed by Create.
	Slots, SlotSize int
	Lossless        bool
	// Published counts the messages published since the bus was made.
	Published uint64
	// Closed reports that the producer closed; ProducerAlive that the
	// producer's process (by its token) still lives.
	Closed, ProducerAlive bool
	// Subscribers lists the entries in use, by live or dead processes.
	Subscribers []SubscriberStats
}

// SubscriberStats is one subscriber entry.
type SubscriberStats struct {
	// Entry is the index in the subscriber table ([Subscriber.Entry]).
	Entry int
	// Token is the subscriber's process token; Alive reports that the
	// process lives.
	Token uint64
	Alive bool
	// Cursor is the next message the subscriber reads, as it last
	// reported it, and Behind is Published − Cursor. On a lossless bus a
	// subscriber reports its cursor after every message (the producer
	// waits for it); on a lossy bus only when it joins, so there Cursor
	// is where it started and Behind says nothing about its lag. Known is
	// false while the entry has no cursor (a subscriber joining) or a
	// cursor past the tail.
	Cursor, Behind uint64
	Known          bool
}

// ReadStats reads the state of the bus in seg. It only reads (seg may be
// mapped read-only) and attaches nothing, so it may run beside the
// producer and subscribers of any process. A segment that is not a bus
// gives an error matching [ErrNotBus] or [ErrCorrupt]; a segment shrunk
// under the read, one wrapping syscall.EFAULT. Errors are *fs.PathError.
func ReadStats(seg *shm.Segment) (Stats, error) {
	c, err := readConfig(seg)
	if err != nil {
		return Stats{}, err
	}
	b, err := mapBus(seg, c)
	if err != nil {
		return Stats{}, err
	}
	s := Stats{Slots: c.Slots, SlotSize: c.SlotSize, Lossless: c.Lossless}
	var prodTok uint64
	err = guard(func() {
		prodTok = b.h.producer.Load()
		s.Closed = b.h.closed.Load() != 0
		for i := range b.entries {
			e := &b.entries[i]
			tok := e.token.Load()
			if tok == 0 {
				continue
			}
			s.Subscribers = append(s.Subscribers, SubscriberStats{Entry: i, Token: tok, Cursor: e.cursor.Load()})
		}
		// The tail after the cursors: an honest subscriber's cursor is at
		// most the tail.
		s.Published = b.h.tail.Load()
	})
	if err != nil {
		return Stats{}, &fs.PathError{Op: "bus.ReadStats", Path: seg.Name(), Err: err}
	}
	s.ProducerAlive = seg.PeerAlive(prodTok)
	for i := range s.Subscribers {
		sub := &s.Subscribers[i]
		sub.Alive = seg.PeerAlive(sub.Token)
		if sub.Cursor != math.MaxUint64 && sub.Cursor <= s.Published {
			sub.Known = true
			sub.Behind = s.Published - sub.Cursor
		}
	}
	return s, nil
}

// String formats the statistics on one line.
func (s Stats) String() string {
	return fmt.Sprintf("published %d, %d subscribers, lossless %v, closed %v, producer alive %v",
		s.Published, len(s.Subscribers), s.Lossless, s.Closed, s.ProducerAlive)
}
