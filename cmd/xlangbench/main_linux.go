//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/ring"
)

const (
	childEnv = "XLANGBENCH_CHILD" // set in a Go peer: its role
	ringCap  = 8 << 20            // as cmd/shmbench and its C baseline
	module   = "github.com/mindmeld-go/shm"
)

var (
	nFlag    = flag.Int("n", 2_000_000, "messages per batch for each ring row")
	batches  = flag.Int("batches", 3, "batches; each row reports its best")
	sizeFlag = flag.Int("size", 64, "message size in bytes (8 to 65536)")
	jsonFlag = flag.Bool("json", false, "print the results as JSON instead of a table")
	repoFlag = flag.String("repo", "", "the repository's root (default: found from the working directory upward)")
	python   = flag.String("python", "", "a python3 with the shm package and numpy: adds python/bench/pybench.py's rows")
	pyN      = flag.Int("python-n", 300_000, "64 B messages per Python batch")
	pyN1MiB  = flag.Int("python-n-1mib", 2000, "1 MiB messages per Python batch")
)

func main() {
	if role := os.Getenv(childEnv); role != "" {
		if err := child(role, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "xlangbench child:", err)
			os.Exit(1)
		}
		return
	}
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: xlangbench [-n N] [-batches B] [-size S] [-json] [-repo DIR] [-python PATH [-python-n N] [-python-n-1mib N]]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	interrupted := ctx.Err() != nil
	stop()
	cleanup()
	if interrupted {
		fmt.Fprintln(os.Stderr, "xlangbench: interrupted")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xlangbench:", err)
		os.Exit(1)
	}
}

// ---- cleanup ----

var (
	cleanMu  sync.Mutex
	cleanups []func()
	nameSeq  int
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

// newRing creates a fresh ring; cleanup unlinks it if the caller did not.
func newRing(size int) (*ring.Ring, error) {
	nameSeq++
	name := fmt.Sprintf("xlangbench-%d-%d", os.Getpid(), nameSeq)
	r, err := ring.Create(name, ringCap, &ring.Options{MaxMessage: size})
	if err != nil {
		return nil, err
	}
	atExit(func() { _ = shm.Unlink(name) })
	return r, nil
}

// ---- the C programs ----

//go:embed c/ringbench.c
var ringbenchC string

// build compiles the baseline and the C ring end into dir and returns
// their paths.
func build(ctx context.Context, repo, dir string) (baseline, cend string, err error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", "", fmt.Errorf("gcc not found (%w): the C rows need it", err)
	}
	baseline, cend = filepath.Join(dir, "baseline"), filepath.Join(dir, "ringbench")
	src := filepath.Join(dir, "ringbench.c")
	if err := os.WriteFile(src, []byte(ringbenchC), 0o600); err != nil {
		return "", "", err
	}
	for _, args := range [][]string{
		{"-O2", "-o", baseline, filepath.Join(repo, "cmd", "shmbench", "c", "baseline.c")}, // as cmd/shmbench builds it
		{"-std=c11", "-O2", "-I", filepath.Join(repo, "c"), "-o", cend, src, "-lrt"},
	} {
		if out, err := exec.CommandContext(ctx, gcc, args...).CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return baseline, cend, nil
}

// findRepo returns the module's root: dir if given, else the first
// directory from the working directory upward whose go.mod names the module.
func findRepo(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for d := wd; ; d = filepath.Dir(d) {
			if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(b) == module {
				dir = d
				break
			}
			if filepath.Dir(d) == d {
				return "", fmt.Errorf("no go.mod of %s in %s or above: run from the repository or pass -repo", module, wd)
			}
		}
	}
	for _, f := range []string{"c/shm.h", "cmd/shmbench/c/baseline.c", "python/bench/pybench.py"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("-repo %s: %w", dir, err)
		}
	}
	return dir, nil
}

func modulePath(gomod []byte) string {
	for line := range strings.SplitSeq(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return f[1]
		}
	}
	return ""
}

// ---- one measurement ----

// A peer says how to start one end: C (the ringbench program) or Go (this
// program re-executed in a child role).
type peer struct {
	lang string // "C" or "Go"
	cend string // path of ringbench
}

