// Command shmecho is an echo server and its client over shmnet, in two
// processes. Run without arguments it starts the server in a second copy
// of itself, sends it a few lines and prints what comes back, with the
// server's view of the client's credentials.
//
//	go run ./examples/shmecho                       # both sides
//	go run ./examples/shmecho -serve /tmp/echo.sock # a server, until ^C
//	go run ./examples/shmecho -dial /tmp/echo.sock  # a client: stdin to the server
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"

	"github.com/mindmeld-go/shm/shmnet"
)

func main() {
	log.SetFlags(0)
	serveAddr := flag.String("serve", "", "listen on this socket and echo")
	dialAddr := flag.String("dial", "", "dial this socket and copy standard input to it")
	flag.Parse()
	switch {
	case *serveAddr != "":
		serve(*serveAddr)
	case *dialAddr != "":
		c, err := shmnet.Dial(*dialAddr)
		if err != nil {
			log.Fatal(err)
		}
		go io.Copy(os.Stdout, c)
		io.Copy(c, os.Stdin)
		c.Close()
	default:
		demo()
	}
}

// serve echoes every connection until interrupted; closing the listener
// removes the socket file.
func serve(addr string) {
	l, err := shmnet.Listen(addr)
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	closed := make(chan struct{})
	go func() { <-sig; l.Close(); close(closed) }()
	fmt.Printf("[%d] listening on %s\n", os.Getpid(), addr)
	for {
		c, err := l.AcceptShm()
		if err != nil {
			// Accept fails as soon as Close begins; the socket file is
			// removed only when Close returns, so wait for it before exiting.
			if !errors.Is(err, net.ErrClosed) {
				log.Fatal(err)
			}
			<-closed
			return
		}
		go func() {
			defer c.Close()
			cred, _ := c.PeerCred()
			fmt.Printf("[%d] connection from pid %d (uid %d)\n", os.Getpid(), cred.PID, cred.UID)
			io.Copy(c, c)
		}()
	}
}

// demo runs a server in a child process and talks to it.
func demo() {
	dir, err := os.MkdirTemp("", "shmecho")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	addr := filepath.Join(dir, "echo.sock")
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	srv := exec.Command(exe, "-serve", addr)
	out, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	lines.Scan() // "listening on"
	fmt.Println(lines.Text())
	go func() {
		for lines.Scan() {
			fmt.Println(lines.Text())
		}
	}()

	c, err := shmnet.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	r := bufio.NewReader(c)
	for _, msg := range []string{"hello over shared memory", "a second line"} {
		fmt.Fprintf(c, "%s\n", msg)
		back, err := r.ReadString('\n')
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("[%d] sent %q, got back %q\n", os.Getpid(), msg, back[:len(back)-1])
	}
	c.Close()
	srv.Process.Signal(os.Interrupt)
	srv.Wait()
	if _, err := os.Stat(addr); os.IsNotExist(err) {
		fmt.Printf("[%d] server stopped, socket removed\n", os.Getpid())
	}
}
