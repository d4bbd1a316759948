package ring

import (
	"fmt"
	"sync/atomic"
)

// Stats are a ring's statistics, read from its header by [Ring.Stats]. They
// count everything every attached end did since the ring was created,
// whichever process it ran in, as far as those ends keep statistics: the
// words are advisory (SPEC.md, RING-33), a peer that does not keep them
// leaves them 0, and nothing the ring does depends on them.
//
// Counts are read one word at a time while the ends run, so they are not a
// snapshot: MessagesOut may run one ahead of MessagesIn for a moment (a
// producer stores its count just after it publishes the message). Counters
// of 32 bits in the shared header (the takeovers, reaped, recovered and
// corruption counts) wrap at 2^32.
type Stats struct {
	// Capacity is the size of the data area in bytes.
	Capacity int
	// BytesIn and BytesOut are the ring's positions: bytes of the data
	// area ever claimed by producers and released by the consumer,
	// record headers and padding included. BytesIn-BytesOut bytes are in
	// the ring now (BytesInFlight).
	BytesIn, BytesOut, BytesInFlight uint64
	// MessagesIn counts the messages producers committed, and
	// PayloadIn their payload bytes. On a multi-producer ring they are
	// the sums over the producer slots.
	MessagesIn, PayloadIn uint64
	// MessagesOut counts the messages the consumer released (by Receive,
	// or Read and Release), and PayloadOut their payload bytes.
	MessagesOut, PayloadOut uint64
	// MessagesInFlight is MessagesIn-MessagesOut, or 0 when that is
	// negative: messages committed and not yet released.
	MessagesInFlight uint64
	// FullWaits counts the blocking claims (Send, Claim and their
	// Context forms) that found the ring full and had to wait, and
	// EmptyWaits the blocking reads that found it empty.
	FullWaits, EmptyWaits uint64
	// ProducerSleeps and ConsumerSleeps count the waits in the kernel
	// (futex) of each side, after spinning did not help.
	ProducerSleeps, ConsumerSleeps uint64
	// ConsumerWakes counts the system calls producers made to wake a
	// sleeping consumer, and ProducerWakes those the consumer made to wake
	// sleeping producers.
	ConsumerWakes, ProducerWakes uint64
	// ProducerTakeovers counts the slots of dead producers taken over by
	// new producers, and ConsumerTakeovers the dead consumers replaced.
	ProducerTakeovers, ConsumerTakeovers uint64
	// DeadProducersReaped counts the dead producers whose slot the
	// consumer freed, and DeadClaimsRecovered the records left claimed
	// and uncommitted by a dead process that the consumer turned into
	// padding.
	DeadProducersReaped, DeadClaimsRecovered uint64
	// Corruptions counts the ends that got an error matching
	// [ErrCorrupt] (each end once).
	Corruptions uint64
	// Producers is the number of producer slots held now, by live or
	// dead processes, and Consumer reports whether a consumer is attached.
	Producers int
	Consumer  bool
}

// Stats reads the ring's statistics. It reads only: it attaches nothing and
// can be called from any goroutine, at any time, also while ends of this
// or other processes run. After Close it returns an error matching
// fs.ErrClosed; if the segment was shrunk so that the header is gone, an
// error matching [ErrCorrupt].
//
// To publish them with [expvar]:
//
//	expvar.Publish("ring", expvar.Func(func() any {
//		s, _ := r.Stats()
//		return s
//	}))
func (r *Ring) Stats() (Stats, error) {
	r.mu.Lock()
	defer r.mu.Unlock() // Close unmaps only after it has set closed
	if r.closed {
		return Stats{}, errClosedRing(r)
	}
	var s Stats
	if err := catchFault(func() { s = r.readStats() }); err != nil {
		return Stats{}, faultErr(r.Name(), err)
	}
	return s, nil
}

