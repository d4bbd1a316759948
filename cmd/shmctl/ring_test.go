//go:build linux

package main

// shmctl ring and shmctl lock against rings and locks held by other
// processes: children of this test binary that make them with the ring
// package and shm.Mutex, then sleep until killed.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
	"github.com/mindmeld-go/shm/ring"
)

func init() {
	children["ringhold"] = childRingHold
	children["lockhold"] = childLockHold
}

// childRingHold: NAME CREATE(0|1) SLOTS COUNT SIZE. It creates the ring (or
// opens it), attaches a producer, sends COUNT messages of SIZE bytes,
// prints "ready" and sleeps.
func childRingHold(args []string) int {
	slots, _ := strconv.Atoi(args[2])
	count, _ := strconv.Atoi(args[3])
	size, _ := strconv.Atoi(args[4])
	var r *ring.Ring
	var err error
	if args[1] == "1" {
		r, err = ring.Create(args[0], 1<<16, &ring.Options{Producers: slots})
	} else {
		r, err = ring.Open(args[0], nil)
	}
	if err != nil {
		return childtest.Fail("ring: %v", err)
	}
	p, err := r.Producer()
	if err != nil {
		return childtest.Fail("producer: %v", err)
	}
	for range count {
		if err := p.Send(make([]byte, size)); err != nil {
			return childtest.Fail("send: %v", err)
		}
	}
	fmt.Println("ready")
	for {
		time.Sleep(time.Hour)
	}
}

// childLockHold: NAME. It creates a segment, locks the Mutex at offset 64,
// sets the Semaphore at offset 128 to 3, prints "ready" and sleeps.
func childLockHold(args []string) int {
	s, err := shm.Create(args[0], 4096)
	if err != nil {
		return childtest.Fail("create: %v", err)
	}
	mu, err := shm.View[shm.Mutex](s, 64)
	if err != nil {
		return childtest.Fail("view: %v", err)
	}
	mu.Lock()
	sem, err := shm.View[shm.Semaphore](s, 128)
	if err != nil {
		return childtest.Fail("view: %v", err)
	}
	for range 3 {
		sem.Post()
	}
	fmt.Println("ready")
	for {
		time.Sleep(time.Hour)
	}
}

// startChild starts a child role and waits for its "ready" line.
func startChild(t *testing.T, role string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := childtest.Command(t, role, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("child %s %q: %q, %v", role, args, line, err)
	}
	return cmd
}

func killWait(c *exec.Cmd) {
	c.Process.Signal(syscall.SIGKILL)
	c.Wait()
}

type ringJSON struct {
	Name       string `json:"name"`
	Version    int    `json:"version"`
	Multi      bool   `json:"multi_producer"`
	Capacity   int64  `json:"capacity"`
	Head, Tail int64
	Fill       int64  `json:"fill"`
	InFlight   *int64 `json:"messages_in_flight"`
	Committed  int64  `json:"messages_committed"`
	Bytes      int64  `json:"payload_bytes_committed"`
	Records    struct {
		Data int `json:"data"`
	} `json:"records"`
	Producers []struct {
		PID     int    `json:"pid"`
		Command string `json:"command"`
		Alive   bool   `json:"alive"`
	} `json:"producers"`
}

func ringState(t *testing.T, name string) ringJSON {
	t.Helper()
	var r ringJSON
	out := mustShmctl(t, "ring", "-json", name)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("ring -json does not parse: %v\n%s", err, out)
	}
	return r
}

