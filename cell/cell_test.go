package cell

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
)

// state is a value whose fields must agree: every field is the version
// that stored it.
type state struct {
	A, B, C, D, E, F, G, H uint64
}

func mkState(v uint64) state { return state{v, v, v, v, v, v, v, v} }

func (s state) check() error {
	f := [...]uint64{s.A, s.B, s.C, s.D, s.E, s.F, s.G, s.H}
	for i, x := range f {
		if x != f[0] {
			return fmt.Errorf("torn read: field %d = %d, field 0 = %d (%+v)", i, x, f[0], s)
		}
	}
	return nil
}

func newCell(t *testing.T) (*shm.Segment, *Cell[state]) {
	t.Helper()
	name := testName(t)
	seg, err := shm.Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	c, err := New[state](seg, 64)
	if err != nil {
		t.Fatal(err)
	}
	return seg, c
}

func TestStoreLoadVersion(t *testing.T) {
	seg, c := newCell(t)
	if v, err := c.Load(); err != nil || v != (state{}) {
		t.Fatalf("Load of a new cell = %+v, %v; want zero, nil", v, err)
	}
	for i := uint64(1); i <= 5; i++ {
		if err := c.Store(mkState(i)); err != nil {
			t.Fatal(err)
		}
		if ver, err := c.Version(); err != nil || ver != i {
			t.Fatalf("Version after %d stores = %d, %v", i, ver, err)
		}
	}
	other, err := Attach[state](seg, 64)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := other.Load(); err != nil || v != mkState(5) {
		t.Fatalf("Load through a second handle = %+v, %v; want all 5", v, err)
	}
	if Size[state]() != 128+64 {
		t.Fatalf("Size = %d, want 192", Size[state]())
	}
	if Size[[3]byte]() != 136 {
		t.Fatalf("Size[[3]byte] = %d, want 136", Size[[3]byte]())
	}
}

func TestOddSizedValue(t *testing.T) {
	seg, err := shm.Create(testName(t), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	c, err := New[[13]byte](seg, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := [13]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
	if err := c.Store(v); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Load(); err != nil || got != v {
		t.Fatalf("Load = %v, %v; want %v", got, err, v)
	}
}

func TestAttachRefuses(t *testing.T) {
	seg, _ := newCell(t)
	raw := seg.Bytes()[64:]
	cases := []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"magic", 0, 'X', "magic"},
		{"version", 4, 9, "layout version 9"},
		{"flags", 12, 1, "unknown flags"},
		{"reserved", 40, 1, "reserved byte 40"},
	}
	for _, tc := range cases {
		old := raw[tc.off]
		raw[tc.off] = tc.val
		_, err := Attach[state](seg, 64)
		raw[tc.off] = old
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Attach = %v, want ErrCorrupt saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := Attach[[32]byte](seg, 64); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Attach with the wrong value size = %v, want ErrCorrupt", err)
	}
	if _, err := Attach[state](seg, 4096-128); err == nil {
		t.Errorf("Attach with the value past the end succeeded")
	}
	if _, err := Attach[*int](seg, 64); !errors.Is(err, shm.ErrPointers) {
		t.Errorf("Attach[*int] = %v, want ErrPointers", err)
	}
	if _, err := Attach[state](seg, 63); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Attach at offset 63 = %v, want fs.ErrInvalid", err)
	}
	if _, err := Attach[state](seg, 64); err != nil {
		t.Errorf("Attach of the restored header = %v", err)
	}
}

func TestWaitWakes(t *testing.T) {
	_, c := newCell(t)
	got := make(chan error, 1)
	go func() {
		ver, err := c.Wait(context.Background(), 0)
		if err == nil && ver != 1 {
			err = fmt.Errorf("Wait returned version %d, want 1", ver)
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Store(mkState(1))
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after a Store")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with nothing stored = %v, want DeadlineExceeded", err)
	}
}

func TestReadOnly(t *testing.T) {
	seg, c := newCell(t)
	c.Store(mkState(3))
	ro, err := shm.OpenFile(seg.Name(), os.O_RDONLY, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rc, err := Attach[state](ro, 64)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.Load(); err != nil || v != mkState(3) {
		t.Fatalf("read-only Load = %+v, %v", v, err)
	}
	if err := rc.Store(mkState(4)); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("read-only Store = %v, want fs.ErrPermission", err)
	}
	done := make(chan error, 1)
	go func() { _, err := rc.Wait(context.Background(), 3); done <- err }()
	time.Sleep(5 * time.Millisecond)
	c.Store(mkState(4))
	if err := <-done; err != nil {
		t.Fatalf("read-only Wait = %v", err)
	}
}

