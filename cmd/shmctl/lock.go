package main

// shmctl lock: a read-only look at a Mutex or Semaphore word in a segment
// (SPEC.md §4 and §6). The segment is mapped read-only; nothing is written.

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/mindmeld-go/shm"
)

// lockFlags holds the flags of shmctl lock.
var lockFlags struct {
	offset    int64
	semaphore bool
	json      bool
}

func init() {
	commands = append(commands, &command{
		name: "lock", args: "NAME -offset N [-semaphore] [-json]",
		summary: "show whether the Mutex (or Semaphore) at an offset of a segment is held, and by whom",
		help: `Reads the shm.Mutex at byte offset N of the segment (8 bytes, N a multiple
of 8; SPEC.md §4) and says whether it is free or held, by which token,
whether that process is alive (judged by its presence lock on the segment,
never by a PID: see README "Liveness"), and whether waiters may be
sleeping. With -semaphore it reads the shm.Semaphore at N instead (8 bytes,
N a multiple of 4; SPEC.md §6): its count and the number of processes that
may be waiting. The segment is mapped read-only; nothing is written.

A Mutex word holds the owner's token, not its PID, and the presence lock
that proves the owner alive is an OFD lock, for which the kernel reports
no PID (F_OFD_GETLK gives l_pid -1). So the PID is found, on Linux, by
looking for the processes that map the segment writable (/proc/*/maps,
matched by inode): when the holder is alive and exactly one such process
is seen, it is named as the holder; otherwise the candidates are listed.
A process in another PID namespace, or one that cannot be inspected, is
not seen.

A word that no Mutex can hold (bit 30 set, a waiters flag without an owner,
a token no process can have) is reported as "not a valid Mutex word"
(exit 1), as is a Semaphore count above 2^31−1.

JSON: "name", "offset", "kind" ("mutex" or "semaphore"), "word" (the raw
64 bits), and for a Mutex "state" ("free", "held" or "invalid"), "token",
"alive", "waiters", "holder_pid" (0 when not known), "candidates"
([{"pid", "command"}], the processes mapping it writable) and "problem";
for a Semaphore "count" and "waiters".`,
		run: runLock,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			lockFlags.offset, lockFlags.semaphore, lockFlags.json = -1, false, false
			fs.Int64Var(&lockFlags.offset, "offset", -1, "byte offset of the Mutex or Semaphore in the segment (required)")
			fs.BoolVar(&lockFlags.semaphore, "semaphore", false, "read a Semaphore, not a Mutex")
			fs.BoolVar(&lockFlags.json, "json", false, "print JSON: one object")
		},
	})
}

// Mutex word layout (SPEC.md §4.1).
const (
	mxTokLo   = 1<<30 - 1
	mxBit30   = 1 << 30
	mxWaiters = 1 << 31
)

// lockInfo is what shmctl lock reports.
type lockInfo struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Kind   string `json:"kind"`
	Word   uint64 `json:"word"`
	// Mutex.
	State      string     `json:"state,omitempty"`
	Token      uint64     `json:"token,omitempty"`
	Alive      *bool      `json:"alive,omitempty"`
	Waiters    *uint32    `json:"waiters,omitempty"` // Mutex: 1 if bit 31 is set; Semaphore: the waiters word
	HolderPID  int        `json:"holder_pid,omitempty"`
	Candidates []lockProc `json:"candidates,omitempty"`
	PIDNote    string     `json:"pid_note,omitempty"`
	// Semaphore.
	Count   *uint32 `json:"count,omitempty"`
	Problem string  `json:"problem,omitempty"`
}

func runLock(c *cmdEnv, args []string) int {
	f := lockFlags
	if len(args) != 1 {
		return c.usageErr("lock takes one NAME")
	}
	if f.offset < 0 {
		return c.usageErr("-offset N is required (a non-negative byte offset)")
	}
	align := int64(8)
	if f.semaphore {
		align = 4
	}
	if f.offset%align != 0 {
		what := "a Mutex is 8-aligned"
		if f.semaphore {
			what = "a Semaphore is 4-aligned (8 recommended)"
		}
		return c.usageErr("-offset %d is not a multiple of %d: %s", f.offset, align, what)
	}
	names, st, ok := c.nameArgs(args)
	if !ok {
		return st
	}
	seg, err := shm.OpenFile(names[0], os.O_RDONLY, 0, 0)
	if err != nil {
		return c.fail(err)
	}
	defer seg.Close()
	info := &lockInfo{Name: seg.Name(), Offset: f.offset, Kind: "mutex"}
	if f.semaphore {
		info.Kind = "semaphore"
	}
	if size := int64(seg.Size()); f.offset > size-8 {
		return c.fail(fmt.Errorf("%s: offset %d: the 8 bytes of a %s do not fit in the segment (%d bytes)", seg.Name(), f.offset, info.Kind, size))
	}
	if f.semaphore {
		err = info.readSemaphore(seg)
	} else {
		err = info.readMutex(seg)
	}
	if err != nil {
		return c.fail(fmt.Errorf("%s: %w", seg.Name(), err))
	}
	if f.json {
		if st := c.printJSON(info); st != exitOK {
			return st
		}
	} else {
		info.write(c.stdout)
	}
	if info.Problem != "" {
		return c.fail(fmt.Errorf("%s: offset %d: %s", seg.Name(), f.offset, info.Problem))
	}
	return exitOK
}

