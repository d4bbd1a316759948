package ring

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestUnannouncedClaimCorrupt: a claimed (negative) record at the head of a
// multi-producer ring that no slot announces is corrupt (RING-28: claims
// are announced before the tail moves), whether it was there when the
// consumer attached or appeared later: every read reports ErrCorrupt, at
// once, and the ring's statistics count the consumer once.
func TestUnannouncedClaimCorrupt(t *testing.T) {
	for _, when := range []string{"before attach", "after attach"} {
		t.Run(when, func(t *testing.T) {
			r := newRing(t, 4096, &Options{MaxMessage: 256, Producers: 2})
			v := newView(t, r)
			plant := func() {
				v.put(v.doff, 8, uint64(uint32(0xfffffff0))|1<<32) // hdr(-16, 1)
				v.put(v.field("tail").off, 8, 16)
			}
			if when == "before attach" {
				plant()
			}
			c, err := r.Consumer()
			if err != nil {
				t.Fatalf("Consumer: %v", err)
			}
			defer c.Close()
			if when == "after attach" {
				if _, err := c.TryRead(); err != ErrEmpty {
					t.Fatalf("TryRead on an empty ring = %v, want ErrEmpty", err)
				}
				plant()
			}
			if _, err := c.TryRead(); !errors.Is(err, ErrCorrupt) {
				t.Errorf("TryRead = %v, want ErrCorrupt", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if _, err := c.ReadContext(ctx); !errors.Is(err, ErrCorrupt) {
				t.Errorf("ReadContext = %v, want ErrCorrupt", err)
			}
			if _, err := c.Receive(make([]byte, 256)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Receive = %v, want ErrCorrupt", err)
			}
			st, err := r.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Corruptions != 1 {
				t.Errorf("Stats().Corruptions = %d after three corrupt reads of one consumer, want 1", st.Corruptions)
			}
		})
	}
}

// TestLiveClaimNotCorrupt: a live producer process stopped after its claim
// CAS, before it wrote its record's header (0 at the head) or after it
// wrote the negated length, holds a claim that its slot covers: the
// consumer waits for it, over several looks at its peers, and never calls
// it corrupt; once the producer is killed, its claim is recovered and the
// consumer gets its death, then io.EOF.
func TestLiveClaimNotCorrupt(t *testing.T) {
	for _, point := range []string{"claim won", "claim header"} {
		t.Run(point, func(t *testing.T) {
			r := newRing(t, 4096, &Options{Producers: 2})
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cmd, out := startChild(t, "hookprod", r.Name(), point, "1", "1", "1")
			waitFor(t, out, "at "+point)
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			if _, err := c.ReadContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("ReadContext while a live producer holds its claim = %v, want context.DeadlineExceeded", err)
			}
			if _, err := c.TryRead(); err != ErrEmpty {
				t.Fatalf("TryRead while a live producer holds its claim = %v, want ErrEmpty", err)
			}
			cmd.Process.Kill()
			cmd.Wait()
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := c.ReadContext(ctx); !errors.Is(err, ErrPeerDead) {
				t.Fatalf("ReadContext after the producer was killed = %v, want ErrPeerDead", err)
			}
			if _, err := c.ReadContext(ctx); err != io.EOF {
				t.Fatalf("ReadContext after the death report = %v, want io.EOF", err)
			}
			st, _ := r.Stats()
			if st.Corruptions != 0 || st.DeadClaimsRecovered != 1 {
				t.Errorf("Stats: %d corruptions, %d dead claims recovered; want 0 and 1", st.Corruptions, st.DeadClaimsRecovered)
			}
		})
	}
}
