package shm_test

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"

	"github.com/mindmeld-go/shm"
)

// Counter is the layout of the segment in the Mutex example: the lock and
// the data it guards, side by side.
type Counter struct {
	Mu    shm.Mutex
	Value uint64 // guarded by Mu
}

// addToCounter is what each process runs: open the segment by name, place
// the Counter on it, and add n under the lock.
func addToCounter(name string, n int) error {
	s, err := shm.Open(name)
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := shm.View[Counter](s, 0)
	if err != nil {
		return err
	}
	for range n {
		c.Mu.Lock()
		c.Value++
		c.Mu.Unlock()
	}
	return nil
}

// Two processes, this one and a second run of the same program, add to one
// counter in shared memory under a shm.Mutex.
func ExampleMutex() {
	s, err := shm.CreateTemp("example-", 4096) // zero-filled: the Mutex is unlocked
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	defer s.Unlink()

	other := startSelf("example-counter", s.Name()) // the other process
	if err := addToCounter(s.Name(), 10000); err != nil {
		log.Fatal(err)
	}
	if err := other.Wait(); err != nil {
		log.Fatal(err)
	}

	c, _ := shm.View[Counter](s, 0)
	c.Mu.Lock()
	fmt.Println("counter:", c.Value)
	c.Mu.Unlock()
	// Output: counter: 20000
}

// Queue is the layout of the segment in the Semaphore example: a bounded
// buffer with a semaphore counting free slots and one counting items.
type Queue struct {
	Free, Items shm.Semaphore
	Head, Tail  atomic.Uint32 // one producer, one consumer
	Buf         [8]int64
}

// produce is the producer process: it sends 1..n and then 0 as the end.
func produce(name string, n int) error {
	s, err := shm.Open(name)
	if err != nil {
		return err
	}
	defer s.Close()
	q, err := shm.View[Queue](s, 0)
	if err != nil {
		return err
	}
	for i := 1; i <= n+1; i++ {
		v := int64(i)
		if i == n+1 {
			v = 0
		}
		q.Free.Wait()
		t := q.Tail.Load()
		q.Buf[t%uint32(len(q.Buf))] = v
		q.Tail.Store(t + 1)
		q.Items.Post()
	}
	return nil
}

// A producer process sends numbers through a bounded buffer in shared
// memory; this process consumes them. Two semaphores count the free slots
// and the items, as in the classic solution with POSIX semaphores.
func ExampleSemaphore() {
	s, err := shm.CreateTemp("example-", 4096)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	defer s.Unlink()
	q, err := shm.View[Queue](s, 0)
	if err != nil {
		log.Fatal(err)
	}
	for range len(q.Buf) {
		q.Free.Post()
	}

	producer := startSelf("example-producer", s.Name())
	var count, sum int64
	for {
		q.Items.Wait()
		h := q.Head.Load()
		v := q.Buf[h%uint32(len(q.Buf))]
		q.Head.Store(h + 1)
		q.Free.Post()
		if v == 0 {
			break
		}
		count++
		sum += v
	}
	if err := producer.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("items:", count, "sum:", sum)
	// Output: items: 100 sum: 5050
}

// startSelf starts this test binary again as a second process in role (see
// helper_test.go); a real program would start another program, or itself
// with an argument.
func startSelf(role string, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHM_TEST_CHILD="+role, "SHM_TEST_ARGS="+strings.Join(args, "\x1f"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	return cmd
}

func init() { shm.SetExampleChildren(addToCounter, produce) }
