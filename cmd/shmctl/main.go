// Command shmctl lists, inspects, creates and removes POSIX shared memory
// segments, and removes the ones left behind by processes that died.
//
// Usage:
//
//	shmctl ls [-json]                     list segments and the processes using them
//	shmctl stat [-json] NAME              show one segment
//	shmctl dump NAME [-offset N] [-length N]  print its bytes as "hexdump -C" does
//	shmctl create NAME SIZE [-mode 0600]  create a segment
//	shmctl rm NAME...                     remove segments' names
//	shmctl gc [-age D] [-prefix P] [-dry-run] [-json] [NAME...]
//	                                      remove segments no process uses
//
// Every subcommand takes -help. The exit status is 0 on success, 1 when an
// operation failed and 2 for a usage error.
//
// ls and gc read /dev/shm and /proc, so they work on Linux only: macOS
// keeps no list of its segments, and FreeBSD's is not read yet. stat, dump,
// create and rm work wherever the shm package does.
//
// A segment is in use when a live process maps it or holds it open, as
// /proc/PID/maps and /proc/PID/fd say (or, for a process whose main thread
// has exited, those of one of its live threads), or when anyone holds a
// presence lock on it: the OFD write lock at or past offset 1<<62 of the
// segment's file that every writable mapping made by the shm package
// holds. The lock is seen across PID namespaces, where /proc is not.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mindmeld-go/shm"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// command is one subcommand.
type command struct {
	name    string
	alias   string
	args    string // the synopsis after the name
	summary string
	help    string // more about it, for -help
	run     func(c *cmdEnv, args []string) int
	flags   func(fs *flag.FlagSet, c *cmdEnv)
}

// cmdEnv carries a subcommand's flags and output.
type cmdEnv struct {
	stdout, stderr    io.Writer
	fs                *flag.FlagSet
	json              bool
	offset, length    int64
	mode              string
	age               time.Duration
	prefix            string
	dryRun            bool
	ignoreUninspected bool
}

var commands = []*command{
	{
		name: "ls", alias: "list", args: "[-json]",
		summary: "list segments and the processes using them",
		help: `Lists every entry in /dev/shm: name, size, mode, owner, modification time,
the PIDs of the processes that map it or hold it open (from /proc/*/maps and
/proc/*/fd, or a live thread's /proc/*/task/*/ lists when a process's main
thread has exited), and LOCKED: "yes" when a presence lock is held on it (an
OFD write lock at or past offset 1<<62 of its file, which every writable
mapping made by the shm package holds, in whatever PID namespace; a process
in another namespace may have no PID here), "no", or "?" when it could not
be checked (JSON: "locked" true, false or null, and "lock_error"). Entries
that are not segments (a symlink, a directory, a FIFO planted there) are
shown with their type and never followed. Names with unusual characters are
shown quoted. As an ordinary user, processes of other users cannot be
inspected and their use of a segment is not shown.
Linux only: macOS keeps no list of its segments.`,
		run: runLs,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			fs.BoolVar(&c.json, "json", false, "print JSON: an array of objects")
		},
	},
	{
		name: "stat", args: "[-json] NAME",
		summary: "show one segment",
		help: `Shows a segment's size, mode, owner, modification time and, on Linux, the
processes that use it. The name may be given with or without its leading slash.`,
		run: runStat,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			fs.BoolVar(&c.json, "json", false, "print JSON: one object")
		},
	},
	{
		name: "dump", args: "NAME [-offset N] [-length N]",
		summary: `print a segment's bytes as "hexdump -C" does`,
		help: `Prints the segment's bytes in the format of "hexdump -C": offset, 16 bytes in
hex, and the printable characters; a run of identical lines is shown as "*".
Offsets are from the start of the segment. The segment is mapped read-only.`,
		run: runDump,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			fs.Int64Var(&c.offset, "offset", 0, "first byte to dump")
			fs.Int64Var(&c.length, "length", -1, "number of bytes to dump; -1 means to the end")
		},
	},
	{
		name: "create", args: "NAME SIZE [-mode 0600]",
		summary: "create a segment",
		help: `Creates a new, zero-filled segment of SIZE bytes. SIZE may end in K, M or G
(powers of 1024). It is an error if the name exists.`,
		run: runCreate,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			fs.StringVar(&c.mode, "mode", "0600", "permission bits, in octal; applied exactly, whatever the umask")
		},
	},
	{
		name: "rm", args: "NAME...",
		summary: "remove segments' names",
		help: `Removes the names. Processes that map a segment keep their mapping; the
memory is freed when the last of them unmaps it. A symlink planted under a
name is removed itself, never its target.`,
		run: runRm,
	},
	{
		name: "gc", args: "[-age D] [-prefix P] [-dry-run] [-ignore-uninspected] [-json] [NAME...]",
		summary: "remove segments that no live process uses",
		help: `Removes segments that no live process uses and that were last modified (or
changed) longer ago than -age. A segment is in use when a process maps it or
holds it open, as /proc/*/maps and /proc/*/fd say (or one live thread's
/proc/*/task/*/ lists, when a process's main thread has exited), or when a
presence lock is held on it: an OFD write lock at or past offset 1<<62 of its
file, which every writable mapping made by the shm package holds, seen
whatever PID namespace its process is in, so a segment used from another
container is kept. gc never removes a segment in use, nor anything that is
not a segment (a symlink, a directory). With -prefix, or NAMEs, it considers
only those segments. Processes it cannot inspect (another user's, as an
ordinary user; a non-dumpable process, even as root) could be using one, so
it keeps a segment that such a process could open (its owner's processes,
root's, or anyone's if the mode allows) and names those processes; it keeps
a segment whose presence lock cannot be checked too; -ignore-uninspected
overrides both. The lock is checked again just before the removal, but a
process could still open the name in between: gc is for names left behind,
not for names in active hand-over. Linux only.`,
		run: runGc,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			fs.DurationVar(&c.age, "age", time.Hour, "remove only segments unchanged for at least this long")
			fs.StringVar(&c.prefix, "prefix", "", "consider only names that begin with this")
			fs.BoolVar(&c.dryRun, "dry-run", false, "say what would be removed, remove nothing")
			fs.BoolVar(&c.ignoreUninspected, "ignore-uninspected", false,
				"treat processes whose mappings cannot be read, and presence locks that cannot be checked, as using no segment")
			fs.BoolVar(&c.json, "json", false, "print JSON: {dry_run, removed, kept, uninspected}")
		},
	},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: shmctl COMMAND [ARGS]\n\nshmctl inspects and manages POSIX shared memory segments.\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s %s\n        %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"shmctl COMMAND -help\" for more. Exit status: 0 success, 1 failure, 2 usage error.\n")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				return runCommand(c, []string{"-help"}, stdout, stderr)
			}
		}
		usage(stdout)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "shmctl: unknown command %q\n\n", name)
		usage(stderr)
		return exitUsage
	}
	return runCommand(c, args[1:], stdout, stderr)
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name || (c.alias != "" && c.alias == name) {
			return c
		}
	}
	return nil
}

