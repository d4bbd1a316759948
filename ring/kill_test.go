package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests that kill a peer process at each step of its protocol (test hooks
// in the child stop it there), and tests of live peers that look dead to
// PID-based liveness: in another PID namespace, or with their main thread
// gone.

func init() {
	children["hookprod"] = childHookProducer
	children["hookcons"] = childHookConsumer
	children["slowclaim"] = childSlowClaim
	if os.Getenv("SHM_TEST_CHILD") == "leaderexit" {
		// The main goroutine keeps the main thread, so that ending the
		// thread (childLeaderExit) ends the process's leader thread.
		runtime.LockOSThread()
	}
	children["leaderexit"] = childLeaderExit
}

// stopAt returns a test hook that stops the process (it says "at POINT"
// and sleeps until killed) at the nth time point is reached.
func stopAt(point string, nth int) func(string) {
	var mu sync.Mutex
	seen := 0
	return func(p string) {
		if p != point {
			return
		}
		mu.Lock()
		seen++
		hit := seen == nth
		mu.Unlock()
		if hit {
			fmt.Println("at " + point)
			time.Sleep(time.Hour)
		}
	}
}

// childHookProducer: name point nth id count — sends count messages
// (Claim, fill, Commit) and closes, stopping at the hook.
func childHookProducer(args []string) int {
	testHook = stopAt(args[1], atoi(args[2]))
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	p, err := r.Producer()
	if err != nil {
		return childFail("producer: %v", err)
	}
	id, count := uint64(atoi(args[3])), atoi(args[4])
	for seq := range uint64(count) {
		buf, err := p.Claim(size16(id, seq))
		if err != nil {
			return childFail("claim %d: %v", seq, err)
		}
		fill(buf, id, seq)
		if err := p.Commit(); err != nil {
			return childFail("commit %d: %v", seq, err)
		}
	}
	if err := p.Close(); err != nil {
		return childFail("close: %v", err)
	}
	fmt.Println("closed")
	r.Close()
	return 0
}

// childHookConsumer: name point nth — receives messages of producer 1,
// saying "got SEQ" for each once released, stopping at the hook.
func childHookConsumer(args []string) int {
	testHook = stopAt(args[1], atoi(args[2]))
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	c, err := r.Consumer()
	if err != nil {
		return childFail("consumer: %v", err)
	}
	for n := 0; ; n++ {
		msg, err := c.Read()
		if err != nil {
			return childFail("read: %v", err)
		}
		seq := binary.LittleEndian.Uint64(msg)
		if err := check16(msg, 1, seq); err != nil {
			return childFail("%v", err)
		}
		if err := c.Release(); err != nil {
			return childFail("release: %v", err)
		}
		fmt.Printf("got %d\n", seq)
	}
}

// collect receives until io.EOF, checking that each producer's messages
// arrive in order, whole, without gaps or repeats from first on; it
// returns how many of each producer came and how many ErrPeerDead.
func collect(t *testing.T, c *Consumer, first map[uint64]uint64, timeout time.Duration) (map[uint64]uint64, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	next := map[uint64]uint64{}
	for id, f := range first {
		next[id] = f
	}
	dead := 0
	buf := make([]byte, 256)
	for {
		n, err := c.ReceiveContext(ctx, buf)
		if err == io.EOF {
			return next, dead
		}
		if errors.Is(err, ErrPeerDead) {
			dead++
			continue
		}
		if err != nil {
			t.Fatalf("Receive after %v: %v", next, err)
		}
		msg := buf[:n]
		if n < 16 {
			t.Fatalf("message of %d bytes, want at least 16", n)
		}
		seq, id := binary.LittleEndian.Uint64(msg), binary.LittleEndian.Uint64(msg[8:])
		if seq != next[id] {
			t.Fatalf("message %d of producer %d, want message %d (lost or repeated)", seq, id, next[id])
		}
		if err := check16(msg, id, seq); err != nil {
			t.Fatal(err)
		}
		next[id]++
	}
}

// sendAll sends count messages of producer id (16..200 bytes) and closes.
func sendAll(t *testing.T, r *Ring, id uint64, count int) {
	t.Helper()
	p, err := r.Producer()
	if err != nil {
		t.Errorf("producer %d: %v", id, err)
		return
	}
	sendOn(t, p, id, count)
}

// sendOn sends count messages of producer id on p and closes p.
func sendOn(t *testing.T, p *Producer, id uint64, count int) {
	t.Helper()
	buf := make([]byte, 200)
	for seq := range uint64(count) {
		m := buf[:size16(id, seq)]
		fill(m, id, seq)
		err := p.Send(m)
		for tries := 0; errors.Is(err, ErrPeerDead) && tries < 1000; tries++ {
			// The consumer died; a new one is coming.
			time.Sleep(10 * time.Millisecond)
			err = p.Send(m)
		}
		if err != nil {
			t.Errorf("producer %d: Send %d: %v", id, seq, err)
			return
		}
	}
	p.Close()
}

// size16 is the size of message seq of producer id in these tests,
// 16..200 bytes, so that each carries its sequence number and producer.
func size16(id, seq uint64) int { return 15 + sizeFor(id, seq, 185) }

// check16 verifies that msg is message seq of producer id.
func check16(msg []byte, id, seq uint64) error {
	if want := size16(id, seq); len(msg) != want {
		return fmt.Errorf("message %d of producer %d: %d bytes, want %d", seq, id, len(msg), want)
	}
	want := make([]byte, len(msg))
	fill(want, id, seq)
	if string(msg) != string(want) {
		return fmt.Errorf("message %d of producer %d: contents differ", seq, id)
	}
	return nil
}

// TestKillProducerAtEveryStep kills a producer process at each step of
// attach, claim, commit and close; the consumer gets every message the
// producer committed, each once and whole, then a second producer's, then
// io.EOF once both are gone.
func TestKillProducerAtEveryStep(t *testing.T) {
	points := []struct {
		point string
		nth   int
		multi bool // only on a multi-producer ring
	}{
		{"producer attached", 1, false},
		{"producer counted", 1, false},
		{"producer positions", 1, false},
		{"claim cas", 5, true},
		{"claim won", 5, true},
		{"claim padded", 1, true},
		{"claim header", 5, true},
		{"commit header", 5, true},
		{"producer close padded", 1, true},
		{"producer close claim", 1, false},
		{"producer close slot", 1, false},
	}
	for _, producers := range []int{1, 3} {
		for _, pt := range points {
			if pt.multi && producers == 1 {
				continue
			}
			t.Run(fmt.Sprintf("%s/producers=%d", pt.point, producers), func(t *testing.T) {
				r := newRing(t, 4096, &Options{Producers: producers})
				c, err := r.Consumer()
				if err != nil {
					t.Fatal(err)
				}
				count := 60
				if pt.point == "claim padded" {
					count = 400
				}
				// A second producer, attached before the child so that the
				// consumer's io.EOF waits for it too.
				var p2 *Producer
				if producers > 1 {
					if p2, err = r.Producer(); err != nil {
						t.Fatal(err)
					}
				}
				if pt.point == "producer close padded" {
					// Close with a claim open: the child claims and
					// closes without committing.
					count = 0
				}
				cmd, out := startChild(t, "hookprod", r.Name(), pt.point, strconv.Itoa(pt.nth), "1", strconv.Itoa(count))
				if pt.point == "producer close padded" {
					cmd.Process.Kill()
					cmd.Wait()
					cmd, out = startChild(t, "claimclose", r.Name())
				}
				// Receive while the child sends, until it stops at the hook.
				var got map[uint64]uint64
				var dead int
				done := make(chan struct{})
				go func() {
					defer close(done)
					got, dead = collect(t, c, map[uint64]uint64{1: 0, 2: 0}, 30*time.Second)
				}()
				waitFor(t, out, "at "+pt.point)
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				if p2 != nil {
					sendOn(t, p2, 2, 20)
				}
				select {
				case <-done:
				case <-time.After(40 * time.Second):
					t.Fatal("no io.EOF after every producer went")
				}
				if t.Failed() {
					return
				}
				if got[2] != 20 && producers > 1 {
					t.Errorf("%d messages of the second producer, want 20", got[2])
				}
				min := uint64(pt.nth - 1)
				if strings.HasPrefix(pt.point, "producer") {
					min = 0
					if strings.Contains(pt.point, "close") {
						min = uint64(count)
					}
				}
				if got[1] < min {
					t.Errorf("%d messages of the killed producer, want at least %d (its committed ones)", got[1], min)
				}
				if dead > 1 {
					t.Errorf("%d ErrPeerDead for one death", dead)
				}
				t.Logf("killed at %q: %d of its messages, %d ErrPeerDead", pt.point, got[1], dead)
			})
		}
	}
}

func init() { children["claimclose"] = childClaimClose }

// childClaimClose: name — claims 40 bytes and closes without committing,
// stopping inside Close after the claim became padding.
func childClaimClose(args []string) int {
	testHook = stopAt("producer close padded", 1)
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	p, err := r.Producer()
	if err != nil {
		return childFail("producer: %v", err)
	}
	if _, err := p.Claim(40); err != nil {
		return childFail("claim: %v", err)
	}
	p.Close()
	return 0
}

// TestKillConsumerAtEveryStep kills the consumer process while it attaches,
// releases a message or closes; a new consumer takes over and receives
// the rest, with no message lost and none delivered partly zeroed.
func TestKillConsumerAtEveryStep(t *testing.T) {
	points := []struct {
		point string
		nth   int
		multi bool
	}{
		{"consumer attached", 1, false},
		{"release padded", 7, true},
		{"release cleared", 7, true},
		{"release header zeroed", 7, true},
	}
	for _, producers := range []int{1, 2} {
		for _, pt := range points {
			if pt.multi && producers == 1 {
				continue
			}
			t.Run(fmt.Sprintf("%s/producers=%d", pt.point, producers), func(t *testing.T) {
				r := newRing(t, 4096, &Options{Producers: producers})
				const count = 100
				sent := make(chan struct{})
				go func() { defer close(sent); sendAll(t, r, 1, count) }()
				cmd, out := startChild(t, "hookcons", r.Name(), pt.point, strconv.Itoa(pt.nth))
				waitFor(t, out, "at "+pt.point)
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				// The last message the child released whole.
				var first uint64
				for _, l := range strings.Split(out.String(), "\n") {
					if s, ok := strings.CutPrefix(l, "got "); ok {
						first = uint64(atoi(s)) + 1
					}
				}
				var c *Consumer
				var err error
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
					if c, err = r.Consumer(); err == nil || time.Now().After(deadline) {
						break
					}
				}
				if err != nil {
					t.Fatalf("Consumer after the old one died: %v", err)
				}
				// The message being released when the child died was
				// delivered to it: once its release has begun it is
				// padding, never delivered again, and never partly zeroed.
				buf := make([]byte, 256)
				n, err := c.Receive(buf)
				if err != nil {
					t.Fatal(err)
				}
				seq := binary.LittleEndian.Uint64(buf)
				if err := check16(buf[:n], 1, seq); err != nil {
					t.Fatalf("first message for the new consumer: %v", err)
				}
				switch pt.point {
				case "release padded":
					if seq != first+1 {
						t.Fatalf("first message for the new consumer is %d, want %d", seq, first+1)
					}
				case "release cleared", "release header zeroed": // the child may have been clearing padding
					if seq != first && seq != first+1 {
						t.Fatalf("first message for the new consumer is %d, want %d or %d", seq, first, first+1)
					}
				default:
					if seq != first {
						t.Fatalf("first message for the new consumer is %d, want %d", seq, first)
					}
				}
				got, _ := collect(t, c, map[uint64]uint64{1: seq + 1}, 30*time.Second)
				<-sent
				if got[1] != count {
					t.Fatalf("received up to message %d, want %d", got[1], count)
				}
			})
		}
	}
}

