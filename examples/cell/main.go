// Command cell shares a latest-value cell between a writer and two reader
// processes. The writer stores a position a hundred times; each reader
// waits for new versions and checks that every value it loads is
// consistent (its fields agree), then the writer removes the segment.
//
//	go run ./examples/cell
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/cell"
)

// Pose is the shared value: it must hold no pointers.
type Pose struct {
	Seq     uint64
	X, Y, Z float64
	Check   uint64 // = Seq, so a torn copy would show
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-reader" {
		if err := reader(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "reader:", err)
			os.Exit(1)
		}
		return
	}
	if err := writer(); err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(1)
	}
}

func writer() error {
	name := fmt.Sprintf("cell-example-%d", os.Getpid())
	seg, err := shm.Create(name, cell.Size[Pose]())
	if err != nil {
		return err
	}
	defer shm.Unlink(name)
	defer seg.Close()
	c, err := cell.New[Pose](seg, 0)
	if err != nil {
		return err
	}
	var readers []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-reader", name)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		readers = append(readers, cmd)
	}
	for i := uint64(1); i <= 100; i++ {
		c.Store(Pose{Seq: i, X: float64(i), Y: 2 * float64(i), Z: 3 * float64(i), Check: i})
		time.Sleep(time.Millisecond)
	}
	for _, r := range readers {
		if err := r.Wait(); err != nil {
			return err
		}
	}
	return nil
}

func reader(name string) error {
	seg, err := shm.OpenFile(name, os.O_RDONLY, 0, 0) // readers need no write access
	if err != nil {
		return err
	}
	defer seg.Close()
	c, err := cell.Attach[Pose](seg, 0)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ver uint64
	for {
		p, err := c.Load()
		if err != nil {
			return err
		}
		if p.Check != p.Seq || p.X != float64(p.Seq) {
			return fmt.Errorf("torn value %+v", p)
		}
		if p.Seq == 100 {
			fmt.Println("reader: reached version 100, every load consistent")
			return nil
		}
		if ver, err = c.Wait(ctx, ver); err != nil {
			return err
		}
	}
}
