//go:build linux

// Command lifecycle compares the cost of a segment's whole life (create,
// size, map, unmap, close, unlink) made by this package with the same life
// made by C programs, in the same run:
//
//   - "same": C making the calls our Linux Create/Close/Unlink make: open
//     /dev/shm with O_TMPFILE, fchmod, fallocate, linkat of /proc/self/fd/N,
//     mmap, F_OFD_SETLK (the liveness lock), F_OFD_SETLK unlock, munmap,
//     close, unlink. The target is ours/same ≤ 1.10.
//   - "minimal": the lecture's calls: shm_open(O_CREAT|O_RDWR), ftruncate,
//     mmap, munmap, close, shm_unlink. same/minimal is what the guards cost.
//   - variants of "same" dropping one guard each, so each guard's cost can be
//     read off: no-presence (no liveness lock), no-fallocate (ftruncate
//     instead: no reservation), no-fchmod
//     (umask applies), no-tmpfile (open O_CREAT|O_EXCL on the final name: the
//     name is visible before it is sized), tmpname-link (the fallback publish:
//     temporary name, link, unlink), open-ftruncate (none of the guards).
//
// The C programs are built with gcc in a temporary directory and run as
// long-lived processes that time batches of cycles on request; ours runs in
// this process. The sides alternate batch by batch, in a random order each round, and
// the report keeps each side's fastest batch: on a shared machine
// interference only ever adds time.
//
// Usage:
//
//	go run ./bench/lifecycle [-batch 20] [-rounds 400] [-sizes 4096,1048576]
//
// It removes its temporary directory and every /dev/shm name it made (they
// all start with "shmbench-<pid>-"), also when interrupted.
package main

import (
	"bufio"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/mindmeld-go/shm"
	"golang.org/x/sys/unix"
)

//go:embed c/lifecycle.c
var cSource []byte

// variants are the C programs' variants, in the order reported.
var variants = []struct{ name, what string }{
	{"same", "C, the same calls as ours"},
	{"minimal", "C, the lecture's calls (shm_open, ftruncate)"},
	{"no-presence", "same, without the liveness lock (F_OFD_SETLK)"},
	{"no-fallocate", "same, ftruncate instead of fallocate"},
	{"no-fchmod", "same, without fchmod"},
	{"no-tmpfile", "same, open O_CREAT|O_EXCL instead of O_TMPFILE+linkat"},
	{"tmpname-link", "same, temporary name + link + unlink instead of O_TMPFILE+linkat"},
	{"open-ftruncate", "open O_CREAT|O_EXCL + ftruncate (no guard)"},
}

var prefix = fmt.Sprintf("shmbench-%d-", os.Getpid())

func main() {
	batch := flag.Int("batch", 20, "cycles per batch")
	rounds := flag.Int("rounds", 400, "batches per side")
	sizesFlag := flag.String("sizes", "4096,1048576", "segment sizes in bytes, comma-separated")
	flag.Parse()
	var sizes []int
	for _, f := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatalf("bad size %q", f)
		}
		sizes = append(sizes, n)
	}

	dir, err := os.MkdirTemp("", "shmbench-")
	if err != nil {
		fatalf("%v", err)
	}
	cleanup := func() {
		os.RemoveAll(dir)
		removeNames()
	}
	defer cleanup()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		// Stopping the C children closes their input; they exit and we
		// remove what is left.
		cleanup()
		os.Exit(130)
	}()

	exe, err := build(dir)
	if err != nil {
		cleanup()
		fatalf("%v", err)
	}

	fmt.Printf("machine: %s, %d CPUs, Linux %s, %s\n", cpuModel(), runtime.NumCPU(), kernel(), runtime.Version())
	fmt.Printf("command: go run ./bench/lifecycle -batch %d -rounds %d -sizes %s\n", *batch, *rounds, *sizesFlag)
	fmt.Printf("each figure is the fastest batch of %d create/close/unlink cycles, in ns per cycle\n\n", *batch)
	for _, size := range sizes {
		if err := compare(exe, size, *batch, *rounds); err != nil {
			cleanup()
			fatalf("%v", err)
		}
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "lifecycle: "+format+"\n", args...)
	os.Exit(1)
}

