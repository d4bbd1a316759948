// Command anonymous passes an anonymous shared memory segment to a child
// process over a Unix socket.
//
//	go run ./examples/anonymous
//
// The parent creates a segment with no name, writes a greeting, seals its
// size (Linux) and sends its descriptor to a child (this program,
// re-executed), which connects to a Unix socket the parent listens on. The child receives it, requiring the seals, reads the
// greeting and writes a reply in the same memory. Nothing appears in
// /dev/shm, and nothing is left behind if either process crashes.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/mindmeld-go/shm"
)

const childEnv = "ANONYMOUS_EXAMPLE_CHILD"

func main() {
	log.SetFlags(0)
	if os.Getenv(childEnv) != "" {
		child()
		return
	}
	parent()
}

func parent() {
	s, err := shm.CreateAnonymous(4096)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	copy(s.Bytes(), "hello from the parent")
	// Seal the size so the child can trust it: the parent can no longer
	// shrink the segment under the child's mapping. Only Linux has seals.
	sealed := true
	if err := s.AddSeals(shm.SealSize); errors.Is(err, errors.ErrUnsupported) {
		sealed = false
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("parent: created an anonymous segment of %d bytes (sealed: %v)\n", s.Size(), sealed)

	// A Unix socket in a private directory; the child connects to it.
	dir, err := os.MkdirTemp("", "anonymous-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+sock, fmt.Sprintf("%s_SEALED=%v", childEnv, sealed))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	conn, err := ln.AcceptUnix()
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	if err := shm.SendSegment(conn, s); err != nil {
		log.Fatal(err)
	}
	fmt.Println("parent: sent the descriptor")
	if err := cmd.Wait(); err != nil {
		log.Fatalf("child: %v", err)
	}
	reply, _, _ := bytes.Cut(s.Bytes()[1024:], []byte{0})
	fmt.Printf("parent: the child wrote %q\n", reply)
}

func child() {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: os.Getenv(childEnv), Net: "unix"})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	opts := &shm.ReceiveOptions{MaxSize: 1 << 20}
	if os.Getenv(childEnv+"_SEALED") == "true" {
		opts.RequireSeals = shm.SealSize
	}
	s, err := shm.ReceiveSegment(conn, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	msg, _, _ := bytes.Cut(s.Bytes(), []byte{0})
	fmt.Printf("child:  received a segment of %d bytes saying %q\n", s.Size(), msg)
	copy(s.Bytes()[1024:], "hello from the child")
}
