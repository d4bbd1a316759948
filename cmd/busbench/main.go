// Command busbench measures packages bus and cell between real processes
// and prints each figure beside its baseline, with the ratio, in one run:
//
//   - the producer's cost per 64-byte message on a lossy bus with 1, 2 and 4
//     subscriber processes;
//
//   - delivered throughput to 4 subscriber processes at 1 KiB on a lossless
//     bus, against the same fan-out done with 4 single-producer rings
//     (package ring, 4 copies), subscribers blocking and then polling;
//
//   - Cell Load and Store of a 64-byte value, uncontended, against a plain
//     copy of the same 64 bytes;
//
//   - Cell Load while another process stores in a loop: the retry rate.
//
//     go run ./cmd/busbench [-rounds 3] [-n 1000000]
//
// Each figure is the best of -rounds rounds: interference on a shared
// machine only adds time. Segments are removed at the end.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/bus"
	"github.com/mindmeld-go/shm/cell"
	"github.com/mindmeld-go/shm/ring"
)

const childEnv = "BUSBENCH_CHILD"

var (
	rounds = flag.Int("rounds", 3, "rounds per figure; the best is reported")
	count  = flag.Int("n", 1_000_000, "messages per throughput round")
)

func main() {
	if role := os.Getenv(childEnv); role != "" {
		if err := child(role, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "busbench child:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	fmt.Printf("busbench: %s/%s, %d CPUs, %s, %d rounds, best of each\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), *rounds)
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "busbench:", err)
		os.Exit(1)
	}
}

var seq int

func name() string {
	seq++
	return fmt.Sprintf("busbench-%d-%d", os.Getpid(), seq)
}

func best(f func() (float64, error)) (float64, error) {
	b := -1.0
	for range *rounds {
		v, err := f()
		if err != nil {
			return 0, err
		}
		if b < 0 || v < b {
			b = v
		}
	}
	return b, nil
}

func run() error {
	// 1. Producer cost, lossy, 64 B.
	fmt.Println("producer cost per 64 B message, lossy bus, subscribers blocking:")
	var one float64
	for _, subs := range []int{1, 2, 4} {
		ns, err := best(func() (float64, error) { return producerCost(subs, 64, *count) })
		if err != nil {
			return err
		}
		if subs == 1 {
			one = ns
		}
		fmt.Printf("  %d subscriber(s): %7.1f ns/msg   %.2f× the 1-subscriber figure (target at 4: ≤ 1.2×)\n", subs, ns, ns/one)
	}

	// 2. Delivered throughput, 4 subscribers, 1 KiB.
	fmt.Println("\ndelivered throughput, 4 subscriber processes, 1 KiB messages (aggregate over the 4):")
	for _, polling := range []bool{false, true} {
		mode := "blocking"
		if polling {
			mode = "polling"
		}
		n := *count / 4
		bns, err := best(func() (float64, error) { return fanOutBus(4, 1024, n, polling) })
		if err != nil {
			return err
		}
		rns, err := best(func() (float64, error) { return fanOutRings(4, 1024, n, polling) })
		if err != nil {
			return err
		}
		mb := func(ns float64) float64 { return 4 * 1024 / ns * 1e9 / (1 << 20) }
		fmt.Printf("  %-8s lossless bus: %7.0f MiB/s   4 SPSC rings: %7.0f MiB/s   %.2f× (target ≥ 1.5×)\n", mode, mb(bns), mb(rns), rns/bns)
	}

	// 3. Cell, uncontended.
	fmt.Println("\ncell, 64-byte value, uncontended, one process:")
	load, store, plain, err := cellCosts()
	if err != nil {
		return err
	}
	fmt.Printf("  plain copy: %.1f ns   Load: %.1f ns (%.2f×)   Store: %.1f ns (%.2f×)   (target ≤ 3×)\n", plain, load, load/plain, store, store/plain)

	// 4. Cell under a writer.
	fmt.Println("\ncell Load while another process stores in a loop:")
	loads, retries, ns, stores, err := cellContended(2_000_000)
	if err != nil {
		return err
	}
	fmt.Printf("  %d loads, %.1f ns each, %d retries (%.3f%% of loads), against %d stores\n", loads, ns, retries, 100*float64(retries)/float64(loads), stores)
	return nil
}

type msg64 [8]uint64

// producerCost times n sends on a lossy bus with subs subscriber processes.
func producerCost(subs, size, n int) (float64, error) {
	nm := name()
	c := bus.Config{Slots: 4096, SlotSize: size, Subscribers: 8}
	seg, err := shm.Create(nm, bus.Size(c))
	if err != nil {
		return 0, err
	}
	defer shm.Unlink(nm)
	defer seg.Close()
	p, err := bus.Create(seg, c)
	if err != nil {
		return 0, err
	}
	cmds, err := startSubs("bussub", nm, subs, "false")
	if err != nil {
		return 0, err
	}
	buf := make([]byte, size)
	start := time.Now()
	for i := range n {
		buf[0] = byte(i)
		p.Send(buf)
	}
	el := time.Since(start)
	p.Close()
	return float64(el.Nanoseconds()) / float64(n), waitAll(cmds)
}

// fanOutBus: lossless bus, subs subscriber processes, n messages; time
// until every subscriber has read all, per message.
func fanOutBus(subs, size, n int, polling bool) (float64, error) {
	nm := name()
	c := bus.Config{Slots: 1024, SlotSize: size, Subscribers: 8, Lossless: true}
	seg, err := shm.Create(nm, bus.Size(c))
	if err != nil {
		return 0, err
	}
	defer shm.Unlink(nm)
	defer seg.Close()
	p, err := bus.Create(seg, c)
	if err != nil {
		return 0, err
	}
	cmds, err := startSubs("bussub", nm, subs, strconv.FormatBool(polling))
	if err != nil {
		return 0, err
	}
	buf := make([]byte, size)
	start := time.Now()
	for range n {
		if err := p.Send(buf); err != nil {
			return 0, err
		}
	}
	p.Close()
	err = waitAll(cmds)
	return float64(time.Since(start).Nanoseconds()) / float64(n), err
}