// childSlowClaim: name hold — claims 100 bytes, says "claimed", holds the
// claim for hold milliseconds, fills and commits it, says "committed" and
// closes.
func childSlowClaim(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	p, err := r.Producer()
	if err != nil {
		return childFail("producer: %v", err)
	}
	buf, err := p.Claim(100)
	if err != nil {
		return childFail("claim: %v", err)
	}
	fmt.Println("claimed")
	time.Sleep(time.Duration(atoi(args[1])) * time.Millisecond)
	fill(buf, 7, 7)
	if err := p.Commit(); err != nil {
		return childFail("commit: %v", err)
	}
	fmt.Println("committed")
	if err := p.Close(); err != nil {
		return childFail("close: %v", err)
	}
	r.Close()
	return 0
}

// childLeaderExit is childSlowClaim in a process whose main thread has
// exited (exit(2), not exit_group) while its other threads run on: a C
// main that ends with pthread_exit, or a Go c-shared library in such a
// host. The main goroutine is locked to the main thread (see init).
func childLeaderExit(args []string) int {
	// Nothing may stop the world from now on: the main goroutine's thread
	// is gone, and a stop-the-world would wait for it forever.
	debug.SetGCPercent(-1)
	go func() {
		code := childSlowClaim(args)
		fmt.Println("done")
		os.Exit(code)
	}()
	time.Sleep(50 * time.Millisecond)
	exitThread()
	return 0
}