func runCommand(c *command, args []string, stdout, stderr io.Writer) int {
	env := &cmdEnv{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("shmctl "+c.name, flag.ContinueOnError)
	env.fs = fs
	if c.flags != nil {
		c.flags(fs, env)
	}
	printUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: shmctl %s %s\n\n%s\n", c.name, c.args, c.help)
		if c.flags != nil {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.SetOutput(w)
			fs.PrintDefaults()
		}
	}
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	pos, err := parseInterleaved(fs, args)
	if err == flag.ErrHelp {
		printUsage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "shmctl %s: %v\n", c.name, err)
		printUsage(stderr)
		return exitUsage
	}
	return c.run(env, pos)
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments ("dump NAME -offset 16"), and returns the positional
// ones. Everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageErr reports a usage error for a subcommand.
func (c *cmdEnv) usageErr(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "%s: %s\n", c.fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(c.stderr, "run \"%s -help\" for usage\n", c.fs.Name())
	return exitUsage
}

// fail reports a failed operation.
func (c *cmdEnv) fail(err error) int {
	fmt.Fprintf(c.stderr, "%s: %v\n", c.fs.Name(), err)
	return exitFail
}

func (c *cmdEnv) printJSON(v any) int {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return c.fail(err)
	}
	return exitOK
}

// entry describes one name in the segment directory, or one segment.
type entry struct {
	Name    string    `json:"name"` // as stored, without the leading slash
	Type    string    `json:"type"` // "segment", "symlink", "directory", "fifo", "socket", "device", "other"
	Size    int64     `json:"size"`
	Mode    string    `json:"mode"` // permission bits in octal, "0600"
	UID     int64     `json:"uid"`  // -1 if unknown
	Owner   string    `json:"owner,omitempty"`
	ModTime time.Time `json:"mtime"`
	// PIDs are the processes that map the segment or hold it open, when
	// known (Linux); nil elsewhere.
	PIDs []int `json:"pids"`
	// Locked says whether a presence lock is held on the segment: a write
	// lock at or past offset 1<<62 of its file, which every writable mapping
	// made by the shm package holds, in whatever PID namespace. nil when it
	// could not be told (LockError says why), for entries that are not
	// segments, and on systems without OFD locks.
	Locked    *bool  `json:"locked"`
	LockError string `json:"lock_error,omitempty"`

	changed time.Time // the later of mtime and ctime
}

