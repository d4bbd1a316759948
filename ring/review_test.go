package ring

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Regression tests from the adversarial review (notes/ringreview.md).

// TestLostCASLeavesNoClaim: producer P announces a claim and loses the tail
// CAS to producer Q, a child process, which then dies holding that claim
// while the ring is full for P. The consumer must turn Q's claim into
// padding and deliver P's message. Before the fix P's slot kept naming Q's
// record, so the consumer took P, alive, for its claimant and waited
// forever.
func TestLostCASLeavesNoClaim(t *testing.T) {
	r := newRing(t, 64, &Options{Producers: 2})
	c, _ := r.Consumer()
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	// Move head and tail to 16, so that Q's 48-byte record fills the ring
	// to its end and no padding record can be claimed instead.
	if err := p.Send(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := c.Receive(buf); n != 8 || err != nil {
		t.Fatalf("Receive = %d, %v", n, err)
	}
	// The hook runs in the sending goroutine between P's announcement and
	// its CAS: it starts Q and lets P go on once Q holds the claim.
	var once sync.Once
	claimed := make(chan *exec.Cmd, 1)
	testHook = func(point string) {
		if point != "claim cas" {
			return
		}
		once.Do(func() {
			cmd, out := startChild(t, "claimhang", r.Name(), "0") // claims 40 bytes: a 48-byte record at 16
			for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "claimed") && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			claimed <- cmd
		})
	}
	t.Cleanup(func() { testHook = nil })
	// The sender must be gone before the ring is unmapped, even when the
	// test fails.
	sendCtx, cancelSend := context.WithCancel(context.Background())
	sent, done := make(chan error, 1), make(chan struct{})
	go func() { sent <- p.SendContext(sendCtx, make([]byte, 24)); close(done) }()
	t.Cleanup(func() { cancelSend(); <-done })
	var cmd *exec.Cmd
	select {
	case cmd = <-claimed:
	case err := <-sent:
		t.Fatalf("Send = %v before its CAS", err)
	}
	// P lost the CAS and waits for room: Q holds [16, 64).
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-sent:
		t.Fatalf("Send returned %v with the ring full", err)
	default:
	}
	cmd.Process.Kill()
	cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		n, err := c.ReceiveContext(ctx, buf)
		if errors.Is(err, ErrPeerDead) {
			continue
		}
		if err != nil {
			t.Fatalf("Receive after the claimant died: %v (want P's message)", err)
		}
		if n != 24 {
			t.Fatalf("Receive = %d bytes, want 24", n)
		}
		break
	}
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v", err)
	}
	p.Close()
	if _, err := c.ReceiveContext(ctx, buf); err != io.EOF {
		t.Fatalf("Receive after Close = %v, want io.EOF", err)
	}
}
