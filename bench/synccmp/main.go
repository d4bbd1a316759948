// Command synccmp compares shm's Mutex and Semaphore with their C
// counterparts in the same run: a PTHREAD_PROCESS_SHARED pthread mutex and
// process-shared POSIX semaphores (sem_init(sem, 1, 0)) in a shm_open
// segment, built with gcc from baseline.c. The two sides run alternately,
// several rounds each, and the fastest round of each side is compared,
// since interference from other work on the machine only ever adds time.
//
//	go run ./bench/synccmp [-rounds 5] [-contend 300000] [-pingpong 50000]
//
// It measures:
//   - uncontended Lock+Unlock, against sync.Mutex (and C's, for reference);
//   - two processes contending for one lock, ns per lock/unlock pair
//     (total pairs done by both processes over the elapsed time);
//   - semaphore ping-pong between two processes, ns per round trip;
//   - time from SIGKILL of a lock's owner to a waiter's takeover.
//
// It leaves nothing in /dev/shm and removes its temporary directory.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mindmeld-go/shm"
)

//go:embed c/baseline.c
var baselineC string

type header struct {
	mu         shm.Mutex
	a, b       shm.Semaphore
	ready, go_ atomic.Uint32
	counter    uint64
}

func main() {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "child-") {
		os.Exit(child(os.Args[1], os.Args[2:]))
	}
	rounds := flag.Int("rounds", 5, "rounds per side")
	nContend := flag.Int("contend", 300000, "lock/unlock pairs per process in the contention test")
	nPing := flag.Int("pingpong", 30000, "round trips in the ping-pong test")
	nUncontended := flag.Int("uncontended", 5000000, "lock/unlock pairs in the uncontended test")
	flag.Parse()
	if err := run(*rounds, *nUncontended, *nContend, *nPing); err != nil {
		fmt.Fprintln(os.Stderr, "synccmp:", err)
		os.Exit(1)
	}
}

