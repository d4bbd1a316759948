package shm_test

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"sync/atomic"

	"github.com/mindmeld-go/shm"
)

func ExampleCreate() {
	name := fmt.Sprintf("example-%d", os.Getpid()) // any name other processes agree on
	s, err := shm.Create(name, 64<<10)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Unlink(name) // remove the name when done
	defer s.Close()

	copy(s.Bytes(), "hello, shared memory")
	fmt.Println(s.Name() == "/"+name, s.Size())
	fmt.Println(string(s.Bytes()[:20]))
	// Output:
	// true 65536
	// hello, shared memory
}

// Point is a pointer-free struct that can live in shared memory.
type Point struct {
	X, Y int32
	Hits atomic.Uint64 // updated by several processes: use atomics
}

func ExampleView() {
	s, err := shm.CreateTemp("example-", 4096)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Unlink()
	defer s.Close()

	p, err := shm.View[Point](s, 0)
	if err != nil {
		log.Fatal(err)
	}
	p.X, p.Y = 3, 4
	p.Hits.Add(1)

	// A type holding pointers is refused: a pointer means nothing in
	// another process.
	_, err = shm.View[struct{ Name string }](s, 64)
	fmt.Println(errors.Is(err, shm.ErrPointers))
	fmt.Println(p.X, p.Y, p.Hits.Load())
	// Output:
	// true
	// 3 4 1
}

func ExampleOpen_notExist() {
	_, err := shm.Open("no-such-segment")
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	fmt.Println(err)
	// Output:
	// true
	// shm_open /no-such-segment: no such file or directory
}

func ExampleSlice() {
	s, err := shm.CreateTemp("example-", 4096)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Unlink()
	defer s.Close()

	xs, err := shm.Slice[float64](s, 0, 4)
	if err != nil {
		log.Fatal(err)
	}
	for i := range xs {
		xs[i] = float64(i) / 2
	}
	fmt.Println(xs)
	// Output: [0 0.5 1 1.5]
}

// Mailbox is the layout two processes agree on.
type Mailbox struct {
	Done     atomic.Uint32
	Question [32]byte
	Answer   [32]byte
}

// This example runs a second process, the test binary itself, which opens
// the segment by name, reads the question and writes an answer. In a real
// program the peer is any process that knows the name: Go, C, or Python.
func Example_twoProcesses() {
	if os.Getenv("SHM_EXAMPLE_PEER") != "" {
		return // the child's work is done in init below
	}
	s, err := shm.CreateTemp("example-", 4096)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Unlink()
	defer s.Close()
	m, err := shm.View[Mailbox](s, 0)
	if err != nil {
		log.Fatal(err)
	}
	copy(m.Question[:], "what is six times seven?")

	exe, _ := os.Executable()
	peer := exec.Command(exe, "-test.run=^$")
	peer.Env = append(os.Environ(), "SHM_EXAMPLE_PEER="+s.Name())
	peer.Stderr = os.Stderr
	if err := peer.Run(); err != nil {
		log.Fatal(err)
	}
	if m.Done.Load() == 1 {
		fmt.Printf("%s\n", m.Answer[:2])
	}
	// Output: 42
}

func init() {
	name := os.Getenv("SHM_EXAMPLE_PEER")
	if name == "" {
		return
	}
	// The peer process of Example_twoProcesses.
	s, err := shm.Open(name)
	if err != nil {
		log.Fatal(err)
	}
	m, err := shm.View[Mailbox](s, 0)
	if err != nil {
		log.Fatal(err)
	}
	if string(m.Question[:24]) == "what is six times seven?" {
		copy(m.Answer[:], "42")
	}
	m.Done.Store(1)
	s.Close()
	os.Exit(0)
}
