package ring

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mindmeld-go/shm/internal/childtest"
)

// Tests that a blocked end learns promptly that its last peer closed: the
// close's wake must reach an end about to sleep (RING-23, RING-24), not
// wait for the end's timed look at its peers, a second later.

func init() {
	children["closeround"] = childCloseRound
}

// eofRounds is how many closes each test times; the delay before each
// close varies over 0-20 ms, so that the close meets the blocked end
// spinning, yielding, about to sleep and asleep.
const eofRounds = 50

// eofBound is the most a close may take to reach the blocked end. It is a
// correctness bound, far above any honest wake-up (well under a
// millisecond) and far below the one-second timed look that hides a
// missed wake.
const eofBound = 500 * time.Millisecond

// childCloseRound: name producer|consumer — on each line "go DELAY" of its
// standard input, attaches as that end, says "attached", sends one message
// if a producer, sleeps DELAY microseconds, closes the end and says
// "closed NANOS" with the wall-clock time, in nanoseconds, just before
// Close. It exits at the end of its input.
func childCloseRound(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer r.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		us, err := strconv.Atoi(strings.TrimPrefix(in.Text(), "go "))
		if err != nil {
			return childFail("bad line %q", in.Text())
		}
		var end interface{ Close() error }
		if args[1] == "producer" {
			p, err := r.Producer()
			if err != nil {
				return childFail("producer: %v", err)
			}
			fmt.Println("attached")
			if err := p.Send([]byte("round")); err != nil {
				return childFail("send: %v", err)
			}
			end = p
		} else {
			c, err := r.Consumer()
			if err != nil {
				return childFail("consumer: %v", err)
			}
			fmt.Println("attached")
			end = c
		}
		time.Sleep(time.Duration(us) * time.Microsecond)
		t0 := time.Now().UnixNano()
		if err := end.Close(); err != nil {
			return childFail("close: %v", err)
		}
		fmt.Printf("closed %d\n", t0)
	}
	return 0
}

// closeRounds starts a closeround child for role on r and runs eofRounds
// rounds: each writes "go DELAY", waits for "attached", runs blocked (which
// must block until the child's end closes and return the error that
// close causes) and times it from the child's "closed" line. It fails the
// test for a round over eofBound and logs the delays.
func closeRounds(t *testing.T, r *Ring, role string, blocked func() error) {
	t.Helper()
	cmd := childtestCommand(t, "closeround", r.Name(), role)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v\n%s", err, stderr)
		}
	})
	lines := bufio.NewScanner(stdout)
	line := func(prefix string) string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("child ended (%v) before saying %q\n%s", lines.Err(), prefix, stderr)
		}
		s, ok := strings.CutPrefix(lines.Text(), prefix)
		if !ok {
			t.Fatalf("child said %q, want %q", lines.Text(), prefix)
		}
		return s
	}
	var delays []time.Duration
	for i := range eofRounds {
		us := i * 397 % 20000
		if _, err := fmt.Fprintf(stdin, "go %d\n", us); err != nil {
			t.Fatalf("round %d: writing to the child: %v\n%s", i, err, stderr)
		}
		line("attached")
		err := blocked()
		t1 := time.Now()
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		t0, err := strconv.ParseInt(line("closed "), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		d := t1.Sub(time.Unix(0, t0))
		if d > eofBound {
			t.Errorf("round %d (close after %d µs): the blocked end saw the close %v after it, want at most %v", i, us, d, eofBound)
		}
		delays = append(delays, d)
	}
	slices.Sort(delays)
	t.Logf("close to blocked end: median %v, max %v over %d rounds", delays[len(delays)/2], delays[len(delays)-1], len(delays))
}

// TestEOFPromptAfterClose: a producer process attaches, sends one message
// and closes, over and over; the consumer, blocked in Receive meanwhile,
// must get io.EOF within eofBound of the Close.
func TestEOFPromptAfterClose(t *testing.T) {
	childtest.SkipIfEmulated(t, "times the wake-up of a blocked consumer")
	for _, tc := range []struct {
		name string
		opts *Options
	}{
		{"single", nil},
		{"multi", &Options{Producers: 2}},
		{"polling", &Options{Polling: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(t, 4096, tc.opts)
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 64)
			closeRounds(t, r, "producer", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if n, err := c.ReceiveContext(ctx, buf); err != nil || string(buf[:n]) != "round" {
					return fmt.Errorf("ReceiveContext = %q, %v, want the round's message", buf[:n], err)
				}
				if _, err := c.ReceiveContext(ctx, buf); err != io.EOF {
					return fmt.Errorf("ReceiveContext after the message = %v, want io.EOF", err)
				}
				return nil
			})
		})
	}
}

// TestPeerClosedPrompt is the mirror: a consumer process attaches and
// closes, over and over, while a producer of this process is blocked in
// Send on the full ring; Send must fail with ErrPeerClosed within eofBound
// of the Close.
func TestPeerClosedPrompt(t *testing.T) {
	childtest.SkipIfEmulated(t, "times the wake-up of a blocked producer")
	for _, tc := range []struct {
		name string
		opts *Options
	}{
		{"single", nil},
		{"multi", &Options{Producers: 2}},
		{"polling", &Options{Polling: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(t, 4096, tc.opts)
			p, err := r.Producer()
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			msg := make([]byte, 100)
			for {
				if err := p.TrySend(msg); err == ErrFull {
					break
				} else if err != nil {
					t.Fatalf("TrySend filling the ring: %v", err)
				}
			}
			closeRounds(t, r, "consumer", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := p.SendContext(ctx, msg); !errors.Is(err, ErrPeerClosed) {
					return fmt.Errorf("SendContext on a full ring = %v, want ErrPeerClosed", err)
				}
				return nil
			})
		})
	}
}