// TestDeadWriterMidStore: a writer process stops between the odd and the
// even store and is SIGKILLed; Load must report ErrPeerDead, and the next
// Store repairs the cell.
func TestDeadWriterMidStore(t *testing.T) {
	seg, c := newCell(t)
	c.Store(mkState(1))
	cmd, out := childtest.Start(t, "halfstore", seg.Name())
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("child never began its store: %s", out)
		}
		time.Sleep(time.Millisecond)
	}
	c.SetStallTimeout(100 * time.Millisecond)
	if _, err := c.Load(); !errors.Is(err, ErrStalled) {
		t.Fatalf("Load with a live writer in mid-store = %v, want ErrStalled", err)
	}
	c.SetStallTimeout(10 * time.Second)
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := c.Load(); !errors.Is(err, ErrPeerDead) {
		t.Fatalf("Load after the writer died in mid-store = %v, want ErrPeerDead", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Wait(ctx, 1); !errors.Is(err, ErrPeerDead) {
		t.Fatalf("Wait after the writer died in mid-store = %v, want ErrPeerDead", err)
	}
	if err := c.Store(mkState(7)); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Load(); err != nil || v != mkState(7) {
		t.Fatalf("Load after a repairing Store = %+v, %v", v, err)
	}
}

func init() {
	children["halfstore"] = func(args []string) int {
		seg, err := shm.Open(args[0])
		if err != nil {
			return childtest.Fail("%v", err)
		}
		c, err := Attach[state](seg, 64)
		if err != nil {
			return childtest.Fail("%v", err)
		}
		c.beginStore()
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	}
	children["reader"] = func(args []string) int {
		n, _ := strconv.Atoi(args[1])
		seg, err := shm.OpenFile(args[0], os.O_RDONLY, 0, 0)
		if err != nil {
			return childtest.Fail("%v", err)
		}
		defer seg.Close()
		c, err := Attach[state](seg, 64)
		if err != nil {
			return childtest.Fail("%v", err)
		}
		var last uint64
		for i := 0; i < n; i++ {
			v, err := c.Load()
			if err != nil {
				return childtest.Fail("Load %d: %v", i, err)
			}
			if err := v.check(); err != nil {
				return childtest.Fail("Load %d: %v", i, err)
			}
			if v.A < last {
				return childtest.Fail("Load %d: version went back from %d to %d", i, last, v.A)
			}
			last = v.A
		}
		fmt.Printf("loads %d retries %d last %d\n", n, c.Retries(), last)
		return 0
	}
	children["storeloop"] = func(args []string) int {
		seg, err := shm.Open(args[0])
		if err != nil {
			return childtest.Fail("%v", err)
		}
		c, err := Attach[state](seg, 64)
		if err != nil {
			return childtest.Fail("%v", err)
		}
		fmt.Println("ready")
		for i := uint64(1); ; i++ {
			c.Store(mkState(i))
		}
	}
}

// loads returns the number of Loads per reader process: 2.5 M each (10 M
// in all) with SHM_FULL=1, 250 k normally, 25 k with -short.
func loads() int {
	switch {
	case os.Getenv("SHM_FULL") != "":
		return 2_500_000
	case testing.Short():
		return 25_000
	}
	return 250_000
}

// TestNoTornReads: this process stores in a loop while 4 reader processes,
// on read-only mappings, check that every Load agrees with itself.
func TestNoTornReads(t *testing.T) {
	seg, c := newCell(t)
	n := loads()
	stop := make(chan struct{})
	stored := make(chan uint64)
	go func() {
		i := uint64(1)
		for {
			select {
			case <-stop:
				stored <- i
				return
			default:
			}
			c.Store(mkState(i))
			i++
		}
	}()
	outs := make([]*childtest.Buffer, 4)
	cmds := make([]interface{ Wait() error }, 4)
	for i := range outs {
		cmd, out := childtest.Start(t, "reader", seg.Name(), strconv.Itoa(n))
		cmds[i], outs[i] = cmd, out
	}
	var retries int
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("reader %d: %v\n%s", i, err, outs[i])
			continue
		}
		var l, r, last int
		fmt.Sscanf(outs[i].String(), "loads %d retries %d last %d", &l, &r, &last)
		retries += r
	}
	close(stop)
	total := <-stored
	t.Logf("%d loads by 4 processes against %d stores: %d retries", 4*n, total, retries)
}

// TestWriterKilledInLoop: a writer process storing without pause is
// SIGKILLed at a random moment; afterwards a Load gives a consistent
// value or ErrPeerDead, never a torn one, and a new Store repairs the cell.
func TestWriterKilledInLoop(t *testing.T) {
	seg, c := newCell(t)
	for trial := 0; trial < 5; trial++ {
		cmd, out := childtest.Start(t, "storeloop", seg.Name())
		for !strings.Contains(out.String(), "ready") {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(1+trial*3) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		v, err := c.Load()
		switch {
		case errors.Is(err, ErrPeerDead):
			t.Logf("trial %d: killed in mid-store", trial)
		case err != nil:
			t.Fatalf("trial %d: Load = %v", trial, err)
		default:
			if err := v.check(); err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
		}
		if err := c.Store(mkState(0)); err != nil {
			t.Fatal(err)
		}
		if v, err := c.Load(); err != nil || v != mkState(0) {
			t.Fatalf("trial %d: Load after repair = %+v, %v", trial, v, err)
		}
	}
}
