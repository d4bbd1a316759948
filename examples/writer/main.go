// Command writer is the lecture's Process A in Go: it creates the segment
// "/shm-demo" of 1024 bytes, writes a message into it, and waits for a reader
// to reply before it removes the segment. Run it in one terminal and
// examples/reader in another:
//
//	go run ./examples/writer
//	go run ./examples/reader
//
// Any process that maps "/shm-demo" can take the reader's place, for example
// the lecture's C Process B, or Python:
//
//	python3 -c 'from multiprocessing import shared_memory as s; m = s.SharedMemory("shm-demo"); print(bytes(m.buf[:64]))'
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mindmeld-go/shm"
)

func main() {
	name := flag.String("name", "/shm-demo", "segment name")
	msg := flag.String("msg", "Hello from Process A!", "message to write")
	wait := flag.Duration("wait", 5*time.Minute, "how long to wait for a reply")
	flag.Parse()
	log.SetFlags(0)

	// Process A: shm_open(O_CREAT|O_EXCL) + ftruncate(1024) + mmap.
	s, err := shm.Create(*name, 1024)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Unlink()
	defer s.Close()

	// The first 512 bytes carry the message; the reader replies in the rest.
	buf := s.Bytes()
	copy(buf[:512], *msg)
	fmt.Printf("wrote %q to %s; waiting up to %v for a reader (Ctrl-C to stop)\n", *msg, s.Name(), *wait)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM) // either way, remove the name
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(*wait)
	for {
		select {
		case <-tick.C:
			if buf[512] != 0 {
				reply, _, _ := strings.Cut(string(buf[512:]), "\x00")
				fmt.Printf("reader replied %q; removing %s\n", reply, s.Name())
				return
			}
		case <-stop:
			fmt.Printf("interrupted; removing %s\n", s.Name())
			return
		case <-timeout:
			fmt.Printf("no reply; removing %s\n", s.Name())
			return
		}
	}
}
