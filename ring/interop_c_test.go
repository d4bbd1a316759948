package ring

import (
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Cross-language tests against c/shm.h: c/tests/ringpeer.c, built with gcc
// and the address and undefined-behaviour sanitizers, has the command line of
// python/tests/ringpeer.py and the same messages (pyMessage); skipped when gcc
// is missing.

// cRingPeer builds c/tests/ringpeer.c into a temporary directory.
func cRingPeer(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found")
	}
	src, err := filepath.Abs(filepath.Join("..", "c", "tests", "ringpeer.c"))
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "ringpeer")
	args := []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-O2", "-fsanitize=address,undefined", "-o", exe, src}
	if runtime.GOOS == "linux" {
		args = append(args, "-lrt")
	}
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
	return exe
}

// TestCRingConsumesGo: Go sends 200,000 messages of random sizes (by copy,
// then by Claim and Commit); a C process checks every one, reading by copy,
// then in place.
func TestCRingConsumesGo(t *testing.T) {
	peer := cRingPeer(t)
	const count = 200000
	for _, zc := range []bool{false, true} {
		name := testName(t)
		r, err := Create(name, 1<<16, &Options{MaxMessage: 1024})
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"consume", name, "1", strconv.Itoa(count), "5", "1024"}
		if zc {
			args = append(args, "zerocopy")
		}
		cmd := exec.Command(peer, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p, err := r.Producer()
		if err != nil {
			t.Fatal(err)
		}
		var m []byte
		for k := 0; k < count; k++ {
			m = pyMessage(m, 0, uint64(k), 5, 1024)
			if zc {
				buf, err := p.Claim(len(m))
				if err != nil {
					t.Fatal(err)
				}
				copy(buf, m)
				err = p.Commit()
				if err != nil {
					t.Fatal(err)
				}
			} else if err := p.Send(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil || strings.TrimSpace(out.String()) != "ok "+strconv.Itoa(count) {
			t.Fatalf("C consumer (zerocopy %v): %v: %s", zc, err, out.String())
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCRingGoConsumesC: two C producers (one copying, one in place) on a
// multi-producer ring, 100,000 messages each; Go checks order per producer
// and content, then io.EOF.
func TestCRingGoConsumesC(t *testing.T) {
	peer := cRingPeer(t)
	name := testName(t)
	r, err := Create(name, 1<<16, &Options{MaxMessage: 1024, Producers: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	const count = 100000
	var cmds []*exec.Cmd
	for id, mode := range []string{"copy", "zerocopy"} {
		cmd := exec.Command(peer, "produce", name, strconv.Itoa(id), strconv.Itoa(count), "9", "1024", mode)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	next := make([]uint64, 2)
	buf := make([]byte, 1024)
	var want []byte
	for total := 0; total < 2*count; total++ {
		var m []byte
		if total%2 == 0 {
			n, err := c.Receive(buf)
			if err != nil {
				t.Fatalf("after %d: %v", total, err)
			}
			m = buf[:n]
		} else {
			m, err = c.Read()
			if err != nil {
				t.Fatalf("after %d: %v", total, err)
			}
		}
		if len(m) < 16 || m[0] > 1 || m[1]|m[2]|m[3] != 0 {
			t.Fatalf("after %d: bad message of %d bytes", total, len(m))
		}
		p := uint32(m[0])
		want = pyMessage(want, p, next[p], 9, 1024)
		if string(m) != string(want) {
			t.Fatalf("producer %d message %d differs", p, next[p])
		}
		if total%2 != 0 {
			if err := c.Release(); err != nil {
				t.Fatal(err)
			}
		}
		next[p]++
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Receive(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after the producers: %v, want io.EOF", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCRingProducerKilled: a C producer is SIGKILLed mid-stream; the Go
// consumer gets every message it committed, in order, then ErrPeerDead.
func TestCRingProducerKilled(t *testing.T) {
	peer := cRingPeer(t)
	name := testName(t)
	r, err := Create(name, 4096, &Options{MaxMessage: 256, Producers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(peer, "produce", name, "0", "100000000", "3", "256")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := uint64(1000 + rand.Intn(2000))
	buf := make([]byte, 256)
	var want []byte
	k := uint64(0)
	for ; ; k++ {
		if k == kill {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		n, err := c.Receive(buf)
		if errors.Is(err, ErrPeerDead) {
			break
		}
		if err != nil {
			t.Fatalf("after %d: %v", k, err)
		}
		want = pyMessage(want, 0, k, 3, 256)
		if string(buf[:n]) != string(want) {
			t.Fatalf("message %d differs", k)
		}
	}
	if k < kill {
		t.Fatalf("ErrPeerDead after %d messages, before the kill at %d", k, kill)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
