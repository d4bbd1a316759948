package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/mindmeld-go/shm/internal/childtest"
)

// payloadSum is the payload bytes of messages 0..count-1 of producer id
// with sizes up to max, as childSend and childSendMP send them.
func payloadSum(id uint64, count, max int) uint64 {
	var n uint64
	for seq := range uint64(count) {
		n += uint64(sizeFor(id, seq, max))
	}
	return n
}

// waitStats waits up to 30 s until r's statistics satisfy ok, and fails
// naming what it waited for.
func waitStats(t *testing.T, r *Ring, what string, ok func(Stats) bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(mustStats(t, r)); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v", what, mustStats(t, r))
		}
	}
}

func mustStats(t *testing.T, r *Ring) Stats {
	t.Helper()
	s, err := r.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// TestStatsSingleProducer: a producer process sends N messages and exits;
// the counts and positions the parent reads are exact, before the consumer
// runs, halfway and at the end.
func TestStatsSingleProducer(t *testing.T) {
	const n, max = 300, 200
	r := newRing(t, 1<<16, nil)
	if s := mustStats(t, r); s != (Stats{Capacity: 1 << 16}) {
		t.Fatalf("fresh ring: %+v", s)
	}
	runChild(t, "send", r.Name(), fmt.Sprint(n), fmt.Sprint(max), "0")
	bytes := payloadSum(0, n, max)
	s := mustStats(t, r)
	if s.MessagesIn != n || s.PayloadIn != bytes || s.MessagesInFlight != n || s.MessagesOut != 0 ||
		s.BytesOut != 0 || s.BytesInFlight != s.BytesIn || s.BytesIn < bytes+8*n || s.Producers != 0 || s.Consumer {
		t.Fatalf("after %d sends (%d bytes): %+v", n, bytes, s)
	}
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, max)
	for seq := range uint64(n / 2) {
		k, err := c.Receive(buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := check(buf[:k], 0, seq, max); err != nil {
			t.Fatal(err)
		}
	}
	s = mustStats(t, r)
	if s.MessagesOut != n/2 || s.PayloadOut != payloadSum(0, n/2, max) || s.MessagesInFlight != n-n/2 || !s.Consumer {
		t.Fatalf("after %d receives: %+v", n/2, s)
	}
	for range n - n/2 {
		msg, err := c.Read()
		if err != nil {
			t.Fatal(err)
		}
		_ = msg
		c.Release()
	}
	if _, err := c.TryReceive(buf); err != io.EOF {
		t.Fatalf("TryReceive at the end = %v, want io.EOF", err)
	}
	s = mustStats(t, r)
	if s.MessagesOut != n || s.PayloadOut != bytes || s.MessagesInFlight != 0 || s.BytesOut != s.BytesIn || s.BytesInFlight != 0 {
		t.Fatalf("at the end: %+v", s)
	}
	// A second producer process counts on from the first one's count.
	runChild(t, "send", r.Name(), "10", "20", "1")
	if s := mustStats(t, r); s.MessagesIn != n+10 || s.PayloadIn != bytes+payloadSum(1, 10, 20) || s.MessagesInFlight != 10 {
		t.Fatalf("after a second producer: %+v", s)
	}
	// So does a second consumer.
	c.Close()
	c2, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := c2.Receive(buf); err != nil {
			t.Fatal(err)
		}
	}
	if s := mustStats(t, r); s.MessagesOut != n+10 || s.MessagesInFlight != 0 || s.ConsumerTakeovers != 0 {
		t.Fatalf("after a second consumer: %+v", s)
	}
}

