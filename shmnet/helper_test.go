package shmnet_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
	"github.com/mindmeld-go/shm/shmnet"
)

// children maps a child role to its function; test files add to it.
var children = map[string]func(args []string) int{}

var harness = childtest.New("shmnettest", shm.Unlink, children)

func TestMain(m *testing.M) { harness.Main(m) }

var seq atomic.Int64

// sockPath returns a fresh socket path in a directory removed when the
// test ends. Unix socket paths are short (108 bytes): t.TempDir's can be
// too long.
func sockPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shmnet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, fmt.Sprintf("s%d", seq.Add(1)))
}

func skipUnsupported(t testing.TB) {
	t.Helper()
	switch runtime.GOOS {
	case "linux", "darwin", "freebsd":
	default:
		t.Skip("shmnet is unsupported on", runtime.GOOS)
	}
}

// listen starts a listener on a fresh path, closed when the test ends.
func listen(t testing.TB, lc *shmnet.ListenConfig) *shmnet.Listener {
	t.Helper()
	skipUnsupported(t)
	if lc == nil {
		lc = &shmnet.ListenConfig{}
	}
	l, err := lc.Listen(sockPath(t))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// pipe returns the two ends of a connection made through l: dialed, and
// accepted.
func pipe(t testing.TB, l *shmnet.Listener, d *shmnet.Dialer) (client, server net.Conn) {
	t.Helper()
	if d == nil {
		d = &shmnet.Dialer{}
	}
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	client, err := d.Dial(l.Addr().String())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	r := <-ch
	if r.err != nil {
		client.Close()
		t.Fatalf("Accept: %v", r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}