// build compiles the C program into dir.
func build(dir string) (string, error) {
	src := filepath.Join(dir, "lifecycle.c")
	exe := filepath.Join(dir, "lifecycle")
	if err := os.WriteFile(src, cSource, 0o600); err != nil {
		return "", err
	}
	out, err := exec.Command("gcc", "-O2", "-Wall", "-o", exe, src, "-lrt").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gcc: %v\n%s", err, out)
	}
	return exe, nil
}

// removeNames unlinks every segment this run made.
func removeNames() {
	ents, _ := os.ReadDir("/dev/shm")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			os.Remove(filepath.Join("/dev/shm", e.Name()))
		}
	}
}

// cPeer is a running C variant: it runs n cycles when sent n and answers
// with the elapsed nanoseconds.
type cPeer struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startC(exe, variant string, size int) (*cPeer, error) {
	cmd := exec.Command(exe, variant, strconv.Itoa(size), prefix+variant)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &cPeer{cmd, in, bufio.NewScanner(out)}, nil
}

func (p *cPeer) run(n int) (time.Duration, error) {
	if _, err := fmt.Fprintf(p.in, "%d\n", n); err != nil {
		return 0, err
	}
	if !p.out.Scan() {
		return 0, fmt.Errorf("%v: no answer (err %v)", p.cmd.Args, p.out.Err())
	}
	ns, err := strconv.ParseInt(p.out.Text(), 10, 64)
	return time.Duration(ns), err
}

func (p *cPeer) stop() {
	p.in.Close()
	p.cmd.Wait()
}

// ours runs n cycles of this package's lifecycle.
func ours(name string, size, n int) (time.Duration, error) {
	t0 := time.Now()
	for range n {
		s, err := shm.Create(name, size)
		if err != nil {
			return 0, err
		}
		if err := s.Close(); err != nil {
			return 0, err
		}
		if err := shm.Unlink(name); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}

// raw runs n cycles of the same system calls as ours, made directly
// through golang.org/x/sys/unix with no library around them: the floor for
// any Go implementation, runtime system call overhead included.
func raw(name string, size, n int) (time.Duration, error) {
	path := "/dev/shm/" + name
	pathp, _ := unix.BytePtrFromString(path)
	dirp, _ := unix.BytePtrFromString("/dev/shm")
	cwd := unix.AT_FDCWD
	t0 := time.Now()
	for range n {
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(dirp)),
			uintptr(unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC), 0o600, 0, 0)
		if e != 0 {
			return 0, fmt.Errorf("open: %w", e)
		}
		if err := unix.Fchmod(int(fd), 0o600); err != nil {
			return 0, fmt.Errorf("fchmod: %w", err)
		}
		if err := unix.Fallocate(int(fd), 0, 0, int64(size)); err != nil {
			return 0, fmt.Errorf("fallocate: %w", err)
		}
		if err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(fd)), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW); err != nil {
			return 0, fmt.Errorf("linkat: %w", err)
		}
		addr, _, e := unix.Syscall6(unix.SYS_MMAP, 0, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED, fd, 0)
		if e != 0 {
			return 0, fmt.Errorf("mmap: %w", e)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Start: 1 << 62, Len: 1}
		if err := unix.FcntlFlock(fd, unix.F_OFD_SETLK, &lk); err != nil {
			return 0, fmt.Errorf("fcntl F_OFD_SETLK: %w", err)
		}
		lk.Type = unix.F_UNLCK
		if err := unix.FcntlFlock(fd, unix.F_OFD_SETLK, &lk); err != nil {
			return 0, fmt.Errorf("fcntl F_OFD_SETLK unlock: %w", err)
		}
		if _, _, e := unix.Syscall(unix.SYS_MUNMAP, addr, uintptr(size), 0); e != 0 {
			return 0, fmt.Errorf("munmap: %w", e)
		}
		if err := unix.Close(int(fd)); err != nil {
			return 0, fmt.Errorf("close: %w", err)
		}
		if _, _, e := unix.Syscall(unix.SYS_UNLINKAT, uintptr(cwd), uintptr(unsafe.Pointer(pathp)), 0); e != 0 {
			return 0, fmt.Errorf("unlink: %w", e)
		}
	}
	return time.Since(t0), nil
}