// TestStatsMultiProducer: three producer processes on a multi-producer
// ring; the sum over the slots is exact, and a producer that takes a freed
// slot counts on.
func TestStatsMultiProducer(t *testing.T) {
	const n, max, procs = 2000, 300, 3
	r := newRing(t, 1<<12, &Options{Producers: procs})
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for id := range procs {
		startChild(t, "sendmp", r.Name(), fmt.Sprint(n), fmt.Sprint(max), fmt.Sprint(id))
		want += payloadSum(uint64(id), n, max)
	}
	// Read only once all three hold a slot: they fill the 4 KiB ring at
	// once and wait, so none can finish and close before the others
	// attached, which the consumer would take for the end (io.EOF).
	waitStats(t, r, "producers did not attach", func(s Stats) bool { return s.Producers >= procs })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	buf := make([]byte, max)
	got, gotBytes := 0, uint64(0)
	for {
		k, err := c.ReceiveContext(ctx, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		got++
		gotBytes += uint64(k)
	}
	if got != n*procs || gotBytes != want {
		t.Fatalf("received %d messages of %d bytes, want %d of %d", got, gotBytes, n*procs, want)
	}
	s := mustStats(t, r)
	if s.MessagesIn != n*procs || s.MessagesOut != n*procs || s.PayloadIn != want || s.PayloadOut != want ||
		s.MessagesInFlight != 0 || s.BytesIn != s.BytesOut || s.Producers != 0 {
		t.Fatalf("after %d messages of %d bytes: %+v", n*procs, want, s)
	}
	// A 4 KiB ring and three senders of up to 300 bytes: producers waited.
	t.Logf("full waits %d, producer sleeps %d, wakes %d; empty waits %d, consumer sleeps %d, wakes %d",
		s.FullWaits, s.ProducerSleeps, s.ProducerWakes, s.EmptyWaits, s.ConsumerSleeps, s.ConsumerWakes)
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	p.Send([]byte("one more"))
	if s := mustStats(t, r); s.MessagesIn != n*procs+1 || s.PayloadIn != want+8 || s.MessagesInFlight != 1 || s.Producers != 1 {
		t.Fatalf("after one more message: %+v", s)
	}
}

// TestStatsDeaths: a producer killed holding a claim is reaped and its claim
// recovered on a multi-producer ring; a killed single producer's slot is
// taken over; a killed consumer is replaced. Each is counted.
func TestStatsDeaths(t *testing.T) {
	for _, producers := range []int{1, 2} {
		t.Run(fmt.Sprintf("producers=%d", producers), func(t *testing.T) {
			r := newRing(t, 4096, &Options{Producers: producers})
			c, _ := r.Consumer()
			cmd, out := startChild(t, "claimhang", r.Name(), "10")
			waitFor(t, out, "claimed")
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			buf := make([]byte, 64)
			for i := range 10 {
				if _, err := c.ReceiveContext(ctx, buf); err != nil {
					t.Fatalf("Receive %d: %v", i, err)
				}
			}
			if _, err := c.ReceiveContext(ctx, buf); !errors.Is(err, ErrPeerDead) {
				t.Fatalf("Receive after the producer died = %v, want ErrPeerDead", err)
			}
			s := mustStats(t, r)
			recovered := uint64(0)
			if producers > 1 {
				recovered = 1 // single producer: the claim is below the tail, nothing to recover
			}
			if s.MessagesIn != 10 || s.MessagesOut != 10 || s.DeadProducersReaped != 1 || s.DeadClaimsRecovered != recovered || s.Producers != 0 {
				t.Fatalf("after the producer died: %+v", s)
			}
		})
	}
	t.Run("takeovers", func(t *testing.T) {
		r := newRing(t, 4096, nil)
		// A killed producer whose slot a new producer takes over.
		cmd, out := startChild(t, "claimhang", r.Name(), "2")
		waitFor(t, out, "claimed")
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		p, err := r.Producer()
		if err != nil {
			t.Fatal(err)
		}
		p.Send([]byte("x"))
		// A killed consumer that a new consumer replaces.
		cmd, out = startChild(t, "recvhang", r.Name(), "1")
		waitFor(t, out, "received")
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		c, err := r.Consumer()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := mustStats(t, r)
		if s.ProducerTakeovers != 1 || s.ConsumerTakeovers != 1 || s.MessagesIn != 3 || s.MessagesOut != 1 || s.MessagesInFlight != 2 {
			t.Fatalf("after a producer and a consumer were replaced: %+v", s)
		}
	})
}

// TestStatsSleeps: a consumer that finds the ring empty waits and sleeps,
// a producer process wakes it; each is counted.
func TestStatsSleeps(t *testing.T) {
	r := newRing(t, 4096, nil)
	c, _ := r.Consumer()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		_, err := c.Receive(buf)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for mustStats(t, r).ConsumerSleeps == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the consumer did not sleep within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	runChild(t, "send", r.Name(), "1", "10", "0")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := mustStats(t, r)
	if s.EmptyWaits != 1 || s.ConsumerSleeps == 0 || s.ConsumerWakes == 0 || s.FullWaits != 0 || s.ProducerSleeps != 0 {
		t.Fatalf("after one wait: %+v", s)
	}
}

// TestStatsCorruption: a bad record is one corruption per end, however
// often the end is told.
func TestStatsCorruption(t *testing.T) {
	r := newRing(t, 4096, nil)
	c, _ := r.Consumer()
	p, _ := r.Producer()
	p.Send([]byte("hello"))
	r.words[0].Store(pack(5000, typeData)) // runs past the tail
	buf := make([]byte, 64)
	for range 3 {
		if _, err := c.Receive(buf); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Receive of a bad record = %v, want ErrCorrupt", err)
		}
	}
	if s := mustStats(t, r); s.Corruptions != 1 {
		t.Fatalf("Corruptions = %d, want 1", s.Corruptions)
	}
}