func run(rounds, nUnc, nContend, nPing int) error {
	dir, err := os.MkdirTemp("", "synccmp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "baseline.c")
	bin := filepath.Join(dir, "baseline")
	if err := os.WriteFile(src, []byte(baselineC), 0o600); err != nil {
		return err
	}
	if out, err := exec.Command("gcc", "-O2", "-o", bin, src, "-lpthread").CombinedOutput(); err != nil {
		return fmt.Errorf("gcc: %v\n%s", err, out)
	}
	cRun := func(mode string, n int) (float64, error) {
		name := fmt.Sprintf("/synccmp-%d-%d", os.Getpid(), time.Now().UnixNano())
		out, err := exec.Command(bin, mode, strconv.Itoa(n), name).Output()
		if err != nil {
			return 0, fmt.Errorf("baseline %s: %v", mode, err)
		}
		return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	}

	fmt.Printf("machine: %s, %d CPUs, %s/%s, %s\n\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())

	// Uncontended.
	var goUnc, syncUnc, cUnc []float64
	for range rounds {
		goUnc = append(goUnc, uncontended(nUnc, new(shmLocker)))
		syncUnc = append(syncUnc, uncontended(nUnc, new(sync.Mutex)))
		c, err := cRun("uncontended", nUnc)
		if err != nil {
			return err
		}
		cUnc = append(cUnc, c)
	}
	fmt.Printf("%-44s %10s %10s %8s\n", "benchmark (fastest round)", "shm", "baseline", "ratio")
	report("uncontended Lock+Unlock vs sync.Mutex", goUnc, syncUnc)
	report("uncontended Lock+Unlock vs C pthread", goUnc, cUnc)

	// Two processes.
	var goCon, cCon, goPing, cPing []float64
	for range rounds {
		c, err := cRun("contend", nContend)
		if err != nil {
			return err
		}
		cCon = append(cCon, c)
		g, err := twoProcs("contend", nContend)
		if err != nil {
			return err
		}
		goCon = append(goCon, g)
		c, err = cRun("pingpong", nPing)
		if err != nil {
			return err
		}
		cPing = append(cPing, c)
		g, err = twoProcs("pingpong", nPing)
		if err != nil {
			return err
		}
		goPing = append(goPing, g)
	}
	report("2 processes contending, per lock/unlock", goCon, cCon)
	report("semaphore ping-pong round trip", goPing, cPing)

	// Takeover.
	var take []float64
	for range rounds {
		d, err := takeover()
		if err != nil {
			return err
		}
		take = append(take, float64(d))
	}
	slices.Sort(take)
	fmt.Printf("\nSIGKILL of the owner to takeover (ErrOwnerDead), %d runs: min %v, median %v, max %v\n",
		len(take), time.Duration(take[0]).Round(time.Microsecond),
		time.Duration(take[len(take)/2]).Round(time.Microsecond), time.Duration(take[len(take)-1]).Round(time.Microsecond))
	fmt.Println("(a waiter notices a dead owner on its next 50ms liveness check)")
	return nil
}

func report(what string, ours, base []float64) {
	o, b := slices.Min(ours), slices.Min(base)
	fmt.Printf("%-44s %8.1fns %8.1fns %7.2fx\n", what, o, b, o/b)
}

type shmLocker struct {
	_  [8]byte
	mu shm.Mutex
}

func (l *shmLocker) Lock()   { l.mu.Lock() }
func (l *shmLocker) Unlock() { l.mu.Unlock() }

// uncontended times n Lock+Unlock pairs; the locker is called through a
// concrete type switch so both sides pay the same.
func uncontended(n int, l sync.Locker) float64 {
	t0 := time.Now()
	switch m := l.(type) {
	case *shmLocker:
		for range n {
			m.mu.Lock()
			//lint:ignore SA2001 an empty critical section is what is measured or tested
			m.mu.Unlock()
		}
	case *sync.Mutex:
		for range n {
			m.Lock()
			//lint:ignore SA2001 an empty critical section is what is measured or tested
			m.Unlock()
		}
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

// twoProcs runs mode with a child process (this program re-executed) and
// returns ns per lock/unlock pair (over both processes) or per round trip.
func twoProcs(mode string, n int) (float64, error) {
	s, err := shm.CreateTemp("synccmp-", 4096)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	defer s.Unlink()
	h, err := shm.View[header](s, 0)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(os.Args[0], "child-"+mode, s.Name(), strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	for h.ready.Load() == 0 {
		runtime.Gosched()
	}
	t0 := time.Now()
	h.go_.Store(1)
	for range n {
		if mode == "contend" {
			h.mu.Lock()
			h.counter++
			h.mu.Unlock()
		} else {
			h.a.Post()
			h.b.Wait()
		}
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("child %s: %v", mode, err)
	}
	el := float64(time.Since(t0).Nanoseconds())
	if mode == "contend" {
		if h.counter != uint64(2*n) {
			return 0, fmt.Errorf("counter %d, want %d", h.counter, 2*n)
		}
		return el / float64(2*n), nil
	}
	return el / float64(n), nil
}

// takeover measures the time from SIGKILL of a process holding the lock to
// the moment a waiter already blocked in LockContext has the lock.
func takeover() (time.Duration, error) {
	s, err := shm.CreateTemp("synccmp-", 4096)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	defer s.Unlink()
	h, err := shm.View[header](s, 0)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(os.Args[0], "child-hold", s.Name(), "0")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Wait()
	for h.ready.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res <- h.mu.LockContext(ctx)
	}()
	time.Sleep(30 * time.Millisecond) // the waiter is asleep
	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	err = <-res
	d := time.Since(t0)
	if !errors.Is(err, shm.ErrOwnerDead) {
		return 0, fmt.Errorf("LockContext after SIGKILL = %v, want ErrOwnerDead", err)
	}
	h.mu.Unlock()
	return d, nil
}

func child(role string, args []string) int {
	s, err := shm.Open(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	h, err := shm.View[header](s, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, _ := strconv.Atoi(args[1])
	if role == "child-hold" {
		h.mu.Lock()
		h.ready.Store(1)
		time.Sleep(time.Hour)
	}
	h.ready.Store(1)
	for h.go_.Load() == 0 {
		runtime.Gosched()
	}
	for range n {
		if role == "child-contend" {
			h.mu.Lock()
			h.counter++
			h.mu.Unlock()
		} else {
			h.a.Wait()
			h.b.Post()
		}
	}
	return 0
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