func (p peer) command(ctx context.Context, role, name string, size, n int) *exec.Cmd {
	args := []string{role, name, strconv.Itoa(size), strconv.Itoa(n)}
	var cmd *exec.Cmd
	if p.lang == "C" {
		cmd = exec.CommandContext(ctx, p.cend, args...)
	} else {
		exe, _ := os.Executable()
		cmd = exec.CommandContext(ctx, exe, args[1:]...)
		cmd.Env = append(os.Environ(), childEnv+"="+role)
	}
	return own(cmd)
}

// own makes cmd the leader of a process group that is killed whole when
// ctx is done: the baseline forks its consumer, which would otherwise spin
// on forever.
func own(cmd *exec.Cmd) *exec.Cmd {
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	return cmd
}

// timeout bounds one measurement: generous, for a loaded machine.
func timeout(n int) time.Duration { return 30*time.Second + time.Duration(n)*2*time.Microsecond }

// pair runs a consumer and then a producer on a fresh ring and returns the
// consumer's time from its first message to its last.
func pair(ctx context.Context, prod, cons peer, size, n int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout(n))
	defer cancel()
	r, err := newRing(size)
	if err != nil {
		return 0, err
	}
	name := r.Name()
	defer func() { _ = shm.Unlink(name) }()
	defer r.Close()

	cc := cons.command(ctx, "consume", name, size, n)
	out, err := cc.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cc.Start(); err != nil {
		return 0, err
	}
	defer func() {
		if cc.ProcessState == nil { // not waited for: a failure on the way
			_ = syscall.Kill(-cc.Process.Pid, syscall.SIGKILL)
			_ = cc.Wait()
		}
	}()
	br := bufio.NewReader(out)
	if line, err := br.ReadString('\n'); line != "ready\n" {
		return 0, fmt.Errorf("%s consumer: %q before ready (%v)", cons.lang, line, err)
	}
	if err := prod.command(ctx, "produce", name, size, n).Run(); err != nil {
		return 0, fmt.Errorf("%s producer: %w", prod.lang, err)
	}
	rest, _ := io.ReadAll(br)
	if err := cc.Wait(); err != nil {
		return 0, fmt.Errorf("%s consumer: %w", cons.lang, err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(rest)), 10, 64)
	if err != nil || ns <= 0 {
		return 0, fmt.Errorf("%s consumer printed %q, want nanoseconds", cons.lang, rest)
	}
	return time.Duration(ns), nil
}

// baselineRun runs the C baseline ring (it forks its own consumer).
func baselineRun(ctx context.Context, bin string, size, n int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout(n))
	defer cancel()
	cmd := own(exec.CommandContext(ctx, bin, "ring", strconv.Itoa(size), strconv.Itoa(n)))
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("baseline ring: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || ns <= 0 {
		return 0, fmt.Errorf("baseline ring printed %q, want nanoseconds", out)
	}
	return time.Duration(ns), nil
}

// ---- Go peers ----

func child(role string, args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("%s: want NAME SIZE COUNT, got %q", role, args)
	}
	size, err1 := strconv.Atoi(args[1])
	n, err2 := strconv.Atoi(args[2])
	if err := errors.Join(err1, err2); err != nil || size < 8 || n < 1 {
		return fmt.Errorf("%s: bad SIZE or COUNT in %q", role, args)
	}
	r, err := ring.Open(args[0], nil)
	if err != nil {
		return err
	}
	defer r.Close()
	switch role {
	case "produce":
		return produce(r, size, n)
	case "consume":
		return consume(r, size, n)
	}
	return fmt.Errorf("unknown role %q", role)
}

// produce sends n messages of size bytes by copy, message i starting with
// i (8 bytes, little-endian), as ringbench.c does.
func produce(r *ring.Ring, size, n int) error {
	p, err := r.Producer()
	if err != nil {
		return err
	}
	msg := bytes.Repeat([]byte{7}, size)
	for i := range n {
		binary.LittleEndian.PutUint64(msg, uint64(i))
		if err := p.Send(msg); err != nil {
			return err
		}
	}
	return p.Close()
}

