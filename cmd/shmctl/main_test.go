//go:build linux

package main

// The tests build shmctl and run it as a user would, against segments made
// by other processes: this test binary re-executed as a holder, and a C
// program compiled with gcc. Every name starts with testPrefix; gc is always
// restricted to it, so segments of other programs are never touched.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/bus"
	"github.com/mindmeld-go/shm/cell"
	"github.com/mindmeld-go/shm/internal/childtest"
	"github.com/mindmeld-go/shm/ring"
)

func init() { children["hold"] = goHolder }

var (
	cHolderOnce sync.Once
	cHolderPath string
	cHolderErr  error
	cHolderOut  []byte
)

// cHolderBin returns the C holder built from cHolderSrc with gcc, building
// it on first use; it skips the test if gcc is not installed.
func cHolderBin(t testing.TB) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed")
	}
	dir := tempBuildDir(t)
	cHolderOnce.Do(func() {
		src := filepath.Join(dir, "holder.c")
		if cHolderErr = os.WriteFile(src, []byte(cHolderSrc), 0o600); cHolderErr != nil {
			return
		}
		cHolderPath = filepath.Join(dir, "holder")
		cHolderOut, cHolderErr = exec.Command(gcc, "-O", "-pthread", "-o", cHolderPath, src, "-lrt").CombinedOutput()
	})
	if cHolderErr != nil {
		t.Fatalf("building the C holder: %v\n%s", cHolderErr, cHolderOut)
	}
	return cHolderPath
}

// cHolderSrc creates a segment, writes "from C" into it, and holds it until
// its standard input closes or it is killed: mapped with the descriptor
// closed ("map"), or open but not mapped ("fd"). Options after the size:
//
//	lock     take a presence lock as the shm package does: an OFD write
//	         lock on the byte 2^62 + (token << 16) + n of the segment's file
//	lowlock  take an OFD write lock on byte 0 instead, which is no presence
//	         lock
//	thread   wait on a second thread and end main with pthread_exit, so the
//	         process lives on with its leader thread exited (state Z)
const cHolderSrc = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void *waiter(void *arg) {
	char b;
	while (read(0, &b, 1) > 0) {}
	exit(0);
}