// lockState is e.Locked for a table: "yes", "no", "?" (could not be
// checked) or "-" (not a segment, or not known on this system).
func (e *entry) lockState() string {
	switch {
	case e.Locked != nil && *e.Locked:
		return "yes"
	case e.Locked != nil:
		return "no"
	case e.LockError != "":
		return "?"
	}
	return "-"
}

func (e *entry) pidList() string {
	if len(e.PIDs) == 0 {
		return "-"
	}
	s := make([]string, len(e.PIDs))
	for i, p := range e.PIDs {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// displayName quotes a name that holds anything but printable ASCII without
// spaces or quotes, so a name cannot forge lines or columns of output.
func displayName(name string) string {
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || r == '"' || r == '\\' {
			return strconv.Quote(name)
		}
	}
	return name
}

func runLs(c *cmdEnv, args []string) int {
	if len(args) != 0 {
		return c.usageErr("ls takes no arguments")
	}
	dir, err := scanSegments()
	if err != nil {
		return c.fail(err)
	}
	if len(dir.uninspected) > 0 {
		fmt.Fprintf(c.stderr, "shmctl ls: note: processes whose use of segments could not be seen: %s\n", procList(dir.uninspected))
	}
	if c.json {
		if dir.entries == nil {
			dir.entries = []*entry{}
		}
		return c.printJSON(dir.entries)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "NAME\tTYPE\tSIZE\tMODE\tOWNER\tMODIFIED\tPIDS\tLOCKED\n")
	for _, e := range dir.entries {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", displayName(e.Name), e.Type, e.Size, e.Mode, e.ownerName(),
			e.ModTime.Format("2006-01-02 15:04:05"), e.pidList(), e.lockState())
	}
	tw.Flush()
	return exitOK
}

func (e *entry) ownerName() string {
	if e.Owner != "" {
		return e.Owner
	}
	if e.UID >= 0 {
		return strconv.FormatInt(e.UID, 10)
	}
	return "?"
}

func runStat(c *cmdEnv, args []string) int {
	if len(args) != 1 {
		return c.usageErr("stat takes one NAME")
	}
	e, err := statSegment(args[0])
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(e)
	}
	pids := e.pidList()
	if e.PIDs == nil {
		pids = "unknown on this system"
	}
	locked := e.lockState()
	switch {
	case e.LockError != "":
		locked += " (" + e.LockError + ")"
	case e.PIDs == nil && e.Type == "segment":
		locked = "unknown on this system"
	}
	fmt.Fprintf(c.stdout, "Name:     /%s\nType:     %s\nSize:     %d\nMode:     %s\nOwner:    %s\nModified: %s\nPIDs:     %s\nLocked:   %s\n",
		displayName(e.Name), e.Type, e.Size, e.Mode, e.ownerName(), e.ModTime.Format(time.RFC3339Nano), pids, locked)
	return exitOK
}

func runDump(c *cmdEnv, args []string) int {
	if len(args) != 1 {
		return c.usageErr("dump takes one NAME")
	}
	if c.offset < 0 {
		return c.usageErr("-offset %d is negative", c.offset)
	}
	if c.length < -1 {
		return c.usageErr("-length %d is negative", c.length)
	}
	s, err := shm.OpenFile(args[0], os.O_RDONLY, 0, 0)
	if err != nil {
		return c.fail(err)
	}
	defer s.Close()
	size := int64(s.Size())
	if c.offset > size {
		return c.fail(fmt.Errorf("offset %d is past the end of the segment (%d bytes)", c.offset, size))
	}
	end := size
	if c.length >= 0 && c.length < size-c.offset {
		end = c.offset + c.length
	}
	d := newHexDumper(c.stdout, c.offset)
	d.endLine = c.length != 0
	buf := make([]byte, 64<<10)
	for off := c.offset; off < end; {
		n := int(min(int64(len(buf)), end-off))
		// ReadAt is the package's safe path: a segment shrunk meanwhile by
		// its owner gives an error, not a crash.
		m, err := s.ReadAt(buf[:n], off)
		d.Write(buf[:m])
		off += int64(m)
		if err != nil && off < end {
			d.Close()
			return c.fail(err)
		}
	}
	if err := d.Close(); err != nil {
		return c.fail(err)
	}
	return exitOK
}

