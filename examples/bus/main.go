// Command bus publishes messages to two subscriber processes through a
// lossless broadcast ring in shared memory. It creates the bus, starts two
// copies of itself as subscribers, publishes ten messages, closes the bus,
// waits for the subscribers to read everything and removes the segment.
//
//	go run ./examples/bus
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/bus"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "-subscriber" {
		if err := subscriber(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "subscriber:", err)
			os.Exit(1)
		}
		return
	}
	if err := publisher(); err != nil {
		fmt.Fprintln(os.Stderr, "publisher:", err)
		os.Exit(1)
	}
}

func publisher() error {
	name := fmt.Sprintf("bus-example-%d", os.Getpid())
	cfg := bus.Config{Slots: 16, SlotSize: 64, Subscribers: 4, Lossless: true}
	seg, err := shm.Create(name, bus.Size(cfg))
	if err != nil {
		return err
	}
	defer shm.Unlink(name)
	defer seg.Close()
	p, err := bus.Create(seg, cfg)
	if err != nil {
		return err
	}
	var subs []*exec.Cmd
	for _, who := range []string{"recorder", "detector"} {
		cmd := exec.Command(os.Args[0], "-subscriber", name, who)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		r := bufio.NewScanner(out)
		r.Scan() // "ready": subscribed, so it sees every message from now on
		go func() {
			for r.Scan() {
				fmt.Println(r.Text())
			}
		}()
		subs = append(subs, cmd)
	}
	for i := range 10 {
		if err := p.Send(fmt.Appendf(nil, "frame %d", i)); err != nil {
			return err
		}
	}
	p.Close()
	for _, c := range subs {
		if err := c.Wait(); err != nil {
			return err
		}
	}
	return nil
}

func subscriber(name, who string) error {
	seg, err := shm.Open(name)
	if err != nil {
		return err
	}
	defer seg.Close()
	s, err := bus.Subscribe(seg, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println("ready")
	n := 0
	for {
		msg, err := s.Read() // in place: no copy
		if errors.Is(err, io.EOF) {
			fmt.Printf("%s: %d messages, then EOF\n", who, n)
			return nil
		}
		if err != nil {
			return err
		}
		last := string(msg)
		if err := s.Release(); err != nil {
			return err
		}
		n++
		if n == 10 {
			fmt.Printf("%s: last was %q\n", who, last)
		}
	}
}