int main(int argc, char **argv) {
	if (argc < 4) return 2;
	int lock = 0, lowlock = 0, thread = 0;
	for (int i = 4; i < argc; i++) {
		if (strcmp(argv[i], "lock") == 0) lock = 1;
		else if (strcmp(argv[i], "lowlock") == 0) lowlock = 1;
		else if (strcmp(argv[i], "thread") == 0) thread = 1;
		else return 2;
	}
	int size = atoi(argv[3]);
	int fd = shm_open(argv[2], O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0) { perror("shm_open"); return 1; }
	if (ftruncate(fd, size) < 0) { perror("ftruncate"); return 1; }
	if (lock || lowlock) {
		struct flock lk;
		memset(&lk, 0, sizeof lk);
		lk.l_type = F_WRLCK;
		lk.l_whence = SEEK_SET;
		lk.l_start = lock ? ((off_t)1 << 62) + ((off_t)(getpid() | 1) << 16) + 7 : 0;
		lk.l_len = 1;
		if (fcntl(fd, F_OFD_SETLK, &lk) < 0) { perror("fcntl F_OFD_SETLK"); return 1; }
	}
	if (strcmp(argv[1], "map") == 0) {
		char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) { perror("mmap"); return 1; }
		memcpy(p, "from C", 6);
		close(fd); /* the mapping keeps the open file description, and its lock */
	}
	if (thread) {
		pthread_t t;
		if (pthread_create(&t, NULL, waiter, NULL) != 0) { perror("pthread_create"); return 1; }
		printf("ready\n");
		fflush(stdout);
		pthread_exit(NULL);
	}
	printf("ready\n");
	fflush(stdout);
	char b;
	while (read(0, &b, 1) > 0) {}
	return 0;
}
`

// goHolder creates the segment name, writes "from Go" into it, and holds it
// mapped until its standard input closes.
func goHolder(args []string) int {
	name, size := args[0], args[1]
	n, _ := strconv.Atoi(size)
	s, err := shm.Create(name, n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	copy(s.Bytes(), "from Go")
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// holder is a running process holding a segment.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startHolder starts a holder process of the given kind ("go", "map" or "fd",
// the last two in C, with the C holder's options) for segment name and
// waits until it is ready.
func startHolder(t *testing.T, kind, name string, size int, opts ...string) *holder {
	t.Helper()
	return startHolderCmd(t, holderCmd(t, kind, name, size, opts...), kind+" "+name)
}

// holderCmd returns the command startHolder runs.
func holderCmd(t *testing.T, kind, name string, size int, opts ...string) *exec.Cmd {
	t.Helper()
	if kind == "go" {
		return childtest.Command(t, "hold", name, strconv.Itoa(size))
	}
	return exec.Command(cHolderBin(t), append([]string{kind, "/" + name, strconv.Itoa(size)}, opts...)...)
}

// startHolderCmd starts cmd, a holder, and waits until it says it is ready.
func startHolderCmd(t *testing.T, cmd *exec.Cmd, what string) *holder {
	t.Helper()
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd, stdin}
	t.Cleanup(h.stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("holder %s: %q, %v", what, line, err)
	}
	return h
}

func (h *holder) stop() {
	h.stdin.Close()
	h.cmd.Wait()
}

// kill kills the holder with SIGKILL, as a crash would, and waits for it.
func (h *holder) kill() {
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.cmd.Wait()
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{nil, 2, "usage: shmctl COMMAND"},
		{[]string{"help"}, 0, "usage: shmctl COMMAND"},
		{[]string{"--help"}, 0, "gc [-age D]"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"ls", "--help"}, 0, "usage: shmctl ls [-json]"},
		{[]string{"list", "-h"}, 0, "usage: shmctl ls"},
		{[]string{"help", "dump"}, 0, "usage: shmctl dump NAME"},
		{[]string{"stat", "--help"}, 0, "usage: shmctl stat"},
		{[]string{"create", "-help"}, 0, "-mode string"},
		{[]string{"rm", "--help"}, 0, "usage: shmctl rm [-f] NAME..."},
		{[]string{"--version"}, 0, "shmctl github.com/mindmeld-go/shm"},
		{[]string{"version"}, 0, "shmctl github.com/mindmeld-go/shm"},
		{[]string{"gc", "--help"}, 0, "-dry-run"},
		{[]string{"dump"}, 2, "dump takes one NAME"},
		{[]string{"dump", "x", "-offset", "-1"}, 2, "negative"},
		{[]string{"ls", testPrefix + "nomatch-*"}, 1, `no segment matches "` + testPrefix + `nomatch-*"`},
		{[]string{"ls", "[bad"}, 2, "bad PATTERN"},
		{[]string{"ls", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"create", "x"}, 2, "create takes NAME and SIZE"},
		{[]string{"create", "x", "0"}, 2, "bad SIZE"},
		{[]string{"create", "x", "10", "-mode", "999"}, 2, "bad -mode"},
		{[]string{"rm"}, 2, "rm takes at least one NAME"},
		{[]string{"gc", "-age", "-1h"}, 2, "negative"},
		{[]string{"stat", testPrefix + "missing"}, 1, "no such file or directory"},
		{[]string{"stat", "a/b"}, 2, `"a/b" is a path; segment names have no directory: try "/b"`},
		{[]string{"stat", "/dev/shm/" + testPrefix + "x"}, 2, `try "/` + testPrefix + `x"`},
		{[]string{"rm", "-f", testPrefix + "missing"}, 0, ""},
		{[]string{"rm", testPrefix + "missing"}, 1, "shm_unlink /" + testPrefix + "missing: no such file"},
		{[]string{"dump", testPrefix + "missing"}, 1, "shm_open /" + testPrefix + "missing: no such file"},
	} {
		out, errOut, code := shmctl(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("shmctl %q: exit %d, output:\n%s%s\nwant exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
		// Every usage error prints the usage on standard error.
		if code == 2 && !strings.Contains(errOut, "usage: shmctl") {
			t.Errorf("shmctl %q: exit 2 without usage text on stderr:\n%s", tc.args, errOut)
		}
	}
}

func TestCreateStatDumpRm(t *testing.T) {
	name := testName(t)
	mustShmctl(t, "create", "/"+name, "1K", "-mode", "0640")
	if _, _, code := shmctl(t, "create", name, "10"); code != 1 {
		t.Errorf("create of an existing name: exit %d, want 1", code)
	}
	var e entry
	if err := json.Unmarshal([]byte(mustShmctl(t, "stat", "--json", name)), &e); err != nil {
		t.Fatalf("stat --json does not parse: %v", err)
	}
	if e.Name != name || e.Type != "segment" || e.Size != 1024 || e.Mode != "0640" || e.UID != int64(os.Getuid()) || len(e.PIDs) != 0 {
		t.Errorf("stat --json = %+v, want %s, segment, 1024 bytes, 0640, uid %d, no PIDs", e, name, os.Getuid())
	}
	if out := mustShmctl(t, "stat", name); !strings.Contains(out, "Size:     1024 (1.0K)\n") || !strings.Contains(out, "Mode:     0640\n") {
		t.Errorf("stat:\n%s", out)
	}

	// Fill it from this process, then dump.
	s, err := shm.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	copy(s.Bytes(), "Hello, world!\n")
	copy(s.Bytes()[1000:], "\x7fthe end\x80\xff")
	s.Close()
	want := `00000000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 00 00  |Hello, world!...|