// compare runs every side alternately for size bytes and prints the table.
func compare(exe string, size, batch, rounds int) error {
	peers := make([]*cPeer, len(variants))
	defer func() {
		for _, p := range peers {
			if p != nil {
				p.stop()
			}
		}
	}()
	for i, v := range variants {
		p, err := startC(exe, v.name, size)
		if err != nil {
			return err
		}
		peers[i] = p
	}
	// Side 0 is ours, side 1 the same calls made raw from Go; side i+2 is
	// variants[i].
	const goSides = 2
	sides := len(variants) + goSides
	all := make([][]time.Duration, sides)
	runSide := func(i int) (time.Duration, error) {
		switch i {
		case 0:
			return ours(prefix+"go", size, batch)
		case 1:
			return raw(prefix+"go-raw", size, batch)
		}
		return peers[i-goSides].run(batch)
	}
	// One warm-up batch per side, not counted.
	for i := range sides {
		if _, err := runSide(i); err != nil {
			return err
		}
	}
	// A fresh random order every round, so no side always runs right after
	// another (say, ours always after a C process's batch).
	order := make([]int, sides)
	for i := range order {
		order[i] = i
	}
	for range rounds {
		rand.Shuffle(sides, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			d, err := runSide(i)
			if err != nil {
				return err
			}
			all[i] = append(all[i], d)
		}
	}
	best := make([]time.Duration, sides)
	median := make([]time.Duration, sides)
	for i, ds := range all {
		slices.Sort(ds)
		best[i], median[i] = ds[0], ds[len(ds)/2]
	}
	per := func(i int) float64 { return float64(best[i].Nanoseconds()) / float64(batch) }
	med := func(i int) float64 { return float64(median[i].Nanoseconds()) / float64(batch) }
	same, minimal := per(goSides), per(goSides+1)

	fmt.Printf("size %s (%d rounds × %d cycles per side)\n", sizeName(size), rounds, batch)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "side\tns/cycle\t× same\t× minimal\tmedian batch\t\n")
	row := func(i int, label string) {
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\t%.0f\t\n", label, per(i), per(i)/same, per(i)/minimal, med(i))
	}
	row(0, "ours (shm.Create, Close, Unlink)")
	row(1, "go-raw: the same calls from Go, no library")
	for i, v := range variants {
		row(i+goSides, v.name+": "+v.what)
	}
	w.Flush()
	v := func(name string) float64 {
		for i, x := range variants {
			if x.name == name {
				return per(i + goSides)
			}
		}
		panic(name)
	}
	fmt.Printf("ours/same = %.2f (target ≤ 1.10); ours/go-raw = %.2f; ours/minimal = %.2f; same/minimal (what the guards cost in C) = %.2f\n",
		per(0)/same, per(0)/per(1), per(0)/minimal, same/minimal)
	fmt.Printf("guard costs in C (same minus the variant without it): liveness lock %+.0f ns, fallocate %+.0f ns, fchmod %+.0f ns, O_TMPFILE+linkat instead of open(O_EXCL) %+.0f ns\n\n",
		same-v("no-presence"), same-v("no-fallocate"), same-v("no-fchmod"), same-v("no-tmpfile"))
	return nil
}

func sizeName(n int) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}
