// Command synccmp compares shm's Mutex and Semaphore with their C
// counterparts in the same run: a PTHREAD_PROCESS_SHARED pthread mutex and
// process-shared POSIX semaphores (sem_init(sem, 1, 0)) in a shm_open
// segment, built with gcc from baseline.c. The two sides run alternately,
// several rounds each, and the fastest round of each side is compared,
// since interference from other work on the machine only ever adds time.
//
//	go run ./bench/synccmp [-rounds 5] [-uncontended 5000000] [-contend 300000]
//	    [-pingpong 30000] [-takeover 50] [-cancel 20000]
//
// It measures:
//   - uncontended Lock+Unlock, against sync.Mutex (and C's, for reference);
//   - two processes contending for one lock, ns per lock/unlock pair
//     (total pairs done by both processes over the elapsed time);
//   - semaphore ping-pong between two processes, ns per round trip;
//   - time from SIGKILL of a lock's owner to the takeover by a waiter
//     already blocked in LockContext (min, median, max over -takeover
//     trials), with the owner in this PID namespace and, on Linux, in
//     another one (unshare --pid --fork --kill-child --mount-proc; the row
//     is skipped, saying why, where that is not permitted);
//   - cancellation latency (median, p99, max over -cancel trials): the time
//     from a context's cancel() by another goroutine after a random 0–200µs,
//     or from its deadline 0–200µs away, to the return of Mutex.LockContext
//     on a lock held by another process or by this one, and of
//     Semaphore.WaitContext at count 0.
//
// It leaves nothing in /dev/shm, no child process, and removes its
// temporary directory.
package main

import (
	_ "embed"
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
	pid        atomic.Uint32 // a holder's PID as it sees it (1 in a new PID namespace)
}

func main() {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "child-") {
		os.Exit(child(os.Args[1], os.Args[2:]))
	}
	rounds := flag.Int("rounds", 5, "rounds per side")
	nContend := flag.Int("contend", 300000, "lock/unlock pairs per process in the contention test")
	nPing := flag.Int("pingpong", 30000, "round trips in the ping-pong test")
	nUncontended := flag.Int("uncontended", 5000000, "lock/unlock pairs in the uncontended test")
	nTake := flag.Int("takeover", 50, "SIGKILL-to-takeover trials per PID namespace mode")
	nCancel := flag.Int("cancel", 20000, "trials per case in the cancellation test")
	flag.Parse()
	if err := run(*rounds, *nUncontended, *nContend, *nPing, *nTake, *nCancel); err != nil {
		fmt.Fprintln(os.Stderr, "synccmp:", err)
		os.Exit(1)
	}
}

func run(rounds, nUnc, nContend, nPing, nTake, nCancel int) error {
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
	fmt.Printf("\n%-58s %10s %10s %10s\n", fmt.Sprintf("SIGKILL of the owner to takeover, %d trials each", nTake), "min", "median", "max")
	for _, ns := range []bool{false, true} {
		what := "owner in this PID namespace"
		if ns {
			what = "owner in another PID namespace"
			if why := pidnsSkip(); why != "" {
				fmt.Printf("  %-56s skipped: %s\n", what, why)
				continue
			}
		}
		var take []time.Duration
		for range nTake {
			d, err := takeover(ns)
			if err != nil {
				return err
			}
			take = append(take, d)
		}
		slices.Sort(take)
		fmt.Printf("  %-56s %10v %10v %10v\n", what, round(take[0]), round(take[len(take)/2]), round(take[len(take)-1]))
	}
	fmt.Println("  (targets: median ≤ 5ms, max ≤ 50ms)")

	// Cancellation.
	return cancellation(nCancel)
}

// round rounds d for printing: to the microsecond.
func round(d time.Duration) time.Duration { return d.Round(time.Microsecond) }

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
		// Hold the lock until killed, or until the parent is gone (then
		// the lock is let go with the segment).
		ppid := os.Getppid()
		h.pid.Store(uint32(os.Getpid()))
		h.mu.Lock()
		h.ready.Store(1)
		for os.Getppid() == ppid {
			time.Sleep(100 * time.Millisecond)
		}
		return 0
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
