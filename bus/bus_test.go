package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
)

func newBus(t *testing.T, c Config) (*shm.Segment, *Producer) {
	t.Helper()
	seg, err := shm.Create(testName(t), Size(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	p, err := Create(seg, c)
	if err != nil {
		t.Fatal(err)
	}
	return seg, p
}

func TestSendReceive(t *testing.T) {
	for _, lossless := range []bool{false, true} {
		t.Run(fmt.Sprintf("lossless=%v", lossless), func(t *testing.T) {
			c := Config{Slots: 8, SlotSize: 64, Subscribers: 4, Lossless: lossless}
			seg, p := newBus(t, c)
			a, err := Subscribe(seg, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Subscribe(seg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.TryReceive(make([]byte, 64)); !errors.Is(err, ErrEmpty) {
				t.Fatalf("TryReceive of an empty bus = %v, want ErrEmpty", err)
			}
			buf := make([]byte, 64)
			for n := uint64(0); n < 100; n++ {
				m := make([]byte, msgSize(n, 64))
				fill(m, n)
				if err := p.Send(m); err != nil {
					t.Fatal(err)
				}
				k, err := a.Receive(buf)
				if err != nil {
					t.Fatal(err)
				}
				if err := verify(buf[:k], n, 64); err != nil {
					t.Fatal(err)
				}
				msg, err := b.Read()
				if err != nil {
					t.Fatal(err)
				}
				if err := verify(msg, n, 64); err != nil {
					t.Fatal(err)
				}
				if err := b.Release(); err != nil {
					t.Fatal(err)
				}
			}
			w, err := p.Claim(10)
			if err != nil {
				t.Fatal(err)
			}
			copy(w, "0123456789")
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			if k, err := a.Receive(buf); err != nil || string(buf[:k]) != "0123456789" {
				t.Fatalf("Receive of a claimed message = %q, %v", buf[:k], err)
			}
			if err := p.Send(make([]byte, 65)); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Send of 65 bytes = %v, want ErrTooLarge", err)
			}
			p.Close()
			if _, err := a.Receive(buf); !errors.Is(err, io.EOF) {
				t.Fatalf("Receive after Close = %v, want io.EOF", err)
			}
			if _, err := b.Receive(buf); err != nil {
				t.Fatalf("Receive of the last message after Close = %v", err)
			}
			if _, err := b.Receive(buf); !errors.Is(err, io.EOF) {
				t.Fatalf("second Receive after Close = %v, want io.EOF", err)
			}
			a.Close()
			b.Close()
		})
	}
}

func TestLappedCount(t *testing.T) {
	seg, p := newBus(t, Config{Slots: 8, SlotSize: 16, Subscribers: 2})
	s, err := Subscribe(seg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(0); n < 20; n++ {
		m := make([]byte, msgSize(n, 16))
		fill(m, n)
		p.Send(m)
	}
	buf := make([]byte, 16)
	_, err = s.TryReceive(buf)
	var le *LappedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLapped) || le.Lost != 12 || le.Next != 12 {
		t.Fatalf("TryReceive 20 messages behind on 8 slots = %v, want LappedError{Lost: 12, Next: 12}", err)
	}
	for n := uint64(12); n < 20; n++ {
		k, err := s.TryReceive(buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(buf[:k], n, 16); err != nil {
			t.Fatal(err)
		}
	}
	// A Read overtaken before its Release.
	p.Send(make([]byte, 8))
	if _, err := s.Read(); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		p.Send(make([]byte, 8))
	}
	if err := s.Release(); !errors.As(err, &le) || le.Lost != 1 {
		t.Fatalf("Release of an overwritten Read = %v, want LappedError{Lost: 1}", err)
	}
	// FromOldest starts 8 back.
	o, err := Subscribe(seg, &Options{FromOldest: true})
	if err != nil {
		t.Fatal(err)
	}
	if o.Next() != 29-8 {
		t.Fatalf("FromOldest subscriber starts at %d, want %d", o.Next(), 29-8)
	}
}

func TestLosslessWaitsAndTrySend(t *testing.T) {
	seg, p := newBus(t, Config{Slots: 4, SlotSize: 8, Subscribers: 2, Lossless: true})
	s, err := Subscribe(seg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := p.TrySend([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.TrySend([]byte("x")); !errors.Is(err, ErrFull) {
		t.Fatalf("TrySend past the slowest subscriber = %v, want ErrFull", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = p.SendContext(ctx, []byte("x"))
	var se *StalledError
	if !errors.As(err, &se) || !errors.Is(err, ErrStalled) || !errors.Is(err, context.DeadlineExceeded) || se.Entry != s.Entry() || se.Token != shm.ProcessToken() || se.Behind != 4 {
		t.Fatalf("SendContext held back = %v, want StalledError naming entry %d, 4 behind", err, s.Entry())
	}
	done := make(chan error, 1)
	go func() { done <- p.Send([]byte("y")) }()
	time.Sleep(20 * time.Millisecond)
	buf := make([]byte, 8)
	if _, err := s.Receive(buf); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Send after the subscriber made room = %v", err)
	}
	// A subscriber that leaves lets the producer go on.
	s.Close()
	for range 10 {
		if err := p.TrySend([]byte("z")); err != nil {
			t.Fatalf("TrySend with no subscriber = %v", err)
		}
	}
}

// TestHostileCursors: a subscriber's published cursor out of range must
// neither let the producer overwrite another's messages nor block it.
func TestHostileCursors(t *testing.T) {
	seg, p := newBus(t, Config{Slots: 4, SlotSize: 8, Subscribers: 3, Lossless: true})
	good, _ := Subscribe(seg, nil)
	bad, _ := Subscribe(seg, nil)
	for _, cur := range []uint64{math.MaxUint64 - 1, 1 << 62, 1000} {
		bad.e.cursor.Store(cur)
		n := 0
		for p.TrySend([]byte("m")) == nil {
			n++
		}
		buf := make([]byte, 8)
		for range n {
			if _, err := good.TryReceive(buf); err != nil {
				t.Fatalf("cursor %d: honest subscriber: %v", cur, err)
			}
		}
		if n != 4 {
			t.Fatalf("hostile cursor %d: the producer sent %d before ErrFull, want 4 (the honest subscriber's room)", cur, n)
		}
	}
	// A hostile subscriber's cursor at 0 stalls a lossless producer: that
	// is the documented cost of lossless mode, and SendContext names it.
	bad.e.cursor.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	var se *StalledError
	if err := p.SendContext(ctx, []byte("m")); !errors.As(err, &se) || se.Entry != bad.Entry() {
		t.Fatalf("SendContext with a cursor stuck at 0 = %v, want StalledError naming entry %d", err, bad.Entry())
	}
}

func TestSubscribeRefuses(t *testing.T) {
	seg, _ := newBus(t, Config{Slots: 4, SlotSize: 8, Subscribers: 1})
	if _, err := Subscribe(seg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Subscribe(seg, nil); !errors.Is(err, ErrFull) {
		t.Fatalf("Subscribe with every entry taken = %v, want ErrFull", err)
	}
	raw := seg.Bytes()
	for _, tc := range []struct {
		off  int
		val  byte
		want error
	}{{0, 'x', ErrNotBus}, {4, 2, ErrNotBus}, {20, 4, ErrNotBus}, {8, 3, ErrCorrupt}, {12, 9, ErrCorrupt}, {16, 0, ErrCorrupt}, {10, 0xff, ErrCorrupt}, {30, 1, ErrCorrupt}} {
		old := raw[tc.off]
		raw[tc.off] = tc.val
		_, err := Subscribe(seg, nil)
		raw[tc.off] = old
		if !errors.Is(err, tc.want) {
			t.Errorf("byte %d = %#x: Subscribe = %v, want %v", tc.off, tc.val, err, tc.want)
		}
	}
	ro, err := shm.OpenFile(seg.Name(), os.O_RDONLY, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := Subscribe(ro, nil); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Subscribe on a read-only mapping = %v, want fs.ErrPermission", err)
	}
}

// messages returns the message count of the fan-out tests: 10 M with
// SHM_FULL=1, 1 M normally, 50 k with -short.
func messages() int {
	switch {
	case os.Getenv("SHM_FULL") != "":
		return 10_000_000
	case testing.Short():
		return 50_000
	}
	return 1_000_000
}

func init() {
	// sub NAME MAX [zerocopy]: read and check every message to EOF, then
	// print what was received and lost.
	children["sub"] = func(args []string) int {
		max, _ := strconv.Atoi(args[1])
		zero := len(args) > 2 && args[2] == "zerocopy"
		seg, err := shm.Open(args[0])
		if err != nil {
			return childtest.Fail("%v", err)
		}
		defer seg.Close()
		s, err := Subscribe(seg, nil)
		if err != nil {
			return childtest.Fail("%v", err)
		}
		defer s.Close()
		fmt.Println("ready")
		buf := make([]byte, max)
		var got, lost, laps uint64
		for {
			want := s.Next()
			var err error
			if zero {
				var msg []byte
				msg, err = s.Read()
				if err == nil {
					verr := verify(msg, want, max)
					err = s.Release()
					if err == nil && verr != nil {
						return childtest.Fail("torn or wrong message delivered: %v", verr)
					}
				}
			} else {
				var k int
				k, err = s.Receive(buf)
				if err == nil {
					if verr := verify(buf[:k], want, max); verr != nil {
						return childtest.Fail("%v", verr)
					}
				}
			}
			var le *LappedError
			switch {
			case err == nil:
				got++
			case errors.As(err, &le):
				if le.Next-want != le.Lost {
					return childtest.Fail("lapped at %d: Lost %d, but resumes at %d", want, le.Lost, le.Next)
				}
				lost += le.Lost
				laps++
			case errors.Is(err, io.EOF):
				fmt.Printf("got %d lost %d laps %d next %d\n", got, lost, laps, s.Next())
				return 0
			default:
				return childtest.Fail("at %d: %v", want, err)
			}
		}
	}
}

func waitReady(t *testing.T, outs ...*childtest.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, o := range outs {
		for !strings.Contains(o.String(), "ready") {
			if time.Now().After(deadline) {
				t.Fatalf("child not ready: %s", o)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestFanOut: one producer (this process) and 4 subscriber processes,
// messages of random sizes; each subscriber checks number and content.
// Lossless: none lost. Lossy: every loss reported, its count the gap.
func TestFanOut(t *testing.T) {
	for _, mode := range []struct {
		name     string
		lossless bool
		zero     string
	}{{"lossless", true, "copy"}, {"lossless-zerocopy", true, "zerocopy"}, {"lossy", false, "copy"}, {"lossy-zerocopy", false, "zerocopy"}} {
		t.Run(mode.name, func(t *testing.T) {
			const max = 256
			seg, p := newBus(t, Config{Slots: 256, SlotSize: max, Subscribers: 8, Lossless: mode.lossless})
			var cmds []*childtest.Buffer
			var procs []interface{ Wait() error }
			for range 4 {
				cmd, out := childtest.Start(t, "sub", seg.Name(), strconv.Itoa(max), mode.zero)
				cmds, procs = append(cmds, out), append(procs, cmd)
			}
			waitReady(t, cmds...)
			n := uint64(messages())
			buf := make([]byte, max)
			for i := uint64(0); i < n; i++ {
				m := buf[:msgSize(i, max)]
				fill(m, i)
				if err := p.Send(m); err != nil {
					t.Fatal(err)
				}
			}
			p.Close()
			for i, c := range procs {
				if err := c.Wait(); err != nil {
					t.Fatalf("subscriber %d: %v\n%s", i, err, cmds[i])
				}
				var got, lost, laps, next uint64
				fmt.Sscanf(cmds[i].String(), "ready\ngot %d lost %d laps %d next %d", &got, &lost, &laps, &next)
				if got+lost != n || next != n {
					t.Errorf("subscriber %d: got %d + lost %d != %d sent (next %d)", i, got, lost, n, next)
				}
				if mode.lossless && lost != 0 {
					t.Errorf("subscriber %d lost %d messages on a lossless bus", i, lost)
				}
				t.Logf("subscriber %d: got %d lost %d in %d laps", i, got, lost, laps)
			}
		})
	}
}

func init() {
	// stall NAME: subscribe, take one message with Read and never release
	// it, as a subscriber killed in mid-read.
	children["stall"] = func(args []string) int {
		seg, err := shm.Open(args[0])
		if err != nil {
			return childtest.Fail("%v", err)
		}
		s, err := Subscribe(seg, nil)
		if err != nil {
			return childtest.Fail("%v", err)
		}
		fmt.Println("ready")
		if _, err := s.Read(); err != nil {
			return childtest.Fail("%v", err)
		}
		fmt.Println("reading")
		time.Sleep(time.Hour)
		return 0
	}
	// churn NAME ROUNDS: subscribe, read a few messages, leave; again.
	children["churn"] = func(args []string) int {
		rounds, _ := strconv.Atoi(args[1])
		seg, err := shm.Open(args[0])
		if err != nil {
			return childtest.Fail("%v", err)
		}
		defer seg.Close()
		fmt.Println("ready")
		buf := make([]byte, 256)
		for r := 0; r < rounds; r++ {
			s, err := Subscribe(seg, &Options{FromOldest: r%2 == 1})
			if err != nil {
				return childtest.Fail("round %d: %v", r, err)
			}
			for range r % 7 {
				want := s.Next()
				k, err := s.Receive(buf)
				if errors.Is(err, io.EOF) {
					s.Close()
					return 0
				}
				if errors.Is(err, ErrLapped) { // FromOldest on a lossless bus may start in the overwritten past
					continue
				}
				if err != nil {
					return childtest.Fail("round %d: %v", r, err)
				}
				if verr := verify(buf[:k], want, 256); verr != nil {
					return childtest.Fail("round %d: %v", r, verr)
				}
			}
			if err := s.Close(); err != nil {
				return childtest.Fail("%v", err)
			}
		}
		return 0
	}
}

// TestKilledSubscriber: on a lossless bus a subscriber SIGKILLed in
// mid-read holds the producer back until its death is noticed; then it is
// evicted and the producer and the other subscriber go on.
func TestKilledSubscriber(t *testing.T) {
	const max = 256
	seg, p := newBus(t, Config{Slots: 16, SlotSize: max, Subscribers: 4, Lossless: true})
	stall, sout := childtest.Start(t, "stall", seg.Name())
	good, gout := childtest.Start(t, "sub", seg.Name(), strconv.Itoa(max))
	waitReady(t, sout, gout)
	buf := make([]byte, max)
	send := func(i uint64) error {
		m := buf[:msgSize(i, max)]
		fill(m, i)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return p.SendContext(ctx, m)
	}
	var i uint64
	for ; i < 16; i++ {
		if err := send(i); err != nil {
			t.Fatal(err)
		}
	}
	var se *StalledError
	if err := send(i); !errors.As(err, &se) || se.Cursor != 0 {
		t.Fatalf("Send past a live subscriber stuck in mid-read = %v, want StalledError at cursor 0", err)
	}
	stall.Process.Kill()
	stall.Wait()
	start := time.Now()
	for ; i < 10000; i++ {
		if err := send(i); err != nil {
			t.Fatalf("message %d after the stalled subscriber was killed: %v", i, err)
		}
	}
	t.Logf("producer went on %v after the kill (10000 messages)", time.Since(start))
	p.Close()
	if err := good.Wait(); err != nil {
		t.Fatalf("subscriber: %v\n%s", err, gout)
	}
	if !strings.Contains(gout.String(), "got 10000 lost 0") {
		t.Fatalf("subscriber: %s, want all 10000", gout)
	}
}

// TestJoinLeaveLoop: subscribers join and leave in a loop, from two
// processes, while a lossless producer sends and a steady subscriber
// checks that it loses nothing.
func TestJoinLeaveLoop(t *testing.T) {
	const max = 256
	seg, p := newBus(t, Config{Slots: 32, SlotSize: max, Subscribers: 4, Lossless: true})
	steady, sout := childtest.Start(t, "sub", seg.Name(), strconv.Itoa(max))
	c1, o1 := childtest.Start(t, "churn", seg.Name(), "300")
	c2, o2 := childtest.Start(t, "churn", seg.Name(), "300")
	waitReady(t, sout, o1, o2)
	buf := make([]byte, max)
	const n = 100000
	for i := uint64(0); i < n; i++ {
		m := buf[:msgSize(i, max)]
		fill(m, i)
		if err := p.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	for _, c := range []struct {
		w   interface{ Wait() error }
		out *childtest.Buffer
	}{{steady, sout}, {c1, o1}, {c2, o2}} {
		if err := c.w.Wait(); err != nil {
			t.Fatalf("%v\n%s", err, c.out)
		}
	}
	if !strings.Contains(sout.String(), fmt.Sprintf("got %d lost 0", n)) {
		t.Fatalf("steady subscriber: %s", sout)
	}
}

// TestProducerDied: subscribers of a producer that died without Close get
// ErrPeerDead instead of waiting for ever.
func TestProducerDied(t *testing.T) {
	name := testName(t)
	cmd, out := childtest.Start(t, "producer", name)
	waitReady(t, out)
	seg, err := shm.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	s, err := Subscribe(seg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.ReceiveContext(ctx, make([]byte, 8)); !errors.Is(err, ErrPeerDead) {
		t.Fatalf("Receive from a dead producer = %v, want ErrPeerDead", err)
	}
}

func init() {
	children["producer"] = func(args []string) int {
		c := Config{Slots: 4, SlotSize: 8, Subscribers: 2}
		seg, err := shm.Create(args[0], Size(c))
		if err != nil {
			return childtest.Fail("%v", err)
		}
		if _, err := Create(seg, c); err != nil {
			return childtest.Fail("%v", err)
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	}
}

// TestReadStats: a producer process publishes on a lossless bus; a
// subscriber here and one in another process hold it back. ReadStats sees
// the count, both subscribers with their cursors, alive, and the killed
// one dead.
func TestReadStats(t *testing.T) {
	const max = 64
	seg, p := newBus(t, Config{Slots: 64, SlotSize: max, Subscribers: 4, Lossless: true})
	s, err := Subscribe(seg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stall, sout := childtest.Start(t, "stall", seg.Name())
	waitReady(t, sout)
	buf := make([]byte, max)
	for i := range uint64(10) {
		m := buf[:msgSize(i, max)]
		fill(m, i)
		if err := p.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		if _, err := s.Receive(buf); err != nil {
			t.Fatal(err)
		}
	}
	// The child reads message 0 and holds it: its cursor stays at 0.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(sout.String(), "reading") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ro, err := shm.OpenFile(seg.Name(), os.O_RDONLY, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	st, err := ReadStats(ro)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != 10 || !st.Lossless || st.Closed || !st.ProducerAlive || len(st.Subscribers) != 2 {
		t.Fatalf("ReadStats = %+v", st)
	}
	behind := map[int]uint64{}
	for _, sub := range st.Subscribers {
		if !sub.Alive || !sub.Known {
			t.Errorf("subscriber %+v: want alive and known", sub)
		}
		behind[sub.Entry] = sub.Behind
	}
	if behind[s.Entry()] != 6 {
		t.Errorf("this process's subscriber %d behind %v, want 6: %+v", s.Entry(), behind[s.Entry()], st.Subscribers)
	}
	stall.Process.Kill()
	stall.Wait()
	p.Close()
	st, err = ReadStats(ro)
	if err != nil {
		t.Fatal(err)
	}
	dead := 0
	for _, sub := range st.Subscribers {
		if !sub.Alive {
			dead++
			if sub.Behind != 10 {
				t.Errorf("the killed subscriber: %+v, want 10 behind", sub)
			}
		}
	}
	if dead != 1 || !st.Closed {
		t.Errorf("after the kill and Close: %+v, want one dead subscriber and closed", st)
	}
	// Not a bus.
	plain, err := shm.Create(testName(t), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var pe *fs.PathError
	if _, err := ReadStats(plain); !errors.Is(err, ErrNotBus) || !errors.As(err, &pe) {
		t.Errorf("ReadStats of a plain segment = %v, want ErrNotBus in a *fs.PathError", err)
	}
}
