// Command exchange shows two processes sharing a typed struct through a
// named segment. It creates the segment, writes a request into it, starts a
// second copy of itself that opens the segment by name, reads the request and
// writes a reply, then prints the reply and removes the segment.
//
//	go run ./examples/exchange
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mindmeld-go/shm"
)

// Exchange is the layout both processes agree on. It holds no pointers: a
// pointer is an address in one process and means nothing in another.
type Exchange struct {
	State   atomic.Uint32 // 0 empty, 1 request written, 2 reply written
	FromPID int32
	Numbers [8]int64
	Request [64]byte
	Reply   [64]byte
	Sum     int64
}

const peerEnv = "SHM_EXCHANGE_PEER"

func main() {
	log.SetFlags(0)
	if name := os.Getenv(peerEnv); name != "" {
		peer(name)
		return
	}

	s, err := shm.CreateTemp("exchange-", 4096)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Unlink()
	defer s.Close()
	// log.Fatal skips deferred calls: remove the segment before exiting.
	fatal := func(v ...any) { s.Close(); s.Unlink(); log.Fatal(v...) }
	fmt.Printf("[%d] created %s, %d bytes\n", os.Getpid(), s.Name(), s.Size())

	x, err := shm.View[Exchange](s, 0)
	if err != nil {
		fatal(err)
	}
	x.FromPID = int32(os.Getpid())
	x.Numbers = [8]int64{1, 2, 3, 5, 8, 13, 21, 34}
	copy(x.Request[:], "please add these up")
	x.State.Store(1) // publish: the peer reads the fields only after it sees 1
	fmt.Printf("[%d] wrote request %q with %v\n", os.Getpid(), cstr(x.Request[:]), x.Numbers)

	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), peerEnv+"="+s.Name())
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	// Wait for the reply in shared memory; the peer's exit is a backstop.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for x.State.Load() != 2 {
		select {
		case err := <-exited:
			exited <- err
			if x.State.Load() != 2 {
				fatal("peer exited without replying: ", err)
			}
		case <-time.After(time.Millisecond):
		}
	}
	fmt.Printf("[%d] got reply %q, sum %d\n", os.Getpid(), cstr(x.Reply[:]), x.Sum)
	if err := <-exited; err != nil {
		fatal(err)
	}
	fmt.Printf("[%d] removed %s\n", os.Getpid(), s.Name())
}

// peer is the second process.
func peer(name string) {
	s, err := shm.Open(name)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	x, err := shm.View[Exchange](s, 0)
	if err != nil {
		log.Fatal(err)
	}
	if x.State.Load() != 1 {
		log.Fatalf("no request in %s", name)
	}
	fmt.Printf("[%d] opened %s, request %q from pid %d\n", os.Getpid(), name, cstr(x.Request[:]), x.FromPID)
	var sum int64
	for _, n := range x.Numbers {
		sum += n
	}
	x.Sum = sum
	copy(x.Reply[:], fmt.Sprintf("done by pid %d", os.Getpid()))
	x.State.Store(2)
}

func cstr(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\x00")
	return s
}
