package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Regression tests from the adversarial review (notes/ringreview.md).

func init() {
	children["attachclose"] = childAttachClose
	children["attachpause"] = childAttachPause
	children["attachhang"] = childAttachHang
}

// attachEnd attaches end ("producer" or "consumer") to r.
func attachEnd(r *Ring, end string) (interface{ Close() error }, error) {
	if end == "producer" {
		return r.Producer()
	}
	return r.Consumer()
}

// childAttachClose: name end — attaches end and closes it.
func childAttachClose(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer r.Close()
	e, err := attachEnd(r, args[1])
	if err != nil {
		return childFail("attach: %v", err)
	}
	if err := e.Close(); err != nil {
		return childFail("close: %v", err)
	}
	return 0
}

// childAttachHang: name end — attaches end, says "attached" and waits to
// be killed.
func childAttachHang(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	if _, err := attachEnd(r, args[1]); err != nil {
		return childFail("attach: %v", err)
	}
	fmt.Println("attached")
	time.Sleep(time.Hour)
	return 0
}

// childAttachPause: name end flag — attaches end, stopping between taking
// the end (its PID stored) and storing its start token: it says
// "attaching" and waits there until the file flag exists. Then it says
// "attached" and closes the end.
func childAttachPause(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer r.Close()
	testHook = func(point string) {
		if point != args[1]+" attached" {
			return
		}
		fmt.Println("attaching")
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(args[2]); err == nil {
				break
			}
		}
	}
	e, err := attachEnd(r, args[1])
	if err != nil {
		return childFail("attach: %v", err)
	}
	fmt.Println("attached")
	e.Close()
	return 0
}

// TestAttachWindow: an end (the consumer, or a single-producer ring's
// producer) was held by one process, which closed it or was killed; a
// second process is attaching it, its PID stored but not yet its start
// token. A third attacher must get ErrBusy. Before the fix the first
// owner's token was left behind, so the second process looked like a
// reused PID: the third reaped it (counting a death) and took the end too,
// giving two producers or two consumers.
func TestAttachWindow(t *testing.T) {
	for _, end := range []string{"producer", "consumer"} {
		for _, how := range []string{"closed", "killed"} {
			t.Run(end+"/"+how, func(t *testing.T) {
				r := newRing(t, 1024, nil)
				if how == "closed" {
					runChild(t, "attachclose", r.Name(), end)
				} else {
					cmd, out := startChild(t, "attachhang", r.Name(), end)
					waitFor(t, out, "attached")
					cmd.Process.Kill()
					cmd.Wait()
				}
				flag := filepath.Join(t.TempDir(), "go")
				cmd, out := startChild(t, "attachpause", r.Name(), end, flag)
				waitFor(t, out, "attaching")
				e, err := attachEnd(r, end)
				if err == nil {
					e.Close()
				}
				deaths := r.h.Takeovers.Load()
				if err := os.WriteFile(flag, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				if werr := cmd.Wait(); werr != nil {
					t.Errorf("attaching child: %v\n%s", werr, out)
				}
				if !errors.Is(err, ErrBusy) {
					t.Fatalf("attaching the %s while another process is attaching it = %v, want ErrBusy", end, err)
				}
				want := uint32(0)
				if end == "producer" && how == "killed" {
					want = 1 // the killed producer, reaped by the second process
				}
				if deaths != want {
					t.Fatalf("%d producer deaths counted, want %d", deaths, want)
				}
			})
		}
	}
}

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
	// Q's death may be reported before or after P's message: once either way.
	_, err = c.ReceiveContext(ctx, buf)
	if errors.Is(err, ErrPeerDead) {
		_, err = c.ReceiveContext(ctx, buf)
	}
	if err != io.EOF {
		t.Fatalf("Receive after Close = %v, want io.EOF", err)
	}
}

// TestProducerAttachBusyMulti: a producer attaches to a multi-producer ring
// while the consumer and another producer move both positions between its
// loads of the head and the tail. Before the fix it compared the old head
// with the new tail and failed with ErrCorrupt.
func TestProducerAttachBusyMulti(t *testing.T) {
	r := newRing(t, 64, &Options{Producers: 2})
	c, _ := r.Consumer()
	p1, _ := r.Producer()
	msg, buf := make([]byte, 24), make([]byte, 64)
	for range 2 {
		if err := p1.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	testHook = func(point string) {
		if point != "producer positions" {
			return
		}
		for range 2 {
			if _, err := c.Receive(buf); err != nil {
				t.Error(err)
			}
			if err := p1.Send(msg); err != nil {
				t.Error(err)
			}
		}
	}
	p2, err := r.Producer()
	testHook = nil
	if err != nil {
		t.Fatalf("Producer on a busy ring: %v", err)
	}
	for range 2 {
		if _, err := c.Receive(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := p2.Send(msg); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Receive(buf); n != 24 || err != nil {
		t.Fatalf("Receive from the new producer = %d, %v", n, err)
	}
}
