//go:build linux

// Command shmbench measures package ring between two processes and prints
// a table beside, in the same run, Unix domain sockets, pipes, and a C
// baseline built with gcc: an SPSC ring of the same shape in shared memory,
// and futex and spin ping-pongs.
//
//	go run ./cmd/shmbench [-batches 3] [-sizes 64,1024,65536,1048576] [-deaths 20]
//	go run ./cmd/shmbench -ab OTHER [-rounds 5] [-sizes 64]   (A/B against another build: ab.go)
//
// It ends with the time a blocked end takes to notice that its peer was
// killed (SIGKILL to ErrPeerDead), in both directions.
//
// Each figure is the best of several batches, run alternately with its
// baselines: interference on a shared machine only ever adds time. The
// command removes its segments and temporary files, also on Ctrl-C.
package main

import (
	"bufio"
	_ "embed"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/ring"
)

//go:embed c/baseline.c
var baselineC string

const childEnv = "SHMBENCH_CHILD"

var (
	batches  = flag.Int("batches", 3, "batches per measurement; the best is reported")
	sizesArg = flag.String("sizes", "64,1024,65536,1048576", "message sizes in bytes")
	deaths   = flag.Int("deaths", 20, "peer deaths measured in each direction (0: none)")
	ringCap  = 8 << 20
)

func main() {
	if role := os.Getenv(childEnv); role != "" {
		if err := child(role, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "shmbench child:", err)
			os.Exit(1)
		}
		return
	}
	flag.Parse()
	if *abPath != "" {
		if err := runAB(); err != nil {
			fmt.Fprintln(os.Stderr, "shmbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "shmbench:", err)
		cleanup()
		os.Exit(1)
	}
	cleanup()
}

// Segments and files to remove on exit or interrupt.
var (
	cleanMu  sync.Mutex
	cleanups []func()
)

func atExit(f func()) {
	cleanMu.Lock()
	cleanups = append(cleanups, f)
	cleanMu.Unlock()
}

func cleanup() {
	cleanMu.Lock()
	defer cleanMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

var nameSeq int

func newRing(size int, polling bool) (*ring.Ring, error) {
	nameSeq++
	name := fmt.Sprintf("shmbench-%d-%d", os.Getpid(), nameSeq)
	r, err := ring.Create(name, ringCap, &ring.Options{MaxMessage: size, Polling: polling})
	if err != nil {
		return nil, err
	}
	atExit(func() { shm.Unlink(name) })
	return r, nil
}

func command(role string, files []*os.File, args ...string) *exec.Cmd {
	exe, _ := os.Executable()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	return cmd
}

// output runs cmd and returns its standard output's fields.
func output(cmd *exec.Cmd) ([]string, error) {
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %w", cmd.Args, err)
	}
	return strings.Fields(string(out)), nil
}

func num(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }

// count is the number of messages per throughput batch for size.
func count(size int) int { return max(256, min(1_000_000, (256<<20)/size)) }

// ---- throughput ----

// ringThroughput sends n messages of size through a ring to a child and
// returns the child's elapsed time from the first message to the last.
func ringThroughput(size, n int, zeroCopy bool) (time.Duration, error) {
	r, err := newRing(size, false)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	zc := "copy"
	if zeroCopy {
		zc = "zc"
	}
	cmd := command("ringrecv", nil, r.Name(), strconv.Itoa(n), zc)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	p, err := r.Producer()
	if err != nil {
		return 0, err
	}
	msg := make([]byte, size)
	for i := range n {
		if zeroCopy {
			buf, err := p.Claim(size)
			if err != nil {
				return 0, err
			}
			binary.LittleEndian.PutUint64(buf, uint64(i))
			p.Commit()
		} else if err := p.Send(msg); err != nil {
			return 0, err
		}
	}
	p.Close()
	if err := cmd.Wait(); err != nil {
		return 0, err
	}
	return time.Duration(num(strings.TrimSpace(out.String()))), nil
}

// sealedThroughput is ringThroughput (copy in, copy out) on a ring in an
// anonymous segment sealed against shrinking, passed to the child over a
// Unix socket: the configuration whose calls need no fault guard.
func sealedThroughput(size, n int) (time.Duration, error) {
	opts := &ring.Options{MaxMessage: size}
	seg, err := shm.CreateAnonymous(ring.Size(ringCap, opts))
	if err != nil {
		return 0, err
	}
	if err := seg.AddSeals(shm.SealShrink | shm.SealGrow); err != nil {
		seg.Close()
		return 0, err
	}
	r, err := ring.CreateIn(seg, ringCap, opts)
	if err != nil {
		seg.Close()
		return 0, err
	}
	defer r.Close()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return 0, err
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "sealed"), os.NewFile(uintptr(fds[1]), "sealed")
	defer mine.Close()
	cmd := command("sealedrecv", []*os.File{theirs}, strconv.Itoa(n))
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	theirs.Close()
	fc, err := net.FileConn(mine)
	if err != nil {
		return 0, err
	}
	defer fc.Close()
	if err := shm.SendSegment(fc.(*net.UnixConn), r.Segment()); err != nil {
		return 0, err
	}
	p, err := r.Producer()
	if err != nil {
		return 0, err
	}
	msg := make([]byte, size)
	for range n {
		if err := p.Send(msg); err != nil {
			return 0, err
		}
	}
	p.Close()
	if err := cmd.Wait(); err != nil {
		return 0, err
	}
	return time.Duration(num(strings.TrimSpace(out.String()))), nil
}

