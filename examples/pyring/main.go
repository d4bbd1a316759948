// Command pyring passes a float64 array between Go and Python without
// copying it into or out of messages: Go fills 1,000 float64s in place in a
// ring (Producer.Claim), the Python script pyring.py views them with
// numpy.frombuffer (Consumer.read), doubles them straight into a claim on a
// second ring, and Go checks what comes back in place (Consumer.Read).
//
//	go run ./examples/pyring [python]   # python defaults to $SHM_PYTHON, then python3
package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/ring"
)

const n = 1000

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pyring:", err)
		os.Exit(1)
	}
}

func run() error {
	python := os.Getenv("SHM_PYTHON")
	if len(os.Args) > 1 {
		python = os.Args[1]
	}
	if python == "" {
		python = "python3"
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "pyring.py")
	toPy, fromPy := fmt.Sprintf("/pyring-%d-in", os.Getpid()), fmt.Sprintf("/pyring-%d-out", os.Getpid())
	in, err := ring.Create(toPy, 1<<16, &ring.Options{MaxMessage: 8 * n})
	if err != nil {
		return err
	}
	defer shm.Unlink(toPy)
	defer in.Close()
	out, err := ring.Create(fromPy, 1<<16, &ring.Options{MaxMessage: 8 * n})
	if err != nil {
		return err
	}
	defer shm.Unlink(fromPy)
	defer out.Close()
	c, err := out.Consumer()
	if err != nil {
		return err
	}
	defer c.Close()
	cmd := exec.Command(python, script, toPy, fromPy)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	p, err := in.Producer()
	if err != nil {
		return err
	}
	buf, err := p.Claim(8 * n) // the array, in the ring
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(float64(i)+0.5))
	}
	if err := p.Commit(); err != nil {
		return err
	}
	_ = p.Close()
	msg, err := c.Read() // Python's answer, in the ring
	if err != nil {
		return err
	}
	if len(msg) != 8*n {
		return fmt.Errorf("answer of %d bytes, want %d", len(msg), 8*n)
	}
	for i := 0; i < n; i++ {
		if got := math.Float64frombits(binary.LittleEndian.Uint64(msg[8*i:])); got != 2*(float64(i)+0.5) {
			return fmt.Errorf("element %d = %v, want %v", i, got, 2*(float64(i)+0.5))
		}
	}
	if err := c.Release(); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return err
	}
	fmt.Printf("ok: %d float64s to Python and back doubled, zero-copy both ways\n", n)
	return nil
}
