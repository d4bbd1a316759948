package interop

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/mindmeld-go/shm/shmnet"
	"golang.org/x/net/nettest"
)

// TestNettestOneProcess runs x/net's net.Conn conformance suite on a pipe
// made of Dial and Accept in this process.
func TestNettestOneProcess(t *testing.T) {
	l, err := shmnet.Listen(sockPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		return pipeThrough(l, l.Addr().String())
	})
}

// TestNettestTwoProcesses runs the suite with a second process between the
// two ends: c1 is dialed to a relay in the child, which dials our
// listener (c2) and copies both ways, so every byte crosses two
// connections and a process boundary.
func TestNettestTwoProcesses(t *testing.T) {
	l, err := shmnet.Listen(sockPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	relay := sockPath(t)
	startChild(t, "relay", relay, l.Addr().String())
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		return pipeThrough(l, relay)
	})
}

// pipeThrough dials addr and accepts from l.
func pipeThrough(l *shmnet.Listener, addr string) (c1, c2 net.Conn, stop func(), err error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	c1, err = shmnet.Dial(addr)
	if err != nil {
		return nil, nil, nil, err
	}
	r := <-ch
	if r.err != nil {
		c1.Close()
		return nil, nil, nil, r.err
	}
	return c1, r.c, func() { c1.Close(); r.c.Close() }, nil
}

func init() {
	// relay ADDR TARGET: listen on ADDR; for each connection dial TARGET
	// and copy both ways; when either direction ends, close both.
	children["relay"] = func(args []string) int {
		l, err := shmnet.Listen(args[0])
		if err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("ready")
		for {
			a, err := l.Accept()
			if err != nil {
				return 1
			}
			b, err := shmnet.Dial(args[1])
			if err != nil {
				a.Close()
				continue
			}
			var once sync.Once
			closeBoth := func() { once.Do(func() { a.Close(); b.Close() }) }
			go func() { io.Copy(b, a); closeBoth() }()
			go func() { io.Copy(a, b); closeBoth() }()
		}
	}
}
