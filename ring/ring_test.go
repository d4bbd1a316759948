package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mindmeld-go/shm"
)

func init() {
	children["send"] = childSend
	children["sendmp"] = childSendMP
	children["claimhang"] = childClaimHang
	children["recvhang"] = childRecvHang
	children["recvall"] = childRecvAll
}

// pattern is the source of message contents: message seq of size n is
// pattern[off:off+n] with its first bytes replaced by seq.
var pattern = func() []byte {
	b := make([]byte, 1<<17)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}()

func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// fill writes message seq of producer id into buf (len(buf) is its size).
func fill(buf []byte, id, seq uint64) {
	off := mix(seq^id<<48) % (uint64(len(pattern)) / 2)
	copy(buf, pattern[off:off+uint64(len(buf))])
	var hdr [16]byte
	binary.LittleEndian.PutUint64(hdr[:], seq)
	binary.LittleEndian.PutUint64(hdr[8:], id)
	copy(buf, hdr[:])
}

// sizeFor is the size of message seq of producer id, in 1..max.
func sizeFor(id, seq uint64, max int) int { return 1 + int(mix(seq+id<<40)%uint64(max)) }

// check verifies that msg is message seq of producer id.
func check(msg []byte, id, seq uint64, max int) error {
	if want := sizeFor(id, seq, max); len(msg) != want {
		return fmt.Errorf("message %d of producer %d: %d bytes, want %d", seq, id, len(msg), want)
	}
	want := make([]byte, len(msg))
	fill(want, id, seq)
	if !bytes.Equal(msg, want) {
		return fmt.Errorf("message %d of producer %d: contents differ", seq, id)
	}
	return nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// childSend: name count max id — sends count messages and closes.
func childSend(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer r.Close()
	p, err := r.Producer()
	if err != nil {
		return childFail("producer: %v", err)
	}
	count, max, id := atoi(args[1]), atoi(args[2]), uint64(atoi(args[3]))
	for seq := range uint64(count) {
		buf, err := p.Claim(sizeFor(id, seq, max))
		if err != nil {
			return childFail("claim %d: %v", seq, err)
		}
		fill(buf, id, seq)
		p.Commit()
	}
	if err := p.Close(); err != nil {
		return childFail("close: %v", err)
	}
	return 0
}

// childSendMP is childSend with Send instead of Claim.
func childSendMP(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer r.Close()
	p, err := r.Producer()
	if err != nil {
		return childFail("producer: %v", err)
	}
	count, max, id := atoi(args[1]), atoi(args[2]), uint64(atoi(args[3]))
	buf := make([]byte, max)
	for seq := range uint64(count) {
		m := buf[:sizeFor(id, seq, max)]
		fill(m, id, seq)
		if err := p.Send(m); err != nil {
			return childFail("send %d: %v", seq, err)
		}
	}
	p.Close()
	return 0
}

// childClaimHang: name n — sends n messages of 8 bytes, then claims one
// more, says "claimed" and waits to be killed.
func childClaimHang(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	p, err := r.Producer()
	if err != nil {
		return childFail("producer: %v", err)
	}
	for i := range atoi(args[1]) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		if err := p.Send(b[:]); err != nil {
			return childFail("send: %v", err)
		}
	}
	if _, err := p.Claim(40); err != nil {
		return childFail("claim: %v", err)
	}
	fmt.Println("claimed")
	time.Sleep(time.Hour)
	return 0
}

// childRecvHang: name n — receives n messages, says "received" and waits
// to be killed without releasing the next one it reads.
func childRecvHang(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	c, err := r.Consumer()
	if err != nil {
		return childFail("consumer: %v", err)
	}
	buf := make([]byte, r.MaxMessage())
	for range atoi(args[1]) {
		if _, err := c.Receive(buf); err != nil {
			return childFail("receive: %v", err)
		}
	}
	fmt.Println("received")
	time.Sleep(time.Hour)
	return 0
}