// slowClaimWithPadding: a live producer process holds, for longer than any
// liveness check interval, a claim that begins with padding at the end of
// the ring; the consumer, blocked meanwhile, passes the padding and must
// wait for the record, never pad over it. Under layout 1 the claim word
// named the padding's position, which the consumer had passed: about
// 100 ms later it took the live producer for dead and lost its message.
func slowClaimWithPadding(t *testing.T, role string) {
	r := newRing(t, 256, &Options{Producers: 2})
	c, _ := r.Consumer()
	p, _ := r.Producer()
	buf := make([]byte, 256)
	for range 3 { // head and tail at 192
		if err := p.Send(make([]byte, 56)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Receive(buf); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	cmd, out := startChild(t, role, r.Name(), "1500")
	waitFor(t, out, "claimed")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	n, err := c.ReceiveContext(ctx, buf)
	if err != nil {
		t.Fatalf("Receive while a live producer holds its claim = %v after %v, want its message\n%s", err, time.Since(start), out)
	}
	if n != 100 {
		t.Fatalf("Receive = %d bytes, want the slow producer's 100", n)
	}
	want := make([]byte, 100)
	fill(want, 7, 7)
	if string(buf[:n]) != string(want) {
		t.Fatal("the slow producer's message arrived damaged")
	}
	if _, err := c.ReceiveContext(ctx, buf); err != io.EOF {
		t.Fatalf("Receive after the producer closed = %v, want io.EOF", err)
	}
	cmd.Wait()
}

func TestSlowClaimWithPadding(t *testing.T) { slowClaimWithPadding(t, "slowclaim") }

// TestLeaderExited: the slow producer's main thread has exited; the
// process lives on and must not be taken for dead.
func TestLeaderExited(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("exit(2) of the main thread alone: Linux")
	}
	slowClaimWithPadding(t, "leaderexit")
}

// unshareCommand returns a command that runs this test binary as a child
// in role, in a PID namespace of its own (as PID 1 there), killed with it.
func unshareCommand(t *testing.T, role string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("PID namespaces: Linux")
	}
	path, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1)")
	}
	if out, err := exec.Command(path, "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare --pid --fork --mount-proc is not permitted here (%v: %s); run as root", err, strings.TrimSpace(string(out)))
	}
	cmd := childtestCommand(t, role, args...)
	cmd.Args = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = path
	out := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out
}