func (r *Ring) readStats() Stats {
	h := r.h
	s := Stats{
		Capacity:            int(r.cap),
		BytesOut:            h.Head.Load(),
		MessagesOut:         loadStat(&h.StatReleased),
		PayloadOut:          loadStat(&h.StatReleaseB),
		FullWaits:           h.StatFullWaits.Load(),
		EmptyWaits:          h.StatEmptyWaits.Load(),
		ProducerSleeps:      h.StatProducerSleeps.Load(),
		ConsumerSleeps:      h.StatConsumerSleeps.Load(),
		ConsumerWakes:       h.StatConsumerWakes.Load(),
		ProducerWakes:       h.StatProducerWakes.Load(),
		ProducerTakeovers:   uint64(h.Takeovers.Load()),
		ConsumerTakeovers:   uint64(h.StatConsumerTakes.Load()),
		DeadProducersReaped: uint64(h.StatReaped.Load()),
		DeadClaimsRecovered: uint64(h.StatRecovered.Load()),
		Corruptions:         uint64(h.StatCorruptions.Load()),
		Consumer:            h.ConsumerToken.Load() != 0 && h.ConsumerState.Load() == consumerAttached,
	}
	// Counts of messages in are read after the counts out, and the tail
	// after the head, so that an honest ring never shows more out than in
	// because of the order of the loads.
	s.BytesIn = h.Tail.Load()
	if r.multi {
		for i := range r.slots {
			sl := &r.slots[i]
			s.MessagesIn += loadStat(&sl.StatCommitted)
			s.PayloadIn += loadStat(&sl.StatCommitB)
		}
	} else {
		s.MessagesIn = loadStat(&h.StatCommitted)
		s.PayloadIn = loadStat(&h.StatCommitB)
	}
	for i := range r.slots {
		if r.slots[i].Token.Load() != 0 {
			s.Producers++
		}
	}
	if s.BytesIn-s.BytesOut <= r.cap {
		s.BytesInFlight = s.BytesIn - s.BytesOut
	}
	if s.MessagesIn > s.MessagesOut {
		s.MessagesInFlight = s.MessagesIn - s.MessagesOut
	}
	return s
}

// String formats the statistics on one line, for logs.
func (s Stats) String() string {
	return fmt.Sprintf("in %d msgs/%d B, out %d msgs/%d B, in flight %d msgs/%d of %d B, waits full %d empty %d, sleeps producers %d consumer %d, dead producers %d, takeovers %d+%d, recovered %d, corrupt %d",
		s.MessagesIn, s.PayloadIn, s.MessagesOut, s.PayloadOut, s.MessagesInFlight, s.BytesInFlight, s.Capacity,
		s.FullWaits, s.EmptyWaits, s.ProducerSleeps, s.ConsumerSleeps, s.DeadProducersReaped,
		s.ProducerTakeovers, s.ConsumerTakeovers, s.DeadClaimsRecovered, s.Corruptions)
}

// storeStat stores v in a statistics word that only the calling end writes
// (RING-33: any order is enough). On 64-bit platforms it is a plain store,
// a single instruction that cannot tear on an aligned word (on amd64 a MOV
// where an atomic store is an XCHG, which would add a full barrier to every
// message); elsewhere an atomic store, so that a reader never sees half of
// it. Readers load with loadStat.
func storeStat(p *uint64, v uint64) {
	if is64bit {
		*p = v
	} else {
		atomic.StoreUint64(p, v)
	}
}

// loadStat loads a statistics word stored by storeStat.
func loadStat(p *uint64) uint64 { return atomic.LoadUint64(p) }

const is64bit = ^uint(0)>>63 == 1

// countCorrupt counts, once per end, an error matching ErrCorrupt in the
// ring's statistics. It runs where the header is mapped, but a peer may
// have shrunk the segment: a fault here is ignored.
func (e *end) countCorrupt() {
	if e.corrupt {
		return
	}
	e.corrupt = true
	catchFault(func() { e.r.h.StatCorruptions.Add(1) })
}