// streamThroughput sends n framed messages over a socketpair or a pipe.
func streamThroughput(kind string, size, n int) (time.Duration, error) {
	w, rd, err := stream(kind)
	if err != nil {
		return 0, err
	}
	cmd := command("streamrecv", []*os.File{rd}, strconv.Itoa(size), strconv.Itoa(n))
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	rd.Close()
	msg := make([]byte, 4+size)
	binary.LittleEndian.PutUint32(msg, uint32(size))
	for range n {
		if _, err := w.Write(msg); err != nil {
			return 0, err
		}
	}
	w.Close()
	if err := cmd.Wait(); err != nil {
		return 0, err
	}
	return time.Duration(num(strings.TrimSpace(out.String()))), nil
}

// stream returns the two ends of a Unix socket pair ("uds") or a pipe.
func stream(kind string) (w, r *os.File, err error) {
	if kind == "pipe" {
		r, w, err = os.Pipe()
		return w, r, err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "uds-w"), os.NewFile(uintptr(fds[1]), "uds-r"), nil
}

// ---- ping-pong ----

type lat struct{ p50, p99 time.Duration }

func percentiles(rt []time.Duration) lat {
	slices.Sort(rt)
	return lat{rt[len(rt)/2], rt[len(rt)*99/100]}
}

func ppIters(size int, polling bool) int {
	n := 2000
	if polling {
		n = 20000
	}
	return max(100, min(n, (64<<20)/size))
}

func ringPingPong(size int, polling bool) (lat, error) {
	a, err := newRing(size, polling)
	if err != nil {
		return lat{}, err
	}
	defer a.Close()
	b, err := newRing(size, polling)
	if err != nil {
		return lat{}, err
	}
	defer b.Close()
	iters := ppIters(size, polling)
	mode := "block"
	if polling {
		mode = "poll"
	}
	cmd := command("ringecho", nil, a.Name(), b.Name(), strconv.Itoa(iters), mode)
	if err := cmd.Start(); err != nil {
		return lat{}, err
	}
	p, err := a.Producer()
	if err != nil {
		return lat{}, err
	}
	c, err := b.Consumer()
	if err != nil {
		return lat{}, err
	}
	msg, buf := make([]byte, size), make([]byte, size)
	rt := make([]time.Duration, iters)
	for i := range iters {
		t := time.Now()
		if err := p.Send(msg); err != nil {
			return lat{}, err
		}
		if _, err := c.Receive(buf); err != nil {
			return lat{}, err
		}
		rt[i] = time.Since(t)
	}
	p.Close()
	if err := cmd.Wait(); err != nil {
		return lat{}, err
	}
	return percentiles(rt), nil
}

