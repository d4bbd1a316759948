package ring

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Cross-language tests against the Python package (python/): skipped unless
// SHM_PYTHON names a python with it installed. The Python side is
// python/tests/ringpeer.py; the Go side is this process.

func pythonPeer(t *testing.T) (python, script string) {
	t.Helper()
	python = os.Getenv("SHM_PYTHON")
	if python == "" {
		t.Skip("SHM_PYTHON not set")
	}
	script, err := filepath.Abs(filepath.Join("..", "python", "tests", "ringpeer.py"))
	if err != nil {
		t.Fatal(err)
	}
	return python, script
}

func pyCount(t *testing.T) int {
	if testing.Short() {
		return 20000
	}
	return 1000000
}

// pyMessage is ringpeer.py's message k of producer p.
func pyMessage(b []byte, p uint32, k, seed uint64, maxlen int) []byte {
	mix := func(x uint64) uint64 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	n := 16 + int(mix(seed^(uint64(p)<<40)^k)%uint64(maxlen-16+1))
	b = append(b[:0], byte(p), byte(p>>8), byte(p>>16), byte(p>>24), byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	for i := 0; i < 8; i++ {
		b = append(b, byte(k>>(8*i)))
	}
	for i := 16; i < n; i++ {
		b = append(b, byte(k+uint64(i)+131*uint64(p)))
	}
	return b
}

// TestPythonConsumesGo: Go sends (by Send, then by Claim and Commit), a
// Python process checks every message (by copy, then in place).
func TestPythonConsumesGo(t *testing.T) {
	python, script := pythonPeer(t)
	peerConsumesGo(t, []string{python, script}, pyCount(t), false)
	peerConsumesGo(t, []string{python, script}, pyCount(t)/10, true)
}

// TestGoConsumesPython: two Python producers on a multi-producer ring, Go
// checks order per producer and content.
func TestGoConsumesPython(t *testing.T) {
	python, script := pythonPeer(t)
	goConsumesPeers(t, []string{python, script}, pyCount(t)/10, false)
}

// TestPythonReaderHostileRecord: Go plants a record of an unknown type; the
// Python reader raises CorruptError (errno EBADMSG) and does not crash.
func TestPythonReaderHostileRecord(t *testing.T) {
	python, _ := pythonPeer(t)
	name := testName(t)
	r, err := Create(name, 4096, &Options{MaxMessage: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	r.words[0].Store(108 | 7<<32) // type 7: no such record
	script := `import sys, errno, shm
r = shm.Ring.open(sys.argv[1]); c = r.consumer()
try:
    c.receive(timeout=5)
except shm.CorruptError as e:
    assert e.errno == errno.EBADMSG
    print("corrupt")
`
	out, err := exec.Command(python, "-c", script, name).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "corrupt" {
		t.Fatalf("python reader: %v: %s", err, out)
	}
	_ = p.Close()
}

// TestPythonProducerKilled: a Python producer is SIGKILLed mid-stream; the
// Go consumer gets every message it committed, in order, then ErrPeerDead.
func TestPythonProducerKilled(t *testing.T) {
	python, script := pythonPeer(t)
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
	cmd := exec.Command(python, script, "produce", name, "0", "100000000", "3", "256")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	var want []byte
	k := uint64(0)
	for ; ; k++ {
		if k == 2000 {
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
	if k < 2000 {
		t.Fatalf("ErrPeerDead after %d messages, before the kill", k)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