// consume receives n messages by copy, checking each one's length and the
// last one's number, then the end of the stream, and prints the nanoseconds
// from the first message to the last.
func consume(r *ring.Ring, size, n int) error {
	c, err := r.Consumer()
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("ready")
	buf := make([]byte, size)
	var t0 time.Time
	for i := range n {
		k, err := c.Receive(buf)
		if err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if k != size {
			return fmt.Errorf("message %d: %d bytes, want %d", i, k, size)
		}
		if i == 0 {
			t0 = time.Now()
		}
	}
	el := time.Since(t0)
	if got := binary.LittleEndian.Uint64(buf); got != uint64(n-1) {
		return fmt.Errorf("last message is number %d, want %d", got, n-1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.ReceiveContext(ctx, buf); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the last message: %v, want io.EOF", err)
	}
	fmt.Println(el.Nanoseconds())
	return nil
}

// ---- the run ----

// A Row is one measured transport.
type Row struct {
	Key    string    `json:"key"`
	Name   string    `json:"name"`
	Unit   string    `json:"unit"` // msgs/s or MiB/s
	Best   float64   `json:"best"`
	Median float64   `json:"median"` // of Runs; the mean of the middle two for an even count
	Runs   []float64 `json:"runs"`
}

func (r *Row) add(x float64) {
	r.Runs = append(r.Runs, x)
	r.Best = max(r.Best, x)
	s := slices.Sorted(slices.Values(r.Runs))
	r.Median = (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}

// A Ratio compares two rows' best figures against a target; Median is the
// same ratio of their medians, for reference (the verdict is the best's).
type Ratio struct {
	Name   string  `json:"name"`
	Of     string  `json:"of"`
	To     string  `json:"to"`
	Value  float64 `json:"value"`
	Median float64 `json:"median"`
	Target float64 `json:"target"`
	Met    bool    `json:"met"`
}

// Report is what -json prints.
type Report struct {
	Machine map[string]string `json:"machine"`
	Size    int               `json:"size"`
	N       int               `json:"n"`
	Batches int               `json:"batches"`
	Rows    []*Row            `json:"rows"`
	Ratios  []Ratio           `json:"ratios"`
}

func run(ctx context.Context) error {
	size, n := *sizeFlag, *nFlag
	if size < 8 || size > 65536 {
		return fmt.Errorf("-size %d: want 8 to 65536", size)
	}
	if n < 2 || *batches < 1 {
		return errors.New("-n must be at least 2 and -batches at least 1")
	}
	repo, err := findRepo(*repoFlag)
	if err != nil {
		return err
	}
	// The directory's name, like the rings', has this process's ID in it,
	// so every child's command line says whose it is.
	dir, err := os.MkdirTemp("", fmt.Sprintf("xlangbench-%d-", os.Getpid()))
	if err != nil {
		return err
	}
	atExit(func() { _ = os.RemoveAll(dir) })
	baseline, cend, err := build(ctx, repo, dir)
	if err != nil {
		return err
	}
	var py *pyBench
	if *python != "" {
		if py, err = newPyBench(ctx, repo, dir); err != nil {
			return err
		}
	}

	C, Go := peer{"C", cend}, peer{lang: "Go"}
	rows := []*Row{
		{Key: "a", Name: "C baseline ring (cmd/shmbench/c/baseline.c), C → C", Unit: "msgs/s"},
		{Key: "b", Name: "c/shm.h ring, C → C", Unit: "msgs/s"},
		{Key: "c", Name: "package ring, Go → Go", Unit: "msgs/s"},
		{Key: "d", Name: "Go → C (package ring → c/shm.h)", Unit: "msgs/s"},
		{Key: "e", Name: "C → Go (c/shm.h → package ring)", Unit: "msgs/s"},
	}
	runs := []func() (time.Duration, error){
		func() (time.Duration, error) { return baselineRun(ctx, baseline, size, n) },
		func() (time.Duration, error) { return pair(ctx, C, C, size, n) },
		func() (time.Duration, error) { return pair(ctx, Go, Go, size, n) },
		func() (time.Duration, error) { return pair(ctx, Go, C, size, n) },
		func() (time.Duration, error) { return pair(ctx, C, Go, size, n) },
	}
	if py != nil {
		rows = append(rows, py.rows...)
	}
	for b := range *batches {
		for i, f := range runs {
			d, err := f()
			if err != nil {
				return fmt.Errorf("batch %d, row (%s): %w", b+1, rows[i].Key, err)
			}
			rows[i].add(float64(n-1) / d.Seconds())
		}
		if py != nil {
			if err := py.batch(ctx); err != nil {
				return fmt.Errorf("batch %d, python: %w", b+1, err)
			}
		}
	}

	rep := Report{Machine: machine(ctx), Size: size, N: n, Batches: *batches, Rows: rows}
	byKey := map[string]*Row{}
	for _, r := range rows {
		byKey[r.Key] = r
	}
	targets := []struct {
		of, to, name string
		target       float64
	}{
		{"b", "a", "c/shm.h C → C ÷ C baseline", 0.9},
		{"d", "c", "Go → C ÷ Go → Go", 0.8},
		{"e", "c", "C → Go ÷ Go → Go", 0.8},
		{"py-ring", "py-queue", "Python ring ÷ multiprocessing.Queue", 10},
		{"py-ring", "py-pipe", "Python ring ÷ multiprocessing.Pipe", 3},
		{"py-1mib-ring", "py-1mib-sock", "Python → Go 1 MiB, ring ÷ Unix socket (filled in place)", 5},
		{"py-1mib-ring-copy", "py-1mib-sock-copy", "Python → Go 1 MiB, ring ÷ Unix socket (payload copied)", 5},
	}
	for _, t := range targets {
		a, b := byKey[t.of], byKey[t.to]
		if a == nil || b == nil || b.Best == 0 {
			continue
		}
		v := a.Best / b.Best
		var m float64
		if b.Median > 0 {
			m = a.Median / b.Median
		}
		rep.Ratios = append(rep.Ratios, Ratio{Name: t.name, Of: t.of, To: t.to, Value: v, Median: m, Target: t.target, Met: v >= t.target})
	}
	if *jsonFlag {
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(rep)
	}
	rep.print(os.Stdout)
	return nil
}

func (rep Report) print(w io.Writer) {
	m := rep.Machine
	fmt.Fprintf(w, "xlangbench: %d B messages, %d per batch (Python rows: see their names), best of %d batches; copy in and copy out, one producer process to one consumer process\n", rep.Size, rep.N, rep.Batches)
	fmt.Fprintf(w, "machine: nproc %s, Linux %s, %s, gcc %s", m["nproc"], m["kernel"], m["go"], m["gcc"])
	if m["python"] != "" {
		fmt.Fprintf(w, ", Python %s", m["python"])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-4s %-62s %12s %12s %8s  %s\n", "row", "transport", "best", "median", "unit", "batches")
	for _, r := range rep.Rows {
		var b strings.Builder
		for i, x := range r.Runs {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(si(x))
		}
		fmt.Fprintf(w, "%-4s %-62s %12s %12s %8s  %s\n", r.Key, r.Name, si(r.Best), si(r.Median), r.Unit, b.String())
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-22s %-58s %8s %8s %8s  %s\n", "ratio", "", "best", "median", "target", "")
	for _, q := range rep.Ratios {
		verdict := "met"
		if !q.Met {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "%-22s %-58s %8.2f %8.2f %8s  %s\n", "("+q.Of+")/("+q.To+")", q.Name, q.Value, q.Median, "≥ "+strconv.FormatFloat(q.Target, 'f', -1, 64), verdict)
	}
	fmt.Fprintln(w, "\nThe verdict is the best batches' ratio; the medians' is shown beside it, since the C baseline's")
	fmt.Fprintln(w, "batches vary most. Timings on a shared machine are provisional: compare rows from one run, not across runs.")
}

func si(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2f M", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.1f k", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// machine describes where the run happened.
func machine(ctx context.Context) map[string]string {
	m := map[string]string{"nproc": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version()}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b []byte
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		m["kernel"] = string(b)
	}
	if out, err := exec.CommandContext(ctx, "gcc", "-dumpfullversion").Output(); err == nil {
		m["gcc"] = strings.TrimSpace(string(out))
	}
	if *python != "" {
		if out, err := exec.CommandContext(ctx, *python, "-c", "import platform; print(platform.python_version())").Output(); err == nil {
			m["python"] = strings.TrimSpace(string(out))
		}
	}
	return m
}