// After N sends of a known size by another process, shmctl ring shows
// those bytes and records in flight and the producer's PID, alive; after
// SIGKILL, dead. On a multi-producer ring, each producer's slot.
func TestRingInspect(t *testing.T) {
	for _, slots := range []int{1, 2} {
		t.Run(fmt.Sprintf("slots=%d", slots), func(t *testing.T) {
			name := testName(t)
			const n, size = 10, 100 // 8-byte header + 100 bytes, padded to 112
			p1 := startChild(t, "ringhold", name, "1", strconv.Itoa(slots), strconv.Itoa(n), strconv.Itoa(size))
			pids := []int{p1.Process.Pid}
			var p2 *exec.Cmd
			if slots == 2 {
				p2 = startChild(t, "ringhold", name, "0", "0", strconv.Itoa(n), strconv.Itoa(size))
				pids = append(pids, p2.Process.Pid)
			}
			r := ringState(t, name)
			want := int64(len(pids) * n * 112)
			if r.Version != ring.Version || r.Multi != (slots > 1) || r.Capacity != 1<<16 || r.Tail-r.Head != want || r.Fill != want || r.Records.Data != len(pids)*n {
				t.Errorf("ring -json = %+v; want version %d, capacity 65536, %d bytes and %d records in flight", r, ring.Version, want, len(pids)*n)
			}
			// The Go ring keeps the statistics words: the messages in
			// flight are known exactly, on both kinds of ring.
			if r.InFlight == nil || *r.InFlight != int64(len(pids)*n) || r.Committed != int64(len(pids)*n) || r.Bytes != int64(len(pids)*n*size) {
				t.Errorf("ring -json: in flight %v, committed %d, payload %d; want %d messages of %d bytes", r.InFlight, r.Committed, r.Bytes, len(pids)*n, size)
			}
			var live []int
			for _, p := range r.Producers {
				if p.Alive && p.Command != "" {
					live = append(live, p.PID)
				}
			}
			if fmt.Sprint(live) != fmt.Sprint(pids) {
				t.Errorf("live producers with a command %v, want %v: %+v", live, pids, r.Producers)
			}
			text := mustShmctl(t, "ring", name)
			if !strings.Contains(text, fmt.Sprintf("PID %d (", pids[0])) || !strings.Contains(text, "alive") {
				t.Errorf("ring text does not show PID %d alive:\n%s", pids[0], text)
			}

			killWait(p1)
			r = ringState(t, name)
			for _, p := range r.Producers {
				if p.PID == pids[0] && p.Alive {
					t.Errorf("producer %d killed, still shown alive: %+v", pids[0], r.Producers)
				}
			}
			if !strings.Contains(mustShmctl(t, "ring", name), "dead") {
				t.Errorf("ring text does not mark the killed producer dead")
			}
		})
	}
}