func udsPingPong(size int) (lat, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return lat{}, err
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "uds"), os.NewFile(uintptr(fds[1]), "uds")
	defer mine.Close()
	iters := ppIters(size, false)
	cmd := command("streamecho", []*os.File{theirs}, strconv.Itoa(size), strconv.Itoa(iters))
	if err := cmd.Start(); err != nil {
		return lat{}, err
	}
	theirs.Close()
	msg := make([]byte, 4+size)
	binary.LittleEndian.PutUint32(msg, uint32(size))
	buf := make([]byte, 4+size)
	rt := make([]time.Duration, iters)
	for i := range iters {
		t := time.Now()
		if _, err := mine.Write(msg); err != nil {
			return lat{}, err
		}
		if _, err := io.ReadFull(mine, buf); err != nil {
			return lat{}, err
		}
		rt[i] = time.Since(t)
	}
	if err := cmd.Wait(); err != nil {
		return lat{}, err
	}
	return percentiles(rt), nil
}

// ---- peer death ----

// deathNotice attaches a child as the other end of a ring (the producer
// when blocked is "consumer"), blocks this process's end on the ring
// (empty for a consumer, full for a producer), kills the child with
// SIGKILL and returns the time until the blocked call returns ErrPeerDead.
func deathNotice(blocked string) (time.Duration, error) {
	r, err := newRing(1<<16, false)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	other := "producer"
	if blocked == "producer" {
		other = "consumer"
	}
	cmd := command("ringhang", nil, r.Name(), other)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		return 0, fmt.Errorf("ringhang child: %q, %v", line, err)
	}
	res := make(chan error, 1)
	if blocked == "consumer" {
		c, err := r.Consumer()
		if err != nil {
			return 0, err
		}
		go func() { _, err := c.Receive(make([]byte, 64)); res <- err }()
	} else {
		p, err := r.Producer()
		if err != nil {
			return 0, err
		}
		for p.TrySend(make([]byte, 1000)) == nil {
		}
		go func() { res <- p.Send(make([]byte, 1000)) }()
	}
	time.Sleep(20 * time.Millisecond) // asleep in the kernel by now
	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err = <-res:
	case <-time.After(10 * time.Second):
		return 0, fmt.Errorf("blocked %s: no error 10 s after its peer was killed", blocked)
	}
	d := time.Since(t0)
	if !errors.Is(err, ring.ErrPeerDead) {
		return 0, fmt.Errorf("blocked %s after its peer was killed: %v, want ErrPeerDead", blocked, err)
	}
	return d, nil
}

// ---- children ----