// childRecvAll: name — receives until EOF and prints the count.
func childRecvAll(args []string) int {
	r, err := Open(args[0], nil)
	if err != nil {
		return childFail("open: %v", err)
	}
	defer r.Close()
	c, err := r.Consumer()
	if err != nil {
		return childFail("consumer: %v", err)
	}
	buf := make([]byte, r.MaxMessage())
	n := 0
	for {
		_, err := c.Receive(buf)
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, ErrPeerDead) {
			return childFail("receive: %v", err)
		}
		if err == nil {
			n++
		}
	}
	fmt.Println(n)
	return 0
}

func newRing(t *testing.T, capacity int, opts *Options) *Ring {
	t.Helper()
	r, err := Create(testName(t), capacity, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestTwoProcesses sends 10 million messages of random sizes from a child
// process and checks each one's sequence number, size and contents.
func TestTwoProcesses(t *testing.T) {
	count := 10_000_000
	if testing.Short() || raceEnabled {
		count = 200_000
	}
	const max = 256
	r := newRing(t, 1<<20, &Options{MaxMessage: max})
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := startChild(t, "send", r.Name(), strconv.Itoa(count), strconv.Itoa(max), "0")
	var seq uint64
	for {
		msg, err := c.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read after %d messages: %v", seq, err)
		}
		if err := check(msg, 0, seq, max); err != nil {
			t.Fatal(err)
		}
		c.Release()
		seq++
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("producer: %v\n%s", err, out)
	}
	if seq != uint64(count) {
		t.Fatalf("received %d messages, want %d", seq, count)
	}
}

// TestManyProducers runs producers in separate processes on a
// multi-producer ring and checks per-producer order and totals.
func TestManyProducers(t *testing.T) {
	const producers, max = 4, 300
	count := 250_000
	if testing.Short() || raceEnabled {
		count = 20_000
	}
	r := newRing(t, 1<<16, &Options{MaxMessage: max, Producers: producers})
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*syncBuffer
	var procs []interface{ Wait() error }
	for id := range producers {
		role := "send"
		if id%2 == 1 {
			role = "sendmp"
		}
		cmd, out := startChild(t, role, r.Name(), strconv.Itoa(count), strconv.Itoa(max), strconv.Itoa(id+1))
		procs = append(procs, cmd)
		cmds = append(cmds, out)
	}
	next := make([]uint64, producers+1)
	total := 0
	buf := make([]byte, max)
	for {
		n, err := c.Receive(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Receive after %d messages: %v", total, err)
		}
		msg := buf[:n]
		if n < 16 {
			// Too short to carry the producer id: find it by trying each.
			found := false
			for id := 1; id <= producers; id++ {
				if check(msg, uint64(id), next[id], max) == nil {
					next[id]++
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("short message %x matches no producer's next message", msg)
			}
		} else {
			id := binary.LittleEndian.Uint64(msg[8:])
			if id < 1 || id > producers {
				t.Fatalf("message from unknown producer %d", id)
			}
			if err := check(msg, id, next[id], max); err != nil {
				t.Fatal(err)
			}
			next[id]++
		}
		total++
	}
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("producer %d: %v\n%s", i+1, err, cmds[i])
		}
	}
	for id := 1; id <= producers; id++ {
		if next[id] != uint64(count) {
			t.Errorf("producer %d: %d messages received, want %d", id, next[id], count)
		}
	}
}