// parseSize parses a size in bytes with an optional K, M or G suffix.
func parseSize(s string) (int, error) {
	mult := int64(1)
	t := strings.TrimSuffix(strings.ToUpper(s), "B")
	if t = strings.TrimSuffix(t, "I"); len(t) > 0 {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult || n*mult != int64(int(n*mult)) {
		return 0, fmt.Errorf("bad SIZE %q: want a positive number of bytes, optionally with K, M or G", s)
	}
	return int(n * mult), nil
}

func runCreate(c *cmdEnv, args []string) int {
	if len(args) != 2 {
		return c.usageErr("create takes NAME and SIZE")
	}
	size, err := parseSize(args[1])
	if err != nil {
		return c.usageErr("%v", err)
	}
	mode, err := strconv.ParseUint(c.mode, 8, 32)
	if err != nil || mode > 0o777 {
		return c.usageErr("bad -mode %q: want octal permission bits such as 0600", c.mode)
	}
	s, err := shm.OpenFile(args[0], os.O_RDWR|os.O_CREATE|os.O_EXCL, os.FileMode(mode), size)
	if err != nil {
		return c.fail(err)
	}
	if err := s.Close(); err != nil {
		return c.fail(err)
	}
	return exitOK
}

func runRm(c *cmdEnv, args []string) int {
	if len(args) == 0 {
		return c.usageErr("rm takes at least one NAME")
	}
	status := exitOK
	for _, name := range args {
		if err := shm.Unlink(name); err != nil {
			c.fail(err)
			status = exitFail
		}
	}
	return status
}

// procInfo is a process that could not be inspected.
type procInfo struct {
	PID  int    `json:"pid"`
	UID  uint32 `json:"uid"`
	Name string `json:"name"`
}

func procList(ps []procInfo) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%d (%s, uid %d)", p.PID, p.Name, p.UID)
	}
	return strings.Join(s, ", ")
}

// errNowInUse is returned by removeIfSame when a presence lock was taken on
// the segment after the scan found it unused.
var errNowInUse = errors.New("in use: a presence lock was taken on it after the scan")

// gcKept is a segment gc left alone, and why.
type gcKept struct {
	*entry
	Reason string `json:"reason"`
}

func runGc(c *cmdEnv, args []string) int {
	if c.age < 0 {
		return c.usageErr("-age %v is negative", c.age)
	}
	only := map[string]bool{}
	for _, a := range args {
		only[strings.TrimPrefix(a, "/")] = true
	}
	dir, err := scanSegments()
	if err != nil {
		return c.fail(err)
	}
	result := struct {
		DryRun      bool       `json:"dry_run"`
		Removed     []*entry   `json:"removed"`
		Kept        []gcKept   `json:"kept"`
		Uninspected []procInfo `json:"uninspected"`
	}{DryRun: c.dryRun, Removed: []*entry{}, Kept: []gcKept{}, Uninspected: dir.uninspected}
	if result.Uninspected == nil {
		result.Uninspected = []procInfo{}
	}
	now := time.Now()
	status := exitOK
	for _, e := range dir.entries {
		if (len(only) > 0 && !only[e.Name]) || !strings.HasPrefix(e.Name, c.prefix) {
			continue
		}
		reason := ""
		switch {
		case e.Type != "segment":
			reason = "not a segment (" + e.Type + ")"
		case len(e.PIDs) > 0:
			reason = "in use by " + e.pidList()
		case e.Locked != nil && *e.Locked:
			reason = "in use: a presence lock is held on it (a process maps it through the shm package, perhaps in another PID namespace)"
		case now.Sub(e.changed) < c.age:
			reason = fmt.Sprintf("changed %v ago, less than -age %v", now.Sub(e.changed).Round(time.Second), c.age)
		case !c.ignoreUninspected && e.Locked == nil:
			reason = "could be in use: its presence lock could not be checked: " + e.LockError + " (-ignore-uninspected overrides)"
		case !c.ignoreUninspected && len(dir.mayBeHidden(e)) > 0:
			reason = "could be in use by processes that could not be inspected: " + procList(dir.mayBeHidden(e)) +
				" (-ignore-uninspected overrides)"
		}
		if reason == "" && !c.dryRun {
			if err := dir.removeIfSame(e); errors.Is(err, errNowInUse) {
				reason = err.Error()
			} else if err != nil {
				reason = "not removed: " + err.Error()
				status = exitFail
				fmt.Fprintf(c.stderr, "shmctl gc: %s: %v\n", displayName(e.Name), err)
			}
		}
		if reason != "" {
			result.Kept = append(result.Kept, gcKept{e, reason})
			continue
		}
		result.Removed = append(result.Removed, e)
	}
	if c.json {
		if st := c.printJSON(result); st != exitOK {
			return st
		}
		return status
	}
	verb := "removed"
	if c.dryRun {
		verb = "would remove"
	}
	for _, e := range result.Removed {
		fmt.Fprintf(c.stdout, "%s %s (%d bytes, unchanged for %v)\n", verb, displayName(e.Name), e.Size, now.Sub(e.changed).Round(time.Second))
	}
	for _, k := range result.Kept {
		fmt.Fprintf(c.stdout, "kept %s: %s\n", displayName(k.Name), k.Reason)
	}
	return status
}
