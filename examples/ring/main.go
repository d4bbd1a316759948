// Command ring sends messages from one process to another through a ring in
// shared memory. It creates the ring, starts a second copy of itself as the
// producer, receives until the producer closes, and removes the ring.
//
//	go run ./examples/ring
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/mindmeld-go/shm/ring"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-producer" {
		if err := producer(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "producer:", err)
			os.Exit(1)
		}
		return
	}
	if err := consumer(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func consumer() error {
	name := fmt.Sprintf("ring-example-%d", os.Getpid())
	r, err := ring.Create(name, 1<<16, &ring.Options{MaxMessage: 1024})
	if err != nil {
		return err
	}
	defer r.Unlink()
	defer r.Close()
	c, err := r.Consumer()
	if err != nil {
		return err
	}

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-producer", name)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	fmt.Printf("consumer %d: ring %s, capacity %d, waiting for producer %d\n", os.Getpid(), r.Name(), r.Capacity(), cmd.Process.Pid)

	buf := make([]byte, r.MaxMessage())
	n := 0
	for {
		m, err := c.Receive(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if n < 2 || n%50000 == 0 || n == 99_999 {
			fmt.Printf("consumer: got %q\n", buf[:m])
		}
		n++
	}
	fmt.Printf("consumer: producer closed after %d messages\n", n)
	return cmd.Wait()
}

func producer(name string) error {
	r, err := ring.Open(name, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.Producer()
	if err != nil {
		return err
	}
	// Copying send.
	for i := range 99_999 {
		if err := p.Send(fmt.Appendf(nil, "message %d from %d", i, os.Getpid())); err != nil {
			return err
		}
	}
	// Zero-copy send: claim room in the ring, write in place, commit.
	buf, err := p.Claim(len("the last message, written in place"))
	if err != nil {
		return err
	}
	copy(buf, "the last message, written in place")
	if err := p.Commit(); err != nil {
		return err
	}
	fmt.Printf("producer %d: sent 100000 messages\n", os.Getpid())
	return p.Close()
}
