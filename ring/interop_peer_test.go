package ring

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The Go side of the cross-language ring tests, shared by the C peer
// (interop_c_test.go) and the Python peer (interop_py_test.go): both have
// python/tests/ringpeer.py's command line, so a peer is the argv that comes
// before it ({"/tmp/ringpeer"} or {python, "ringpeer.py"}).

// peerConsumesGo sends count messages (pyMessage, seed 5, up to 1024 bytes)
// from this process, by Send or, with zc, by Claim and Commit, to a peer
// that checks every one (reading in place with zc) and must print "ok N".
func peerConsumesGo(t *testing.T, peer []string, count int, zc bool) {
	t.Helper()
	name := testName(t)
	r, err := Create(name, 1<<16, &Options{MaxMessage: 1024})
	if err != nil {
		t.Fatal(err)
	}
	args := append(peer[1:len(peer):len(peer)], "consume", name, "1", strconv.Itoa(count), "5", "1024")
	if zc {
		args = append(args, "zerocopy")
	}
	cmd := exec.Command(peer[0], args...)
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
		t.Fatalf("%s consumer (zerocopy %v): %v: %s", peer[len(peer)-1], zc, err, out.String())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// goConsumesPeers runs two peer producers (one copying, one in place) of
// count messages each (seed 9) on a multi-producer ring and checks here the
// order per producer and the content, then io.EOF. With mixRead every other
// message is read in place (Read and Release) instead of by Receive.
func goConsumesPeers(t *testing.T, peer []string, count int, mixRead bool) {
	t.Helper()
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
	var cmds []*exec.Cmd
	for id, mode := range []string{"copy", "zerocopy"} {
		args := append(peer[1:len(peer):len(peer)], "produce", name, strconv.Itoa(id), strconv.Itoa(count), "9", "1024", mode)
		cmd := exec.Command(peer[0], args...)
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
		inPlace := mixRead && total%2 != 0
		var m []byte
		if inPlace {
			m, err = c.Read()
		} else {
			var n int
			n, err = c.Receive(buf)
			m = buf[:n]
		}
		if err != nil {
			t.Fatalf("after %d: %v", total, err)
		}
		if len(m) < 16 || m[0] > 1 || m[1]|m[2]|m[3] != 0 {
			t.Fatalf("after %d: bad message of %d bytes", total, len(m))
		}
		p := uint32(m[0])
		want = pyMessage(want, p, next[p], 9, 1024)
		if string(m) != string(want) {
			t.Fatalf("producer %d message %d differs", p, next[p])
		}
		if inPlace {
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