// TestWrapEveryAlignment starts the ring at every 8-byte offset and sends
// every message size across the end, on both kinds of ring.
func TestWrapEveryAlignment(t *testing.T) {
	for _, producers := range []int{1, 2} {
		const capacity = 128
		r := newRing(t, capacity, &Options{Producers: producers})
		p, _ := r.Producer()
		c, _ := r.Consumer()
		buf := make([]byte, capacity)
		for start := 0; start < capacity; start += 8 {
			for size := 1; size <= capacity-8; size++ {
				// Move head and tail to offset start.
				for off := r.h.Tail.Load() & r.mask; off != uint64(start); off = r.h.Tail.Load() & r.mask {
					d := (uint64(start) - off) & r.mask
					if off+d > capacity {
						d = capacity - off
					}
					if err := p.TrySend(make([]byte, d-8)); err != nil {
						t.Fatalf("filler %d: %v", d-8, err)
					}
					if _, err := c.TryReceive(buf); err != nil {
						t.Fatalf("filler receive: %v", err)
					}
				}
				msg := make([]byte, size)
				fill(msg, 9, uint64(start*1000+size))
				// A record that needs more than the room after the padding
				// at the end waits for the consumer to pass the padding.
				sent := make(chan error, 1)
				go func() { sent <- p.Send(msg) }()
				n, err := c.Receive(buf)
				if err := <-sent; err != nil {
					t.Fatalf("start %d size %d: Send: %v", start, size, err)
				}
				if err != nil || !bytes.Equal(buf[:n], msg) {
					t.Fatalf("start %d size %d: Receive = %d, %v; contents equal: %v", start, size, n, err, bytes.Equal(buf[:n], msg))
				}
				if _, err := c.TryReceive(buf); !errors.Is(err, ErrEmpty) {
					t.Fatalf("start %d size %d: second TryReceive = %v, want ErrEmpty", start, size, err)
				}
			}
		}
	}
}

// TestExactFill sends a message whose record fills the whole ring, from the
// start and from the middle of the ring.
func TestExactFill(t *testing.T) {
	for _, producers := range []int{1, 3} {
		r := newRing(t, 256, &Options{Producers: producers})
		p, _ := r.Producer()
		c, _ := r.Consumer()
		big := make([]byte, 256-8)
		fill(big, 1, 1)
		if err := p.TrySend(big); err != nil {
			t.Fatalf("exact fill at 0: %v", err)
		}
		if err := p.TrySend([]byte{1}); !errors.Is(err, ErrFull) {
			t.Fatalf("TrySend on a full ring = %v, want ErrFull", err)
		}
		buf := make([]byte, 256)
		if n, err := c.Receive(buf); err != nil || !bytes.Equal(buf[:n], big) {
			t.Fatalf("Receive exact fill = %d, %v", n, err)
		}
		// From the middle: the producer pads to the end, waits for the
		// consumer to pass the padding, then fills the ring.
		p.Send(make([]byte, 100))
		c.Receive(buf)
		done := make(chan error)
		go func() { done <- p.Send(big) }()
		if n, err := c.Receive(buf); err != nil || !bytes.Equal(buf[:n], big) {
			t.Fatalf("Receive exact fill from the middle = %d, %v", n, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Send exact fill from the middle: %v", err)
		}
	}
}

func TestTooLarge(t *testing.T) {
	r := newRing(t, 1024, &Options{MaxMessage: 100})
	p, _ := r.Producer()
	if err := p.Send(make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Send(101 bytes) with max 100 = %v, want ErrTooLarge", err)
	}
	if _, err := p.Claim(1 << 20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Claim(1 MiB) = %v, want ErrTooLarge", err)
	}
	if err := p.Send(make([]byte, 100)); err != nil {
		t.Fatalf("Send(100 bytes) with max 100 = %v", err)
	}
	c, _ := r.Consumer()
	if _, err := c.Receive(make([]byte, 10)); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("Receive into a short buffer = %v, want io.ErrShortBuffer", err)
	}
	if n, err := c.Receive(make([]byte, 100)); n != 100 || err != nil {
		t.Fatalf("Receive after short buffer = %d, %v; want 100, nil", n, err)
	}
}

func TestBadOptionsAndHeaders(t *testing.T) {
	for _, c := range []struct {
		capacity int
		opts     Options
	}{{100, Options{}}, {32, Options{}}, {1024, Options{MaxMessage: 1024}}, {1024, Options{Producers: -1}}} {
		if _, err := Create(testName(t), c.capacity, &c.opts); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Create(%d, %+v) = %v, want fs.ErrInvalid", c.capacity, c.opts, err)
		}
	}
	name := testName(t)
	seg, err := shm.Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if _, err := Open(name, nil); !errors.Is(err, ErrNotRing) {
		t.Errorf("Open(zero segment) = %v, want ErrNotRing", err)
	}
	r := newRing(t, 1024, nil)
	h := r.h
	h.Version = 1
	if _, err := Open(r.Name(), nil); !errors.Is(err, ErrNotRing) || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("Open(version 1) = %v, want ErrNotRing naming the version", err)
	}
	h.Version = Version
	h.Capacity = 1 << 20
	if _, err := Open(r.Name(), nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open(capacity larger than segment) = %v, want ErrCorrupt", err)
	}
	h.Capacity = 1024
	if _, err := Open(r.Name(), nil); err != nil {
		t.Errorf("Open(restored) = %v", err)
	}
}