func (l *lockInfo) readSemaphore(seg *shm.Segment) error {
	w, err := shm.Slice[atomic.Uint32](seg, int(l.Offset), 2)
	if err != nil {
		return err
	}
	var count, waiters uint32
	if err := guard(func() { count, waiters = w[0].Load(), w[1].Load() }); err != nil {
		return err
	}
	l.Word = uint64(count) | uint64(waiters)<<32
	if !littleEndian() {
		l.Word = uint64(count)<<32 | uint64(waiters)
	}
	l.Count, l.Waiters = &count, &waiters
	if count > math.MaxInt32 {
		l.Problem = fmt.Sprintf("not a valid Semaphore: count %d exceeds 2^31−1", count)
	}
	return nil
}

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func (l *lockInfo) readMutex(seg *shm.Segment) error {
	w, err := shm.View[atomic.Uint64](seg, int(l.Offset))
	if err != nil {
		return err
	}
	var v uint64
	if err := guard(func() { v = w.Load() }); err != nil {
		return err
	}
	l.Word = v
	lo := uint32(v)
	var waiters uint32
	if lo&mxWaiters != 0 {
		waiters = 1
	}
	l.Waiters = &waiters
	tok := uint64(lo&mxTokLo) | (v>>32)<<30
	switch {
	case lo == 0:
		l.State = "free"
		if v != 0 {
			l.PIDNote = fmt.Sprintf("high bits %#x left by a previous owner (harmless: the lock is free when the low 32 bits are 0)", v>>32)
		}
		return nil
	case lo&mxBit30 != 0:
		l.State, l.Problem = "invalid", fmt.Sprintf("not a valid Mutex word: %#016x has bit 30 set (always 0 in a Mutex)", v)
	case lo&mxTokLo == 0:
		l.State, l.Problem = "invalid", fmt.Sprintf("not a valid Mutex word: %#016x has the waiters bit and no owner", v)
	case !possibleToken(tok):
		l.State, l.Problem = "invalid", fmt.Sprintf("not a valid Mutex word: %#016x names token %#x, which no process can have", v, tok)
	default:
		l.State = "held"
	}
	l.Token = tok
	alive := l.State == "held" && seg.PeerAlive(tok)
	l.Alive = &alive
	if l.State != "held" {
		return nil
	}
	procs, err := writableMappers(seg)
	switch {
	case err != nil:
		l.PIDNote = "PID unknown: " + err.Error()
	case !alive:
		l.PIDNote = "the holder is dead: no process maps the segment with its token; a waiter will take the lock over"
	case len(procs) == 1:
		l.HolderPID = procs[0].PID
		l.Candidates = procs
		l.PIDNote = "the only process seen mapping the segment writable (a process in another PID namespace would not be seen)"
	case len(procs) == 0:
		l.PIDNote = "PID unknown: no process seen here maps the segment writable (the holder runs in another PID namespace, or cannot be inspected)"
	default:
		l.Candidates = procs
		l.PIDNote = "PID unknown: presence locks carry no PID (F_OFD_GETLK gives l_pid -1); one of the processes mapping the segment writable"
	}
	return nil
}

// possibleToken reports whether some process could have token tok
// (SPEC.md LIVE-2; elsewhere than Linux a token packs a PID and a 32-bit
// fold of the start time).
func possibleToken(tok uint64) bool {
	if tok&mxTokLo == 0 {
		return false
	}
	if runtime.GOOS == "linux" {
		return tok>>46 == 0
	}
	return tok>>62 == 0
}

func (l *lockInfo) write(w io.Writer) {
	if l.Kind == "semaphore" {
		fmt.Fprintf(w, "Semaphore at offset %d of %s: count %d, waiters %d (word %#016x)\n", l.Offset, displayName(l.Name), *l.Count, *l.Waiters, l.Word)
		if l.Problem != "" {
			fmt.Fprintf(w, "PROBLEM: %s\n", l.Problem)
		}
		return
	}
	fmt.Fprintf(w, "Mutex at offset %d of %s: ", l.Offset, displayName(l.Name))
	switch l.State {
	case "free":
		fmt.Fprintf(w, "free (word %#016x)\n", l.Word)
		if l.PIDNote != "" {
			fmt.Fprintf(w, "  note: %s\n", l.PIDNote)
		}
		return
	case "invalid":
		fmt.Fprintf(w, "%s\n", l.Problem)
		return
	}
	alive := "dead"
	if *l.Alive {
		alive = "alive"
	}
	fmt.Fprintf(w, "held by token %#x (%s)", l.Token, alive)
	if l.HolderPID != 0 {
		fmt.Fprintf(w, ", probably PID %s", l.Candidates[0].label())
	}
	wait := "no waiters"
	if *l.Waiters != 0 {
		wait = "waiters may be sleeping"
	}
	fmt.Fprintf(w, ", %s (word %#016x)\n", wait, l.Word)
	if l.PIDNote != "" {
		fmt.Fprintf(w, "  %s\n", l.PIDNote)
	}
	if len(l.Candidates) > 1 {
		s := make([]string, len(l.Candidates))
		for i, p := range l.Candidates {
			s[i] = p.label()
		}
		fmt.Fprintf(w, "  candidates: %s\n", strings.Join(s, ", "))
	}
}

// lockProc is a process that maps a segment writable.
type lockProc struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
}

// label is "123(cmd)", or "123" when the command name is not known.
func (p lockProc) label() string {
	if p.Command == "" {
		return strconv.Itoa(p.PID)
	}
	return strconv.Itoa(p.PID) + "(" + displayName(p.Command) + ")"
}
