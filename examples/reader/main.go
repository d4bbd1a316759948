// Command reader is the lecture's Process B in Go: it opens the existing
// segment "/shm-demo", maps it, prints the message that examples/writer (or
// the lecture's C Process A) left there, and writes a reply after it.
//
//	go run ./examples/writer   # in one terminal
//	go run ./examples/reader   # in another
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/mindmeld-go/shm"
)

func main() {
	name := flag.String("name", "/shm-demo", "segment name")
	reply := flag.String("reply", "", "reply to write (default: a greeting with this pid)")
	flag.Parse()
	log.SetFlags(0)

	// Process B: shm_open(O_RDWR) + mmap of the size the creator set.
	s, err := shm.Open(*name)
	if err != nil {
		log.Fatal(err) // e.g. "shm_open /shm-demo: no such file or directory"
	}
	defer s.Close()

	buf := s.Bytes()
	half := len(buf) / 2
	msg, _, _ := strings.Cut(string(buf[:half]), "\x00")
	fmt.Printf("read %q from %s (%d bytes)\n", msg, s.Name(), s.Size())

	if *reply == "" {
		*reply = fmt.Sprintf("Hello back from Process B (pid %d)", os.Getpid())
	}
	copy(buf[half:], *reply)
	fmt.Printf("replied %q\n", *reply)
}