// TestCorruptPositions checks that hostile positions give ErrCorrupt.
func TestCorruptPositions(t *testing.T) {
	r := newRing(t, 1024, nil)
	p, _ := r.Producer()
	c, _ := r.Consumer()
	p.Send([]byte("hello"))
	r.h.Tail.Store(1 << 40)
	if _, err := c.TryReceive(make([]byte, 100)); err != nil {
		// The consumer trusts its cached tail first, and may read "hello".
		t.Logf("first TryReceive: %v", err)
	}
	if _, err := c.TryReceive(make([]byte, 100)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("TryReceive with tail far ahead = %v, want ErrCorrupt", err)
	}
	r.h.Head.Store(3)
	if err := p.Send(make([]byte, 1016)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Send with unaligned head = %v, want ErrCorrupt", err)
	}
}

func TestCloseAndEOF(t *testing.T) {
	r := newRing(t, 4096, nil)
	c, _ := r.Consumer()
	cmd, out := startChild(t, "send", r.Name(), "1000", "100", "0")
	buf := make([]byte, 100)
	for i := range 1000 {
		n, err := c.Receive(buf)
		if err != nil {
			t.Fatalf("Receive %d: %v", i, err)
		}
		if err := check(buf[:n], 0, uint64(i), 100); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Receive(buf); err != io.EOF {
		t.Fatalf("Receive after the producer closed = %v, want io.EOF", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("producer: %v\n%s", err, out)
	}
	// A closed consumer is seen by the producer.
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := p.Send([]byte("x")); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("Send after the consumer closed = %v, want ErrPeerClosed", err)
	}
	if _, err := c.Receive(buf); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Receive on a closed consumer = %v, want fs.ErrClosed", err)
	}
	// A blocked Receive returns EOF when the producer closes.
	c2, err := r.Consumer()
	if err != nil {
		t.Fatalf("second Consumer after Close: %v", err)
	}
	go func() { time.Sleep(50 * time.Millisecond); p.Close() }()
	if _, err := c2.Receive(buf); err != io.EOF {
		t.Fatalf("blocked Receive when the producer closes = %v, want io.EOF", err)
	}
}

func TestContext(t *testing.T) {
	r := newRing(t, 64, nil)
	c, _ := r.Consumer()
	p, _ := r.Producer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c.ReceiveContext(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReceiveContext on an empty ring = %v, want DeadlineExceeded", err)
	}
	p.Send(make([]byte, 56))
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel2() }()
	if err := p.SendContext(ctx2, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("SendContext on a full ring = %v, want Canceled", err)
	}
}