// TestStatsHostile: the statistics words are advisory. Garbage in every one
// of them changes nothing the ring does, and Stats reports it without
// failing; Stats after Close and on a shrunk segment fails cleanly.
func TestStatsHostile(t *testing.T) {
	for _, producers := range []int{1, 3} {
		t.Run(fmt.Sprintf("producers=%d", producers), func(t *testing.T) {
			r := newRing(t, 4096, &Options{Producers: producers})
			h := r.h
			for _, w := range []*uint64{&h.StatCommitted, &h.StatCommitB, &h.StatReleased, &h.StatReleaseB} {
				*w = math.MaxUint64 - 1
			}
			for _, w := range []*atomic.Uint64{&h.StatFullWaits, &h.StatEmptyWaits, &h.StatConsumerWakes, &h.StatProducerWakes, &h.StatProducerSleeps, &h.StatConsumerSleeps} {
				w.Store(math.MaxUint64)
			}
			for _, w := range []*atomic.Uint32{&h.StatReaped, &h.StatConsumerTakes, &h.StatRecovered, &h.StatCorruptions} {
				w.Store(math.MaxUint32)
			}
			for i := range r.slots {
				r.slots[i].StatCommitted, r.slots[i].StatCommitB = math.MaxUint64-1, math.MaxUint64
			}
			c, _ := r.Consumer()
			p, _ := r.Producer()
			buf := make([]byte, 64)
			for i := range 100 {
				if err := p.Send([]byte{byte(i)}); err != nil {
					t.Fatal(err)
				}
				if n, err := c.Receive(buf); err != nil || n != 1 || buf[0] != byte(i) {
					t.Fatalf("Receive %d = %d, %v", i, n, err)
				}
			}
			s := mustStats(t, r)
			if s.BytesIn != 1600 || s.BytesOut != 1600 {
				t.Fatalf("positions after 100 messages: %+v", s)
			}
			// The producer and consumer counted on from the garbage (mod 2^64).
			if producers == 1 && (s.MessagesOut != 98 || s.MessagesIn != 98) {
				t.Fatalf("counts from garbage: %+v", s)
			}
			_ = s.String()
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Stats(); !errors.Is(err, fs.ErrClosed) {
				t.Fatalf("Stats after Close = %v, want ErrClosed", err)
			}
		})
	}
	t.Run("shrunk", func(t *testing.T) {
		childtest.SkipIfEmulated(t, "qemu-user reports a SIGBUS fault address as 0: the fault cannot be recovered")
		r := newRing(t, 4096, nil)
		truncate(t, r, 0)
		if _, err := r.Stats(); !errors.Is(err, ErrCorrupt) || !errors.Is(err, syscall.EFAULT) {
			t.Fatalf("Stats on a segment shrunk to 0 = %v, want ErrCorrupt and EFAULT", err)
		}
	})
}

// TestStatsLayout pins the statistics words to the offsets SPEC.md §9.3 and
// §9.4 give them.
func TestStatsLayout(t *testing.T) {
	var h header
	var s slot
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"StatCommitted", unsafe.Offsetof(h.StatCommitted), 72},
		{"StatCommitB", unsafe.Offsetof(h.StatCommitB), 80},
		{"StatFullWaits", unsafe.Offsetof(h.StatFullWaits), 88},
		{"StatReleased", unsafe.Offsetof(h.StatReleased), 136},
		{"StatReleaseB", unsafe.Offsetof(h.StatReleaseB), 144},
		{"StatEmptyWaits", unsafe.Offsetof(h.StatEmptyWaits), 152},
		{"StatConsumerWakes", unsafe.Offsetof(h.StatConsumerWakes), 200},
		{"StatProducerWakes", unsafe.Offsetof(h.StatProducerWakes), 264},
		{"StatReaped", unsafe.Offsetof(h.StatReaped), 352},
		{"StatConsumerTakes", unsafe.Offsetof(h.StatConsumerTakes), 356},
		{"StatRecovered", unsafe.Offsetof(h.StatRecovered), 360},
		{"StatCorruptions", unsafe.Offsetof(h.StatCorruptions), 364},
		{"StatProducerSleeps", unsafe.Offsetof(h.StatProducerSleeps), 368},
		{"StatConsumerSleeps", unsafe.Offsetof(h.StatConsumerSleeps), 376},
		{"slot.StatCommitted", unsafe.Offsetof(s.StatCommitted), 32},
		{"slot.StatCommitB", unsafe.Offsetof(s.StatCommitB), 40},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, want %d", c.name, c.got, c.want)
		}
	}
}