// TestPIDNamespace: a producer or a consumer in another PID namespace is
// never taken for dead or taken over while it lives, and is found dead soon
// after SIGKILL.
func TestPIDNamespace(t *testing.T) {
	hold := 1500 * time.Millisecond
	t.Run("producer in namespace", func(t *testing.T) {
		r := newRing(t, 1024, nil)
		c, _ := r.Consumer()
		cmd, out := unshareCommand(t, "attachhang", r.Name(), "producer")
		waitFor(t, out, "attached")
		if _, err := r.Producer(); !errors.Is(err, ErrBusy) {
			t.Fatalf("Producer while the namespaced producer lives = %v, want ErrBusy", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), hold)
		defer cancel()
		if _, err := c.ReceiveContext(ctx, make([]byte, 64)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("blocked Receive while the producer lives = %v, want DeadlineExceeded", err)
		}
		res := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.ReceiveContext(ctx, make([]byte, 64))
			res <- err
		}()
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		cmd.Process.Signal(syscall.SIGKILL)
		err := <-res
		d := time.Since(start)
		t.Logf("SIGKILL to ErrPeerDead: %v", d)
		if d >= sleepMax {
			// Only the once-a-second look found it: the kernel's notice
			// (AfterPeer) did not come.
			t.Errorf("ErrPeerDead %v after SIGKILL, want well under %v", d, sleepMax)
		}
		if !errors.Is(err, ErrPeerDead) {
			t.Fatalf("Receive after the producer was killed = %v, want ErrPeerDead", err)
		}
	})
	t.Run("consumer in namespace", func(t *testing.T) {
		r := newRing(t, 1024, nil)
		cmd, out := unshareCommand(t, "attachhang", r.Name(), "consumer")
		waitFor(t, out, "attached")
		if _, err := r.Consumer(); !errors.Is(err, ErrBusy) {
			t.Fatalf("Consumer while the namespaced consumer lives = %v, want ErrBusy", err)
		}
		p, _ := r.Producer()
		for p.TrySend(make([]byte, 100)) == nil {
		}
		ctx, cancel := context.WithTimeout(context.Background(), hold)
		defer cancel()
		if err := p.SendContext(ctx, make([]byte, 100)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("blocked Send while the consumer lives = %v, want DeadlineExceeded", err)
		}
		res := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res <- p.SendContext(ctx, make([]byte, 100))
		}()
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		cmd.Process.Signal(syscall.SIGKILL)
		err := <-res
		d := time.Since(start)
		t.Logf("SIGKILL to ErrPeerDead: %v", d)
		if d >= sleepMax {
			// Only the once-a-second look found it: the kernel's notice
			// (AfterPeer) did not come.
			t.Errorf("ErrPeerDead %v after SIGKILL, want well under %v", d, sleepMax)
		}
		if !errors.Is(err, ErrPeerDead) {
			t.Fatalf("Send after the consumer was killed = %v, want ErrPeerDead", err)
		}
		if _, err := r.Consumer(); err != nil {
			t.Fatalf("Consumer after the namespaced one died: %v", err)
		}
	})
}