// TestProducerKilled kills a producer holding an uncommitted claim; the
// consumer drains what it committed, gets ErrPeerDead, and a new producer
// process can attach and send.
func TestProducerKilled(t *testing.T) {
	for _, producers := range []int{1, 2} {
		t.Run(fmt.Sprintf("producers=%d", producers), func(t *testing.T) {
			r := newRing(t, 4096, &Options{Producers: producers})
			c, _ := r.Consumer()
			cmd, out := startChild(t, "claimhang", r.Name(), "10")
			waitFor(t, out, "claimed")
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			buf := make([]byte, 64)
			for i := range 10 {
				n, err := c.Receive(buf)
				if err != nil || n != 8 || binary.LittleEndian.Uint64(buf) != uint64(i) {
					t.Fatalf("Receive %d = %d, %v", i, n, err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := c.ReceiveContext(ctx, buf); !errors.Is(err, ErrPeerDead) {
				t.Fatalf("Receive after the producer died = %v, want ErrPeerDead", err)
			}
			if _, err := c.ReceiveContext(ctx, buf); err != io.EOF {
				t.Fatalf("Receive after ErrPeerDead = %v, want io.EOF", err)
			}
			runChild(t, "send", r.Name(), "100", "50", "0")
			for i := range 100 {
				n, err := c.ReceiveContext(ctx, buf)
				if err != nil {
					t.Fatalf("Receive %d from the new producer: %v", i, err)
				}
				if err := check(buf[:n], 0, uint64(i), 50); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestConsumerKilled kills the consumer; a producer blocked on the full ring
// gets ErrPeerDead, and a new consumer takes over and drains the ring.
func TestConsumerKilled(t *testing.T) {
	r := newRing(t, 1024, nil)
	cmd, out := startChild(t, "recvhang", r.Name(), "5")
	p, _ := r.Producer()
	for i := range 5 {
		p.Send([]byte{byte(i)})
	}
	waitFor(t, out, "received")
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	sent := 0
	for err == nil {
		if err = p.SendContext(ctx, make([]byte, 50)); err == nil {
			sent++
		}
	}
	if !errors.Is(err, ErrPeerDead) {
		t.Fatalf("Send to a dead consumer = %v, want ErrPeerDead", err)
	}
	p.Close()
	if got := strings.TrimSpace(runChild(t, "recvall", r.Name())); got != strconv.Itoa(sent) {
		t.Fatalf("new consumer received %s messages, want %d", got, sent)
	}
}

// TestReaderGetsEOFWhenAllClose: many producers attach and close.
func TestManyProducersDeadClaim(t *testing.T) {
	r := newRing(t, 4096, &Options{Producers: 4})
	c, _ := r.Consumer()
	cmd, out := startChild(t, "claimhang", r.Name(), "3")
	waitFor(t, out, "claimed")
	// A live producer sends behind the dead claim.
	p, _ := r.Producer()
	for i := range 5 {
		p.Send([]byte{byte(100 + i)})
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []int
	dead := 0
	buf := make([]byte, 64)
	for {
		n, err := c.ReceiveContext(ctx, buf)
		if err == io.EOF {
			break
		}
		if errors.Is(err, ErrPeerDead) {
			dead++
			continue
		}
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if n == 8 {
			got = append(got, int(binary.LittleEndian.Uint64(buf)))
		} else {
			got = append(got, int(buf[0]))
		}
	}
	want := []int{0, 1, 2, 100, 101, 102, 103, 104}
	if fmt.Sprint(got) != fmt.Sprint(want) || dead != 1 {
		t.Fatalf("received %v with %d ErrPeerDead, want %v with 1", got, dead, want)
	}
}

func TestBusy(t *testing.T) {
	r := newRing(t, 1024, nil)
	if _, err := r.Consumer(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Consumer(); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Consumer = %v, want ErrBusy", err)
	}
	if _, err := r.Producer(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Producer(); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Producer of a single-producer ring = %v, want ErrBusy", err)
	}
}

// waitFor waits until the child's output holds s.
func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("child did not say %q; output:\n%s", s, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ = os.Getpid

// TestLargeCopyIn sends messages large enough for copyIn's aligned copy, at
// every 8-byte record offset, and checks every byte.
func TestLargeCopyIn(t *testing.T) {
	r, err := Create(testName(t), 1<<14, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, _ := r.Producer()
	c, _ := r.Consumer()
	buf := make([]byte, r.MaxMessage())
	for i := range 200 {
		n := 2048 + i*37%4000
		msg := make([]byte, n)
		for j := range msg {
			msg[j] = byte(i + j*7)
		}
		if err := p.Send(msg); err != nil {
			t.Fatal(err)
		}
		got, err := c.Receive(buf)
		if err != nil || !bytes.Equal(buf[:got], msg) {
			t.Fatalf("message %d (%d bytes): got %d bytes, %v; contents differ", i, n, got, err)
		}
	}
}
