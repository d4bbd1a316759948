package ring

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Cross-language tests against c/shm.h: c/tests/ringpeer.c, built with gcc
// and the address and undefined-behaviour sanitizers, has the command line of
// python/tests/ringpeer.py and the same messages (pyMessage); skipped when gcc
// is missing.

// A peerBuild builds one peer program once per test binary, into a
// temporary directory removed when the suite ends.
type peerBuild struct {
	once sync.Once
	dir  string
	exe  string
	err  error
}

// get returns the program, building it on first use with build(exe).
func (b *peerBuild) get(t *testing.T, build func(exe string) error) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "ringpeer-"); b.err != nil {
			return
		}
		harness.AfterRun = append(harness.AfterRun, func() { os.RemoveAll(b.dir) })
		b.exe = filepath.Join(b.dir, "ringpeer")
		b.err = build(b.exe)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.exe
}

var cPeerBuild peerBuild

// cRingPeer builds c/tests/ringpeer.c, once per test binary.
func cRingPeer(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found")
	}
	return cPeerBuild.get(t, func(exe string) error {
		src, err := filepath.Abs(filepath.Join("..", "c", "tests", "ringpeer.c"))
		if err != nil {
			return err
		}
		args := []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-O2", "-fsanitize=address,undefined", "-o", exe, src}
		if runtime.GOOS == "linux" {
			args = append(args, "-lrt")
		}
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %v: %v\n%s", args, err, out)
		}
		return nil
	})
}

// TestCRingConsumesGo: Go sends 200,000 messages of random sizes (by copy,
// then by Claim and Commit); a C process checks every one, reading by copy,
// then in place.
func TestCRingConsumesGo(t *testing.T) {
	peer := cRingPeer(t)
	for _, zc := range []bool{false, true} {
		peerConsumesGo(t, []string{peer}, 200000, zc)
	}
}

// TestCRingGoConsumesC: two C producers (one copying, one in place) on a
// multi-producer ring, 100,000 messages each; Go checks order per producer
// and content, reading by copy and in place, then io.EOF.
func TestCRingGoConsumesC(t *testing.T) {
	goConsumesPeers(t, []string{cRingPeer(t)}, 100000, true)
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