// A plain segment, and a ring whose header is garbage, fail with a message
// that names the segment; usage errors exit 2 with the usage.
func TestRingBadInput(t *testing.T) {
	plain := testName(t)
	mustShmctl(t, "create", plain, "4096")
	if _, errOut, code := shmctl(t, "ring", plain); code != 1 || !strings.Contains(errOut, plain) {
		t.Errorf("ring of a plain segment: exit %d, %q; want 1 naming it", code, errOut)
	}
	bad := testName(t)
	r, err := ring.Create(bad, 1<<12, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	for _, off := range []int64{8, 16, 32, 40} { // version, capacity, slots, data offset
		f, err := os.OpenFile("/dev/shm/"+bad, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		old := make([]byte, 4)
		f.ReadAt(old, off)
		f.WriteAt([]byte{0xff, 0xff, 0xff, 0x7f}, off)
		if _, errOut, code := shmctl(t, "ring", bad); code != 1 || !strings.Contains(errOut, bad) {
			t.Errorf("ring with garbage at offset %d: exit %d, %q; want 1 naming it", off, code, errOut)
		}
		f.WriteAt(old, off)
		f.Close()
	}
	for _, args := range [][]string{{"ring"}, {"ring", "a", "b"}, {"ring", "-n", "x", "a"}, {"lock", plain}, {"lock", "-bogus", plain}} {
		if _, errOut, code := shmctl(t, args...); code != 2 || !strings.Contains(errOut, "usage: shmctl") {
			t.Errorf("shmctl %q: exit %d, %q; want 2 and the usage", args, code, errOut)
		}
	}
}

// shmctl lock reads a Mutex held by another process (its PID, alive, then
// dead after SIGKILL), a free one, and a Semaphore's count, and never
// changes them.
func TestLockInspect(t *testing.T) {
	name := testName(t)
	h := startChild(t, "lockhold", name)
	pid := strconv.Itoa(h.Process.Pid)
	out := mustShmctl(t, "lock", name, "-offset", "64")
	if !strings.Contains(out, "held") || !strings.Contains(out, pid) || !strings.Contains(out, "alive") {
		t.Errorf("lock of a held Mutex:\n%s\nwant held by %s, alive", out, pid)
	}
	var j struct {
		State     string `json:"state"`
		Alive     bool   `json:"alive"`
		HolderPID int    `json:"holder_pid"`
		Count     *int64 `json:"count"`
	}
	if err := json.Unmarshal([]byte(mustShmctl(t, "lock", "-json", name, "-offset", "64")), &j); err != nil || j.State != "held" || !j.Alive || strconv.Itoa(j.HolderPID) != pid {
		t.Errorf("lock -json: %+v, %v; want held by %s, alive", j, err, pid)
	}
	if out := mustShmctl(t, "lock", name, "-offset", "0"); !strings.Contains(out, "free") {
		t.Errorf("lock of a zero word:\n%s\nwant free", out)
	}
	j.Count = nil
	if err := json.Unmarshal([]byte(mustShmctl(t, "lock", "-json", "-semaphore", name, "-offset", "128")), &j); err != nil || j.Count == nil || *j.Count != 3 {
		t.Errorf("lock -semaphore -json: count %v, %v; want 3", j.Count, err)
	}
	if _, errOut, code := shmctl(t, "lock", name, "-offset", "8192"); code != 1 || !strings.Contains(errOut, name) {
		t.Errorf("lock past the end: exit %d, %q; want 1 naming the segment", code, errOut)
	}
	if _, errOut, code := shmctl(t, "lock", name, "-offset", "3"); code == 0 || !strings.Contains(errOut, "8") {
		t.Errorf("lock at an unaligned offset: exit %d, %q; want an error", code, errOut)
	}

	killWait(h)
	out = mustShmctl(t, "lock", name, "-offset", "64")
	if !strings.Contains(out, "held") || !strings.Contains(out, "dead") {
		t.Errorf("lock of a Mutex whose holder was killed:\n%s\nwant held, dead", out)
	}
	// Reading took nothing: the word is still the dead holder's.
	s, err := shm.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mu, _ := shm.View[shm.Mutex](s, 64)
	if mu.TryLock() {
		// A dead holder's lock is taken over by TryLock; that it is
		// takeable proves shmctl left it as the holder left it, held.
		mu.Unlock()
	}
}

// A peer shrinks and regrows the segment while shmctl ring and shmctl lock
// read it: each run exits 0 or 1 (naming the segment), never with a crash.
func TestInspectShrinking(t *testing.T) {
	childtest.SkipIfEmulated(t, "qemu-user reports a SIGBUS fault address as 0: a fault in a shrunk segment cannot be recovered")
	name := testName(t)
	r, err := ring.Create(name, 1<<16, &ring.Options{Producers: 2})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := r.Producer()
	for range 100 {
		p.Send(make([]byte, 100))
	}
	defer r.Close()
	path := "/dev/shm/" + name
	full := int64(ring.Size(1<<16, &ring.Options{Producers: 2}))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sizes := []int64{0, 200, 500, 4096, full}; ; {
			for _, n := range sizes {
				select {
				case <-stop:
					os.Truncate(path, full)
					return
				default:
				}
				os.Truncate(path, n)
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	codes := map[int]int{}
	for i := range 60 {
		args := []string{"ring", "-json", name}
		if i%3 == 2 {
			args = []string{"lock", name, "-offset", "64"}
		}
		_, errOut, code := shmctl(t, args...)
		codes[code]++
		if code != 0 && (code != 1 || !strings.Contains(errOut, name)) {
			t.Errorf("shmctl %q on a shrinking segment: exit %d, %q; want 0, or 1 naming it", args, code, errOut)
		}
		if strings.Contains(errOut, "panic") || strings.Contains(errOut, "SIGBUS") {
			t.Errorf("shmctl %q crashed: %s", args, errOut)
		}
	}
	close(stop)
	<-done
	t.Logf("exit codes: %v", codes)
}
