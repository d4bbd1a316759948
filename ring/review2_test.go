package ring

import (
	"errors"
	"testing"
)

// Second adversarial review of layout version 2.

func init() { children["r2attachexit"] = childR2AttachExit }

// childR2AttachExit: name — attaches a producer and exits without closing,
// leaving a dead token in its slot and no claim.
func childR2AttachExit(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	if _, err := r.Producer(); err != nil {
		return childFail("producer: %v", err)
	}
	return 0
}

// TestReapRacesTakeover: the consumer decides to reap a dead producer's
// slot (no claim left); before it clears the slot's claim end a new
// producer takes the slot over and announces a claim. The consumer's blind
// ClaimEnd store erased that live claim's announcement, so the consumer
// stuck on the live claimant's record found no slot covering it
// (ErrCorrupt) or, with a stale dead announcement covering it, padded over
// a live claimant.
func TestReapRacesTakeover(t *testing.T) {
	name := testName(t)
	r, err := Create(name, 4096, &Options{Producers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	runChild(t, "r2attachexit", name)
	if r.slots[0].Token.Load() == 0 {
		t.Fatal("child left no token in slot 0")
	}
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	var p *Producer
	var herr error
	testHook = func(point string) {
		if point != "consumer reap" || p != nil || herr != nil {
			return
		}
		if p, herr = r.Producer(); herr != nil {
			return
		}
		if _, herr = p.Claim(10); herr != nil {
			return
		}
	}
	defer func() { testHook = nil }()
	buf := make([]byte, 64)
	_, err = c.TryReceive(buf)
	testHook = nil
	if herr != nil {
		t.Fatal(herr)
	}
	if p == nil {
		t.Fatal("hook not reached")
	}
	if r.slots[0].Token.Load() != r.tok {
		t.Fatalf("the new producer did not take slot 0 over")
	}
	if e := r.slots[0].ClaimEnd.Load(); e == 0 {
		t.Errorf("the live producer's claim announcement was erased by the reap")
	}
	if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrPeerDead) {
		t.Fatalf("TryReceive = %v, want ErrEmpty or ErrPeerDead", err)
	}
	for range 3 {
		_, err = c.TryReceive(buf)
		if errors.Is(err, ErrCorrupt) {
			t.Fatalf("TryReceive while a live producer holds its claim: %v", err)
		}
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if n, err := c.TryReceive(buf); err == nil {
			if n != 10 {
				t.Fatalf("got %d bytes, want 10", n)
			}
			return
		} else if !errors.Is(err, ErrPeerDead) && !errors.Is(err, ErrEmpty) {
			t.Fatal(err)
		}
	}
	t.Fatal("the committed message did not arrive")
}

// TestConsumerKilledAfterHeaderZero: a multi-producer consumer killed in
// Release after it stored the record header 0 but before it stored H
// (README step 10: padding, zero payload, header 0, H) leaves a zero header
// at H below T that no slot covers: its successor reports ErrCorrupt for
// ever instead of going on with the next message. The state is made
// directly: a dead process's stores are all visible, so this is exactly
// what SIGKILL at that instruction leaves.
func TestConsumerKilledAfterHeaderZero(t *testing.T) {
	name := testName(t)
	r, err := Create(name, 4096, &Options{Producers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := p.Send([]byte("second")); err != nil {
		t.Fatal(err)
	}
	// The dead consumer's release of "first": header padding, payload
	// zeroed, header 0; H not yet stored.
	length, _ := unpack(r.words[0].Load())
	size := align(uint64(length))
	r.words[0].Store(pack(int32(size), typePadding))
	clear(r.data[recordHeader:size])
	r.words[0].Store(0)
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.TryReceive(buf)
	if err != nil || string(buf[:n]) != "second" {
		t.Fatalf("TryReceive = %q, %v; want \"second\": a consumer killed between the header-0 store and the H store left a zero header at H that no slot covers", buf[:n], err)
	}
}