00000010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
*
000003e0  00 00 00 00 00 00 00 00  7f 74 68 65 20 65 6e 64  |.........the end|
000003f0  80 ff 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
00000400
`
	if got := mustShmctl(t, "dump", name); got != want {
		t.Errorf("dump:\n%s\nwant:\n%s", got, want)
	}
	want = `00000005  2c 20 77 6f 72 6c 64 21  0a 00 00 00 00 00 00 00  |, world!........|
00000015  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
00000025  00 00 00 00 00 00 00 00                           |........|
0000002d
`
	if got := mustShmctl(t, "dump", name, "-offset", "5", "-length", "40"); got != want {
		t.Errorf("dump -offset 5 -length 40:\n%s\nwant:\n%s", got, want)
	}
	// Byte for byte what hexdump -C prints, where it is installed.
	if hd, err := exec.LookPath("hexdump"); err == nil {
		for _, r := range [][2]int{{0, -1}, {5, 40}, {990, 30}, {3, 1021}, {1024, 0}, {1000, 0}, {1024, -1}, {1024, 5}, {1008, 16}, {0, 1024}} {
			args := []string{"-C", "-s", strconv.Itoa(r[0])}
			ours := []string{"dump", name, "-offset", strconv.Itoa(r[0])}
			if r[1] >= 0 {
				args = append(args, "-n", strconv.Itoa(r[1]))
				ours = append(ours, "-length", strconv.Itoa(r[1]))
			}
			theirs, err := exec.Command(hd, append(args, "/dev/shm/"+name)...).Output()
			if err != nil {
				t.Fatalf("hexdump %q: %v", args, err)
			}
			if got := mustShmctl(t, ours...); got != string(theirs) {
				t.Errorf("shmctl %q:\n%s\nhexdump %q:\n%s", ours, got, args, theirs)
			}
		}
	}
	if _, errOut, code := shmctl(t, "dump", name, "-offset", "2000"); code != 1 || !strings.Contains(errOut, "past the end") {
		t.Errorf("dump -offset past the end: exit %d, %q, want 1 and a clear error", code, errOut)
	}

	mustShmctl(t, "rm", name)
	if ok, _ := shm.Exists(name); ok {
		t.Errorf("segment exists after rm")
	}
}

// lsJSON runs "ls --json" and returns this test's entries by name.
func lsJSON(t *testing.T) map[string]entry {
	var all []entry
	if err := json.Unmarshal([]byte(mustShmctl(t, "ls", "--json")), &all); err != nil {
		t.Fatalf("ls --json does not parse: %v", err)
	}
	m := map[string]entry{}
	for _, e := range all {
		if strings.HasPrefix(e.Name, testPrefix) {
			m[e.Name] = e
		}
	}
	return m
}

func TestLsShowsUsers(t *testing.T) {
	kinds := []string{"go", "map", "fd"}
	names := map[string]string{}
	holders := map[string]*holder{}
	for _, k := range kinds {
		names[k] = testName(t)
		holders[k] = startHolder(t, k, names[k], 8192)
	}
	ls := lsJSON(t)
	for _, k := range kinds {
		e, ok := ls[names[k]]
		if !ok {
			t.Errorf("ls --json does not list %s", names[k])
			continue
		}
		if pid := holders[k].cmd.Process.Pid; !slices.Contains(e.PIDs, pid) || e.Size != 8192 || e.Type != "segment" {
			t.Errorf("ls --json: %s holder: %+v, want size 8192 and PID %d", k, e, pid)
		}
	}
	out := mustShmctl(t, "ls")
	if !strings.HasPrefix(out, "NAME") || !strings.Contains(out, names["map"]) {
		t.Errorf("ls:\n%s\nwant a header and %s", out, names["map"])
	}
	// dump reads what the C and Go holders wrote.
	if got := mustShmctl(t, "dump", names["map"], "-length", "6"); !strings.Contains(got, "|from C|") {
		t.Errorf("dump of the C holder's segment:\n%s", got)
	}
	if got := mustShmctl(t, "dump", names["go"], "-length", "7"); !strings.Contains(got, "|from Go|") {
		t.Errorf("dump of the Go holder's segment:\n%s", got)
	}
	var e entry
	json.Unmarshal([]byte(mustShmctl(t, "stat", "-json", names["fd"])), &e)
	if pid := holders["fd"].cmd.Process.Pid; !slices.Equal(e.PIDs, []int{pid}) {
		t.Errorf("stat of a segment held open: PIDs %v, want [%d]", e.PIDs, pid)
	}
}

type gcResult struct {
	DryRun  bool    `json:"dry_run"`
	Removed []entry `json:"removed"`
	Kept    []struct {
		entry
		Reason string `json:"reason"`
	} `json:"kept"`
	Uninspected []procInfo `json:"uninspected"`
}

func gcJSON(t *testing.T, args ...string) gcResult {
	t.Helper()
	var r gcResult
	out := mustShmctl(t, append([]string{"gc", "--json", "-prefix", testPrefix}, args...)...)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("gc --json does not parse: %v\n%s", err, out)
	}
	return r
}

func (r gcResult) removed() []string {
	var s []string
	for _, e := range r.Removed {
		s = append(s, e.Name)
	}
	slices.Sort(s)
	return s
}

func (r gcResult) reason(name string) string {
	for _, k := range r.Kept {
		if k.Name == name {
			return k.Reason
		}
	}
	return ""
}

func exists(t *testing.T, name string) bool {
	ok, err := shm.Exists(name)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestGc(t *testing.T) {
	mapped, open, goHeld, unused, fresh := testName(t), testName(t), testName(t), testName(t), testName(t)
	hMap := startHolder(t, "map", mapped, 4096)
	startHolder(t, "fd", open, 4096)
	startHolder(t, "go", goHeld, 4096)
	mustShmctl(t, "create", unused, "4096")
	mustShmctl(t, "create", fresh, "4096")
	link := testName(t)
	if err := os.Symlink("/etc/passwd", "/dev/shm/"+link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/dev/shm/" + link) })

	// Without -ignore-uninspected, a process this test cannot inspect (here,
	// often a privileged PID 1) keeps every candidate.
	r := gcJSON(t, "-age", "0", "-dry-run", unused)
	if len(r.Uninspected) > 0 {
		if why := r.reason(unused); !strings.Contains(why, "could not be inspected") {
			t.Errorf("gc with uninspected processes %v: %s kept for %q, want kept as possibly in use", r.Uninspected, unused, why)
		}
	} else if !slices.Equal(r.removed(), []string{unused}) {
		t.Errorf("gc -dry-run removed %v, want [%s]", r.removed(), unused)
	}

	// -age keeps what changed recently.
	r = gcJSON(t, "-age", "1h", "-ignore-uninspected", unused, fresh)
	if len(r.Removed) != 0 || !strings.Contains(r.reason(unused), "(< -age 1h)") {
		t.Errorf("gc -age 1h: removed %v, kept %s for %q; want nothing removed", r.removed(), unused, r.reason(unused))
	}
	// -dry-run removes nothing.
	r = gcJSON(t, "-age", "0", "-ignore-uninspected", "-dry-run", unused)
	if !r.DryRun || !slices.Equal(r.removed(), []string{unused}) || !exists(t, unused) {
		t.Errorf("gc -dry-run: %+v, exists %v; want %s listed and still there", r, exists(t, unused), unused)
	}
	// NAMEs restrict gc: fresh is not named, so it stays.
	r = gcJSON(t, "-age", "0", "-ignore-uninspected", unused, mapped, open, goHeld, link)
	if !slices.Equal(r.removed(), []string{unused}) || exists(t, unused) || !exists(t, fresh) {
		t.Errorf("gc removed %v, want [%s]", r.removed(), unused)
	}
	for _, n := range []string{mapped, open, goHeld} {
		if why := r.reason(n); !strings.HasPrefix(why, "in use by ") || !exists(t, n) {
			t.Errorf("gc kept %s for %q, want in use", n, why)
		}
	}
	if why := r.reason(link); why != "not a segment (symlink)" {
		t.Errorf("gc kept %s for %q, want not a segment", link, why)
	}
	if _, err := os.Lstat("/dev/shm/" + link); err != nil {
		t.Errorf("gc touched the planted symlink: %v", err)
	}

	// The holder dies without unlinking: now gc removes its segment.
	hMap.kill()
	r = gcJSON(t, "-age", "0", "-ignore-uninspected", mapped, open, goHeld)
	if !slices.Equal(r.removed(), []string{mapped}) || exists(t, mapped) {
		t.Errorf("gc after the holder was killed removed %v, want [%s]", r.removed(), mapped)
	}
	if !exists(t, open) || !exists(t, goHeld) {
		t.Errorf("gc removed a segment still in use")
	}
	// Text output.
	out := mustShmctl(t, "gc", "-prefix", testPrefix, "-age", "0", "-ignore-uninspected", "-dry-run", fresh)
	if !strings.HasPrefix(out, "would remove /"+fresh+" (unused, age ") || !strings.Contains(out, "gc: would remove 1 (4.0K), kept 0 (1 segment considered)") {
		t.Errorf("gc -dry-run text output:\n%s", out)
	}
	// -prefix takes the name's leading slash too.
	out = mustShmctl(t, "gc", "-prefix", "/"+testPrefix, "-age", "0", "-ignore-uninspected", "-dry-run", fresh)
	if !strings.HasPrefix(out, "would remove /"+fresh+" ") {
		t.Errorf("gc -prefix with a slash:\n%s", out)
	}
	// gc with nothing to do says so; given a name that does not exist, it
	// fails naming it.
	out = mustShmctl(t, "gc", "-prefix", testPrefix+"none-", "-age", "0")
	if !strings.Contains(out, "gc: nothing to remove (0 segments considered)") {
		t.Errorf("gc with nothing to do printed %q", out)
	}
	if _, errOut, code := shmctl(t, "gc", "-age", "0", testPrefix+"missing"); code != 1 || !strings.Contains(errOut, "/"+testPrefix+"missing: no such segment") {
		t.Errorf("gc of a missing name: exit %d, %q; want 1 naming it", code, errOut)
	}
}

func TestOddNames(t *testing.T) {
	link := testName(t)
	target := filepath.Join(t.TempDir(), "target")
	os.WriteFile(target, []byte("keep me"), 0o600)
	if err := os.Symlink(target, "/dev/shm/"+link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/dev/shm/" + link) })
	odd := testName(t) + "\nforged line"
	if f, err := os.OpenFile("/dev/shm/"+odd, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	t.Cleanup(func() { os.Remove("/dev/shm/" + odd) })

	out := mustShmctl(t, "ls")
	if !strings.Contains(out, strconv.Quote(odd)) || strings.Contains(out, "\nforged line") {
		t.Errorf("ls does not quote a name with a newline:\n%s", out)
	}
	ls := lsJSON(t)
	if e := ls[link]; e.Type != "symlink" {
		t.Errorf("ls --json: symlink entry %+v, want type symlink", e)
	}
	if e := ls[odd]; e.Name != odd || e.Type != "segment" {
		t.Errorf("ls --json: odd entry %+v", e)
	}
	if out := mustShmctl(t, "stat", link); !strings.Contains(out, "Type:     symlink") {
		t.Errorf("stat of a symlink:\n%s", out)
	}
	if _, errOut, code := shmctl(t, "dump", link); code != 1 || !strings.Contains(errOut, "not a shared memory object") {
		t.Errorf("dump of a symlink: exit %d, %q", code, errOut)
	}
	mustShmctl(t, "rm", link)
	if _, err := os.Lstat("/dev/shm/" + link); err == nil {
		t.Errorf("rm left the symlink")
	}
	if b, err := os.ReadFile(target); string(b) != "keep me" {
		t.Errorf("rm of a symlink touched its target: %q, %v", b, err)
	}
	// An empty segment: a clear error, not a fault.
	if _, errOut, code := shmctl(t, "dump", odd); code != 1 || !strings.Contains(errOut, "empty") {
		t.Errorf("dump of an empty segment: exit %d, %q", code, errOut)
	}
}

// ls tells rings, buses and cells from plain segments by their first bytes,
// selects by pattern with or without the slash, shows sizes for humans
// (bytes with -bytes and in JSON) and command names beside PIDs.
func TestLsKindsPatternsNames(t *testing.T) {
	rn, bn, cn, pn := testName(t), testName(t), testName(t), testName(t)
	r, err := ring.Create(rn, 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	for _, n := range []string{bn, cn} {
		s, err := shm.Create(n, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if n == bn {
			p, err := bus.Create(s, bus.Config{Slots: 16, SlotSize: 64, Subscribers: 2})
			if err != nil {
				t.Fatal(err)
			}
			p.Close()
		} else if _, err := cell.New[uint64](s, 0); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	h := startHolder(t, "map", pn, 3<<20)

	ls := lsJSON(t)
	for n, want := range map[string]string{rn: "ring", bn: "bus", cn: "cell", pn: "plain"} {
		e := ls[n]
		if e.Kind != want || (want != "plain" && e.Version == 0) {
			t.Errorf("ls --json: %s: kind %q version %d (%s), want %s", n, e.Kind, e.Version, e.KindError, want)
		}
	}
	if e := ls[pn]; e.Size != 3<<20 || len(e.Processes) != 1 || e.Processes[0].PID != h.cmd.Process.Pid || e.Processes[0].Command != "holder" {
		t.Errorf("ls --json: %s: size %d, processes %+v; want %d bytes and [%d holder]", pn, e.Size, e.Processes, 3<<20, h.cmd.Process.Pid)
	}

	// A pattern, given with the slash, selects; the table shows kinds,
	// human sizes and PID(command).
	out := mustShmctl(t, "ls", "/"+testPrefix+"*")
	for _, want := range []string{"ring v3", "bus v", "cell v", " 3.0M ", fmt.Sprintf("%d(holder)", h.cmd.Process.Pid)} {
		if !strings.Contains(out, want) {
			t.Errorf("ls PATTERN: no %q in:\n%s", want, out)
		}
	}
	out = mustShmctl(t, "ls", "-bytes", pn)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], pn) || !strings.Contains(lines[1], " 3145728 ") {
		t.Errorf("ls -bytes NAME: want a header and one line for %s with 3145728 bytes:\n%s", pn, out)
	}
	if out := mustShmctl(t, "stat", rn); !strings.Contains(out, "ring v3") {
		t.Errorf("stat of a ring does not say its kind:\n%s", out)
	}
}