func child(role string, args []string) error {
	switch role {
	case "ringrecv":
		r, err := ring.Open(args[0], nil)
		if err != nil {
			return err
		}
		defer r.Close()
		c, err := r.Consumer()
		if err != nil {
			return err
		}
		n := int(num(args[1]))
		buf := make([]byte, r.MaxMessage())
		var t0 time.Time
		for i := range n {
			if args[2] == "zc" {
				msg, err := c.Read()
				if err != nil {
					return err
				}
				if binary.LittleEndian.Uint64(msg) != uint64(i) {
					return fmt.Errorf("message %d out of order", i)
				}
				c.Release()
			} else if _, err := c.Receive(buf); err != nil {
				return err
			}
			if i == 0 {
				t0 = time.Now()
			}
		}
		fmt.Println(int64(time.Since(t0)))
		return nil
	case "ringecho":
		opts := &ring.Options{Polling: args[3] == "poll"}
		a, err := ring.Open(args[0], opts)
		if err != nil {
			return err
		}
		defer a.Close()
		b, err := ring.Open(args[1], opts)
		if err != nil {
			return err
		}
		defer b.Close()
		c, err := a.Consumer()
		if err != nil {
			return err
		}
		p, err := b.Producer()
		if err != nil {
			return err
		}
		for range int(num(args[2])) {
			msg, err := c.Read()
			if err != nil {
				return err
			}
			if err := p.Send(msg); err != nil {
				return err
			}
			c.Release()
		}
		return nil
	case "sealedrecv":
		fc, err := net.FileConn(os.NewFile(3, "sealed"))
		if err != nil {
			return err
		}
		seg, err := shm.ReceiveSegment(fc.(*net.UnixConn), &shm.ReceiveOptions{RequireSeals: shm.SealShrink})
		if err != nil {
			return err
		}
		r, err := ring.OpenIn(seg, nil)
		if err != nil {
			return err
		}
		defer r.Close()
		c, err := r.Consumer()
		if err != nil {
			return err
		}
		n := int(num(args[0]))
		buf := make([]byte, r.MaxMessage())
		var t0 time.Time
		for i := range n {
			if _, err := c.Receive(buf); err != nil {
				return err
			}
			if i == 0 {
				t0 = time.Now()
			}
		}
		fmt.Println(int64(time.Since(t0)))
		return nil
	case "ringhang":
		r, err := ring.Open(args[0], nil)
		if err != nil {
			return err
		}
		if args[1] == "producer" {
			_, err = r.Producer()
		} else {
			_, err = r.Consumer()
		}
		if err != nil {
			return err
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return nil
	case "streamrecv":
		f := os.NewFile(3, "stream")
		br := bufio.NewReaderSize(f, 256<<10)
		size, n := int(num(args[0])), int(num(args[1]))
		buf := make([]byte, 4+size)
		var t0 time.Time
		for i := range n {
			if _, err := io.ReadFull(br, buf); err != nil {
				return err
			}
			if i == 0 {
				t0 = time.Now()
			}
		}
		fmt.Println(int64(time.Since(t0)))
		return nil
	case "streamecho":
		f := os.NewFile(3, "stream")
		size, n := int(num(args[0])), int(num(args[1]))
		buf := make([]byte, 4+size)
		for range n {
			if _, err := io.ReadFull(f, buf); err != nil {
				return err
			}
			if _, err := f.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

// ---- the run ----

func best(n int, f func() (time.Duration, error)) (time.Duration, error) {
	var b time.Duration
	for range n {
		d, err := f()
		if err != nil {
			return 0, err
		}
		if b == 0 || d < b {
			b = d
		}
	}
	return b, nil
}

func run() error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; cleanup(); os.Exit(130) }()

	dir, err := os.MkdirTemp("", "shmbench")
	if err != nil {
		return err
	}
	atExit(func() { os.RemoveAll(dir) })
	src, bin := filepath.Join(dir, "baseline.c"), filepath.Join(dir, "baseline")
	if err := os.WriteFile(src, []byte(baselineC), 0o600); err != nil {
		return err
	}
	if out, err := exec.Command("gcc", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		return fmt.Errorf("gcc: %v\n%s", err, out)
	}
	var sizes []int
	for _, s := range strings.Split(*sizesArg, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 8 || n > ringCap/4 {
			return fmt.Errorf("bad size %q", s)
		}
		sizes = append(sizes, n)
	}

	fmt.Printf("shmbench: nproc %d, best of %d batches; ring capacity %d MiB\n\n", nprocs(), *batches, ringCap>>20)
	fmt.Println("Throughput, one producer process to one consumer process (copy in, copy out unless noted)")
	fmt.Printf("%-8s %14s %10s %14s %14s %14s %14s %9s %9s %9s %10s %15s %10s\n", "size", "ring msg/s", "ring MB/s", "ring zc msg/s", "UDS msg/s", "pipe msg/s", "C ring msg/s", "×UDS", "×pipe", "×C ring", "zc ×C", "sealed msg/s", "sealed ×C")
	for _, size := range sizes {
		n := count(size)
		ns := min(n, 200_000)
		var dRing, dZC, dUDS, dPipe, dC, dSealed time.Duration
		for range *batches {
			measure := func(d *time.Duration, f func() (time.Duration, error)) error {
				x, err := f()
				if err == nil && (*d == 0 || x < *d) {
					*d = x
				}
				return err
			}
			if err := measure(&dRing, func() (time.Duration, error) { return ringThroughput(size, n, false) }); err != nil {
				return err
			}
			if err := measure(&dZC, func() (time.Duration, error) { return ringThroughput(size, n, true) }); err != nil {
				return err
			}
			if err := measure(&dSealed, func() (time.Duration, error) { return sealedThroughput(size, n) }); err != nil {
				return err
			}
			if err := measure(&dUDS, func() (time.Duration, error) { return streamThroughput("uds", size, ns) }); err != nil {
				return err
			}
			if err := measure(&dPipe, func() (time.Duration, error) { return streamThroughput("pipe", size, ns) }); err != nil {
				return err
			}
			if err := measure(&dC, func() (time.Duration, error) {
				f, err := output(exec.Command(bin, "ring", strconv.Itoa(size), strconv.Itoa(n)))
				if err != nil {
					return 0, err
				}
				return time.Duration(num(f[0])), nil
			}); err != nil {
				return err
			}
		}
		rate := func(d time.Duration, n int) float64 { return float64(n-1) / d.Seconds() }
		rr, rz, ru, rp, rc, rs := rate(dRing, n), rate(dZC, n), rate(dUDS, ns), rate(dPipe, ns), rate(dC, n), rate(dSealed, n)
		fmt.Printf("%-8s %14s %10.0f %14s %14s %14s %14s %9.2f %9.2f %9.2f %10.2f %15s %10.2f\n", sizeName(size), si(rr), rr*float64(size)/1e6, si(rz), si(ru), si(rp), si(rc), rr/ru, rr/rp, rr/rc, rz/rc, si(rs), rs/rc)
	}

	fmt.Println("\nRound trip (ping-pong: send, echo, receive), p50 / p99")
	fmt.Printf("%-8s %20s %20s %8s %20s %20s %8s %20s\n", "size", "ring blocking", "C futex", "×C", "ring polling", "C spin", "×C", "UDS")
	for _, size := range sizes {
		var rb, rpoll, cf, cs, u lat
		for range *batches {
			keep := func(dst *lat, l lat) {
				if dst.p50 == 0 || l.p50 < dst.p50 {
					*dst = l
				}
			}
			l, err := ringPingPong(size, false)
			if err != nil {
				return err
			}
			keep(&rb, l)
			f, err := output(exec.Command(bin, "futexpp", strconv.Itoa(ppIters(size, false))))
			if err != nil {
				return err
			}
			keep(&cf, lat{time.Duration(num(f[0])), time.Duration(num(f[1]))})
			if l, err = ringPingPong(size, true); err != nil {
				return err
			}
			keep(&rpoll, l)
			if f, err = output(exec.Command(bin, "spinpp", strconv.Itoa(ppIters(size, true)))); err != nil {
				return err
			}
			keep(&cs, lat{time.Duration(num(f[0])), time.Duration(num(f[1]))})
			if l, err = udsPingPong(size); err != nil {
				return err
			}
			keep(&u, l)
		}
		fmt.Printf("%-8s %20s %20s %8.2f %20s %20s %8.2f %20s\n", sizeName(size), rb, cf, float64(rb.p50)/float64(cf.p50), rpoll, cs, float64(rpoll.p50)/float64(cs.p50), u)
	}
	fmt.Println("\nC futex and spin ping-pongs carry no payload; ×C compares p50.")
	if *deaths > 0 {
		fmt.Printf("\nPeer death: SIGKILL of the other end's process to ErrPeerDead at the blocked end, %d runs each\n", *deaths)
		fmt.Printf("%-40s %12s %12s\n", "blocked end (killed peer)", "median", "max")
		for _, blocked := range []string{"consumer", "producer"} {
			var ds []time.Duration
			for range *deaths {
				d, err := deathNotice(blocked)
				if err != nil {
					return err
				}
				ds = append(ds, d)
			}
			slices.Sort(ds)
			other := map[string]string{"consumer": "producer", "producer": "consumer"}[blocked]
			fmt.Printf("%-40s %12v %12v\n", blocked+" ("+other+" killed)", round(ds[len(ds)/2]), round(ds[len(ds)-1]))
		}
	}
	return nil
}

func (l lat) String() string { return fmt.Sprintf("%v / %v", round(l.p50), round(l.p99)) }

func round(d time.Duration) time.Duration {
	switch {
	case d > 100*time.Microsecond:
		return d.Round(time.Microsecond)
	case d > time.Microsecond:
		return d.Round(10 * time.Nanosecond)
	}
	return d
}

func si(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2f M", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1f k", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func nprocs() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "processor\t"))
}

var _ = best