// fanOutRings: the same fan-out with one SPSC ring per subscriber.
func fanOutRings(subs, size, n int, polling bool) (float64, error) {
	var prods []*ring.Producer
	var rings []*ring.Ring
	var names []string
	defer func() {
		for _, r := range rings {
			r.Close()
		}
		for _, nm := range names {
			shm.Unlink(nm)
		}
	}()
	for range subs {
		nm := name()
		r, err := ring.Create(nm, 1<<21, &ring.Options{MaxMessage: size, Polling: polling})
		if err != nil {
			return 0, err
		}
		names, rings = append(names, nm), append(rings, r)
		p, err := r.Producer()
		if err != nil {
			return 0, err
		}
		prods = append(prods, p)
	}
	var cmds []*exec.Cmd
	for _, nm := range names {
		c, err := startSubs("ringsub", nm, 1, strconv.FormatBool(polling))
		if err != nil {
			return 0, err
		}
		cmds = append(cmds, c...)
	}
	buf := make([]byte, size)
	start := time.Now()
	for range n {
		for _, p := range prods {
			if err := p.Send(buf); err != nil {
				return 0, err
			}
		}
	}
	for _, p := range prods {
		p.Close()
	}
	err := waitAll(cmds)
	return float64(time.Since(start).Nanoseconds()) / float64(n), err
}

func startSubs(role, nm string, k int, arg string) ([]*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmds []*exec.Cmd
	for range k {
		cmd := exec.Command(exe, nm, arg)
		cmd.Env = append(os.Environ(), childEnv+"="+role)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		var b [6]byte
		if _, err := io.ReadFull(out, b[:]); err != nil || string(b[:]) != "ready\n" {
			return nil, fmt.Errorf("child %s did not start: %v", role, err)
		}
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}

func waitAll(cmds []*exec.Cmd) error {
	var errs []error
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sink keeps the copies timed in cellCosts from being optimised away.
var sink msg64

func cellCosts() (load, store, plain float64, err error) {
	nm := name()
	seg, err := shm.Create(nm, 4096)
	if err != nil {
		return
	}
	defer shm.Unlink(nm)
	defer seg.Close()
	c, err := cell.New[msg64](seg, 64)
	if err != nil {
		return
	}
	raw, err := shm.View[msg64](seg, 1024)
	if err != nil {
		return
	}
	const n = 5_000_000
	timeIt := func(f func(i int)) (float64, error) {
		return best(func() (float64, error) {
			start := time.Now()
			for i := range n {
				f(i)
			}
			return float64(time.Since(start).Nanoseconds()) / n, nil
		})
	}
	v := msg64{1, 2, 3, 4, 5, 6, 7, 8}
	if plain, err = timeIt(func(i int) { sink = *raw; raw[0] = uint64(i) }); err != nil {
		return
	}
	if load, err = timeIt(func(int) { sink, _ = c.Load() }); err != nil {
		return
	}
	store, err = timeIt(func(i int) { v[0] = uint64(i); c.Store(v) })
	runtime.KeepAlive(sink[0])
	return
}

func cellContended(n int) (loads, retries uint64, ns float64, stores uint64, err error) {
	nm := name()
	seg, err := shm.Create(nm, 4096)
	if err != nil {
		return
	}
	defer shm.Unlink(nm)
	defer seg.Close()
	c, err := cell.New[msg64](seg, 64)
	if err != nil {
		return
	}
	cmds, err := startSubs("cellwriter", nm, 1, "")
	if err != nil {
		return
	}
	start := time.Now()
	for range n {
		if _, err = c.Load(); err != nil {
			return
		}
	}
	ns = float64(time.Since(start).Nanoseconds()) / float64(n)
	stores, _ = c.Version()
	cmds[0].Process.Kill()
	cmds[0].Wait()
	return uint64(n), c.Retries(), ns, stores, nil
}

func child(role string, args []string) error {
	seg, err := shm.Open(args[0])
	if err != nil {
		return err
	}
	defer seg.Close()
	switch role {
	case "bussub":
		s, err := bus.Subscribe(seg, &bus.Options{Polling: args[1] == "true"})
		if err != nil {
			return err
		}
		defer s.Close()
		fmt.Print("ready\n")
		buf := make([]byte, 1<<16)
		for {
			_, err := s.Receive(buf)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil && !errors.Is(err, bus.ErrLapped) {
				return err
			}
		}
	case "ringsub":
		r, err := ring.OpenIn(seg, &ring.Options{Polling: args[1] == "true"})
		if err != nil {
			return err
		}
		c, err := r.Consumer()
		if err != nil {
			return err
		}
		fmt.Print("ready\n")
		buf := make([]byte, 1<<16)
		for {
			_, err := c.Receive(buf)
			if errors.Is(err, io.EOF) {
				c.Close()
				return nil
			}
			if err != nil {
				return err
			}
		}
	case "cellwriter":
		c, err := cell.Attach[msg64](seg, 64)
		if err != nil {
			return err
		}
		fmt.Print("ready\n")
		var v msg64
		for i := uint64(0); ; i++ {
			v[0], v[7] = i, i
			c.Store(v)
		}
	}
	return fmt.Errorf("unknown role %q", strings.TrimSpace(role))
}
