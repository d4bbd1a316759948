// Command shmctl lists, inspects, creates and removes POSIX shared memory
// segments, and removes the ones left behind by processes that died.
//
// Usage:
//
//	shmctl ls [-json] [-bytes] [PATTERN...]  list segments, their kind and the processes using them
//	shmctl stat [-json] NAME              show one segment
//	shmctl dump NAME [-offset N] [-length N]  print its bytes as "hexdump -C" does
//	shmctl create NAME SIZE [-mode 0600]  create a segment
//	shmctl rm [-f] NAME...                remove segments' names
//	shmctl gc [-age D] [-prefix P] [-dry-run] [-ignore-uninspected] [-json] [NAME...]
//	                                      remove segments no process uses
//	shmctl version                        print the version (also --version)
//
// Every subcommand takes -help. The exit status is 0 on success, 1 when an
// operation failed (the message names the segment) and 2 for a usage error
// (the usage is printed on standard error). A NAME is a segment name such
// as "/myapp-1" or "myapp-1", never a path: "/dev/shm/myapp-1" is refused
// with a hint.
//
// ls shows each segment's kind when its first bytes say it: "ring v3", "bus
// v1", "cell v1" (the layouts of this module's ring, bus and cell packages),
// or "plain"; they are read with pread from a read-only descriptor, never
// through a writable mapping.
//
// ls and gc read /dev/shm and /proc on Linux, and the kern.ipc.posix_shm_list
// sysctl on FreeBSD, where a segment that is mapped is seen as in use but a
// descriptor held open is not, so gc keeps every segment there unless told
// -ignore-uninspected. macOS keeps no list of its segments: there, ls and gc
// fail and stat, dump, create and rm work with names.
//
// On Linux a segment is in use when a live process maps it or holds it open,
// as /proc/PID/maps and /proc/PID/fd say (or, for a process whose main
// thread has exited, those of one of its live threads), or when anyone holds
// a presence lock on it: the OFD write lock at or past offset 1<<62 of the
// segment's file that every writable mapping made by the shm package holds.
// The lock is seen across PID namespaces, where /proc is not.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime"
	"runtime/debug"
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
	cmd               *command // the subcommand running
	bytes             bool     // ls -bytes: exact sizes
	force             bool     // rm -f
}

const listHelp = `Linux: the entries of /dev/shm, and the processes from /proc. FreeBSD: the
kern.ipc.posix_shm_list sysctl, which names no process: a segment is shown
with the number of mappings the kernel counts for it, and descriptors held
open without a mapping are not seen. macOS keeps no list of POSIX shared
memory segments: give names to stat or rm instead.`

var commands = []*command{
	{
		name: "ls", alias: "list", args: "[-json] [-bytes] [PATTERN...]",
		summary: "list segments, their kind and the processes using them",
		help: `Lists segments: name, kind, size, mode, owner, modification time, the
processes that map it or hold it open, as PID(command), and LOCKED.

PATTERNs select segments by name, with the wildcards of Go's path.Match (*,
?, [a-z], \ to quote) and with or without the leading slash: "myapp-*" and
"/myapp-*" are the same. A PATTERN that matches nothing is an error (exit 1)
naming it. Quote patterns from the shell.

KIND comes from the segment's first bytes, read through a read-only
descriptor (pread): "ring v3" (the ring package's magic 0x00474e49524d4853
at offset 0, the layout version at 8), "bus v1" and "cell v1" (their
packages' 32-bit magic at 0, the version at 4), "plain" for anything else,
including a ring, bus or cell still being made (its magic is 0 until it is
ready), and "?" when it could not be read (JSON: "kind", "version",
"kind_error"). Entries that are not segments (a symlink, a directory, a FIFO
planted in /dev/shm) show their type and are never followed.

SIZE is shown as 4.0K, 1.5M (powers of 1024); -bytes shows exact bytes, as
JSON always does. Names with unusual characters are shown quoted.

Processes come from /proc/*/maps and /proc/*/fd (or a live thread's
/proc/*/task/*/ lists when a process's main thread has exited). Processes
that cannot be inspected (other users', as an ordinary user; non-dumpable
ones and, in many containers, PID 1, even as root) are reported in one line
on standard error: their use of a segment is not shown. LOCKED is "yes" when
a presence lock is held on the segment (an OFD write lock at or past offset
1<<62 of its file, which every writable mapping made by the shm package
holds, seen in whatever PID namespace the holder runs; a process in another
namespace may have no PID here), "no", or "?" when it could not be checked
(JSON: "locked" true, false or null, and "lock_error").

JSON is an array of objects with "name" (without the slash), "type", "kind",
"version", "size" (bytes), "mode", "uid", "owner", "mtime", "pids" (numbers),
"processes" ([{"pid", "command"}]), "locked" and "lock_error".

` + listHelp,
		run: runLs,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			fs.BoolVar(&c.json, "json", false, "print JSON: an array of objects")
			fs.BoolVar(&c.bytes, "bytes", false, "show sizes in bytes, not as 4.0K, 1.5M")
		},
	},
	{
		name: "stat", args: "[-json] NAME",
		summary: "show one segment",
		help: `Shows a segment's kind, size, mode, owner, modification time and, on Linux,
the processes that use it and its presence lock. The name may be given with
or without its leading slash, never as a path ("/dev/shm/x").`,
		run: runStat,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			fs.BoolVar(&c.json, "json", false, "print JSON: one object, as ls -json gives")
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
		name: "rm", args: "[-f] NAME...",
		summary: "remove segments' names",
		help: `Removes the names. Processes that map a segment keep their mapping; the
memory is freed when the last of them unmaps it. A symlink planted under a
name is removed itself, never its target. A NAME that does not exist is an
error (exit 1) unless -f is given, as with rm -f; any other failure, such as
a permission denied, is an error with -f too.`,
		run: runRm,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			fs.BoolVar(&c.force, "f", false, "ignore names that do not exist")
		},
	},
	{
		name: "gc", args: "[-age D] [-prefix P] [-dry-run] [-ignore-uninspected] [-json] [NAME...]",
		summary: "remove segments that no live process uses",
		help: `Removes segments that no live process uses and that were last modified (or
changed) longer ago than -age, and prints one line per segment considered,
"removed /x (unused, age 3h, 4.0K)" or "kept /y: in use by 123(myprog)" and
so on, then a summary. With -prefix, or NAMEs, it considers only those
segments; a NAME that does not exist is reported (exit 1). The prefix may be
given with or without the leading slash.

Linux: a segment is in use when a process maps it or holds it open, as
/proc/*/maps and /proc/*/fd say (or one live thread's /proc/*/task/*/ lists,
when a process's main thread has exited), or when a presence lock is held on
it: an OFD write lock at or past offset 1<<62 of its file, which every
writable mapping made by the shm package holds, seen whatever PID namespace
its process is in, so a segment used from another container is kept. gc
never removes a segment in use, nor anything that is not a segment (a
symlink, a directory). Processes it cannot inspect (another user's, as an
ordinary user; a non-dumpable process, and in many containers PID 1, even
as root) could be using one, so it keeps a segment that such a process could
open (its owner's processes, root's, or anyone's if the mode allows) and
names those processes; it keeps a segment whose presence lock cannot be
checked too; -ignore-uninspected overrides both (the presence lock, when it
can be checked, still keeps a segment). The lock is checked again just
before the removal, but a process could still open the name in between: gc
is for names left behind, not for names in active hand-over.

FreeBSD: the kernel counts the mappings of a segment (fstat's st_nlink is
its VM object's reference count, sys/kern/uipc_shm.c shm_stat), so a mapped
segment is kept, but it cannot tell whether a process holds one open
without mapping it: gc keeps every unmapped segment too, as possibly in use,
unless -ignore-uninspected is given. macOS: gc cannot work (no list of
segments).`,
		run: runGc,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			fs.DurationVar(&c.age, "age", time.Hour, "remove only segments unchanged for at least this long")
			fs.StringVar(&c.prefix, "prefix", "", "consider only names that begin with this (with or without the leading slash)")
			fs.BoolVar(&c.dryRun, "dry-run", false, "say what would be removed, remove nothing")
			fs.BoolVar(&c.ignoreUninspected, "ignore-uninspected", false,
				"treat processes whose mappings cannot be read, presence locks that cannot be checked and (FreeBSD) descriptors that cannot be seen as using no segment")
			fs.BoolVar(&c.json, "json", false, "print JSON: {dry_run, removed, kept (with reason and code), missing, uninspected}")
		},
	},
	{
		name: "version", args: "",
		summary: "print shmctl's version",
		help: `Prints the module version shmctl was built from ("(devel)" for a build from
a working tree without version information), the Go version and the
GOOS/GOARCH. "shmctl --version" does the same.`,
		run: runVersion,
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
			fmt.Fprintf(stderr, "shmctl help: unknown command %q\n\n", args[1])
			usage(stderr)
			return exitUsage
		}
		usage(stdout)
		return exitOK
	case "-version", "--version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "shmctl %s takes no arguments\n\n", name)
			usage(stderr)
			return exitUsage
		}
		fmt.Fprintln(stdout, versionString())
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
	env := &cmdEnv{stdout: stdout, stderr: stderr, cmd: c}
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

// usageErr reports a usage error for a subcommand, with its synopsis, and
// returns exitUsage.
func (c *cmdEnv) usageErr(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "%s: %s\n", c.fs.Name(), fmt.Sprintf(format, args...))
	if c.cmd != nil {
		fmt.Fprintf(c.stderr, "usage: shmctl %s %s\n", c.cmd.name, c.cmd.args)
	}
	fmt.Fprintf(c.stderr, "run \"%s -help\" for more\n", c.fs.Name())
	return exitUsage
}

// fail reports a failed operation and returns exitFail.
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

// segmentName checks a NAME argument and returns it without its leading
// slash, as /dev/shm stores it. A name that is a path ("/dev/shm/x",
// "dev/shm/x", "a/b") gives an error that says so and suggests the name
// meant; so do an empty name and one with a NUL byte. Every other check
// (length, "." and "..") is left to the shm package, whose limits differ
// by system.
func segmentName(arg string) (string, error) {
	rest := strings.TrimPrefix(arg, "/")
	switch {
	case rest == "":
		return "", fmt.Errorf("%q is not a segment name: give a name such as \"/myapp-1\"", arg)
	case strings.IndexByte(rest, 0) >= 0:
		return "", fmt.Errorf("%q is not a segment name: it holds a NUL byte", arg)
	case strings.Contains(rest, "/"):
		return "", errors.New(pathHint(arg))
	}
	return rest, nil
}

// pathHint says that arg, which has a slash after its first byte, is a path
// and not a segment name, and suggests the name it probably means: its last
// element.
func pathHint(arg string) string {
	clean := path.Clean("/" + strings.TrimPrefix(arg, "/"))
	if clean == "/dev/shm" || clean == "/" {
		return fmt.Sprintf("%q is the directory of segments, not a segment name: give a name such as \"/myapp-1\"", arg)
	}
	return fmt.Sprintf("%q is a path; segment names have no directory: try %q", arg, "/"+path.Base(clean))
}

// nameArgs checks NAME arguments with segmentName. On a bad one it reports
// a usage error and returns ok false with the exit status.
func (c *cmdEnv) nameArgs(args []string) (names []string, status int, ok bool) {
	for _, a := range args {
		n, err := segmentName(a)
		if err != nil {
			return nil, c.usageErr("%v", err), false
		}
		names = append(names, n)
	}
	return names, exitOK, true
}

// entry describes one name in the segment directory, or one segment.
type entry struct {
	Name string `json:"name"` // as stored, without the leading slash
	Type string `json:"type"` // "segment", "symlink", "directory", "fifo", "socket", "device", "other"
	// Kind is what the segment's first bytes say it is: "ring", "bus",
	// "cell", "plain", or "?" when they could not be read (KindError says
	// why); "" for entries that are not segments.
	Kind      string    `json:"kind"`
	Version   uint32    `json:"version,omitempty"` // layout version of a ring, bus or cell
	KindError string    `json:"kind_error,omitempty"`
	Size      int64     `json:"size"`
	Mode      string    `json:"mode"` // permission bits in octal, "0600"
	UID       int64     `json:"uid"`  // -1 if unknown
	Owner     string    `json:"owner,omitempty"`
	ModTime   time.Time `json:"mtime"`
	// PIDs are the processes that map the segment or hold it open, when
	// known (Linux); nil elsewhere.
	PIDs []int `json:"pids"`
	// Processes are PIDs with their command names (/proc/PID/comm).
	Processes []process `json:"processes"`
	// Mappings is, on FreeBSD, the number of mappings of the segment the
	// kernel counts (its VM object's references less the segment's own);
	// nil elsewhere.
	Mappings *int64 `json:"mappings,omitempty"`
	// Locked says whether a presence lock is held on the segment: a write
	// lock at or past offset 1<<62 of its file, which every writable mapping
	// made by the shm package holds, in whatever PID namespace. nil when it
	// could not be told (LockError says why), for entries that are not
	// segments, and on systems without OFD locks.
	Locked    *bool  `json:"locked"`
	LockError string `json:"lock_error,omitempty"`

	changed time.Time // the later of mtime and ctime
}

// process is a process using a segment.
type process struct {
	PID     int    `json:"pid"`
	Command string `json:"command"` // "" when it could not be read
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

// pidList is e's processes as "123(myprog),456(other)", or "-".
func (e *entry) pidList() string {
	if e.Type == "segment" && e.PIDs == nil && e.Mappings == nil {
		return "?"
	}
	if e.Mappings != nil && len(e.PIDs) == 0 {
		if *e.Mappings == 0 {
			return "-"
		}
		return fmt.Sprintf("%d mapping(s)", *e.Mappings)
	}
	if len(e.PIDs) == 0 {
		return "-"
	}
	s := make([]string, len(e.PIDs))
	for i, p := range e.PIDs {
		s[i] = procLabel(p)
	}
	return strings.Join(s, ",")
}

// kindLabel is e's kind for a table: "ring v3", "plain", "?", or the type
// of an entry that is not a segment.
func (e *entry) kindLabel() string {
	switch {
	case e.Type != "segment":
		return e.Type
	case e.Kind == kindRing || e.Kind == kindBus || e.Kind == kindCell:
		return fmt.Sprintf("%s v%d", e.Kind, e.Version)
	case e.Kind == "":
		return "?"
	}
	return e.Kind
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

// humanSize formats a size in bytes as ls -h does, in powers of 1024 and
// rounded up, so that a size is never shown smaller than it is: "512",
// "4.0K", "4.1K" (4097 bytes), "12K", "1.5M", "2.0G".
func humanSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	const units = "KMGTPE"
	v := float64(n) / 1024
	for i := 0; ; i++ {
		r := math.Ceil(v)
		if v < 10 {
			r = math.Ceil(v*10) / 10
		}
		if r < 1024 || i == len(units)-1 {
			if r < 10 {
				return fmt.Sprintf("%.1f%c", r, units[i])
			}
			return fmt.Sprintf("%.0f%c", r, units[i])
		}
		v /= 1024
	}
}

// procComm returns the command name of process pid, from /proc/PID/comm
// (at most 15 bytes, as the kernel keeps it), or "" if it cannot be read
// (the process exited, or the system has no such file).
func procComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// procLabel is "123(myprog)", or "123" when the command name is not known;
// a command name with spaces or unusual bytes is quoted.
func procLabel(pid int) string {
	return pidComm(pid, procComm(pid))
}

func pidComm(pid int, comm string) string {
	if comm == "" {
		return strconv.Itoa(pid)
	}
	return strconv.Itoa(pid) + "(" + displayName(comm) + ")"
}

func (e *entry) sizeLabel(exact bool) string {
	if exact || e.Type != "segment" {
		return strconv.FormatInt(e.Size, 10)
	}
	return humanSize(e.Size)
}

func runLs(c *cmdEnv, args []string) int {
	var patterns []string
	for _, a := range args {
		p := strings.TrimPrefix(a, "/")
		if p == "" || strings.Contains(p, "/") {
			_, err := segmentName(a)
			return c.usageErr("%v", err)
		}
		if _, err := path.Match(p, ""); err != nil {
			return c.usageErr("bad PATTERN %q: %v", a, err)
		}
		patterns = append(patterns, p)
	}
	dir, err := scanSegments()
	if err != nil {
		return c.fail(err)
	}
	if len(dir.uninspected) > 0 {
		fmt.Fprintf(c.stderr, "shmctl ls: note: %s\n", uninspectedNote(dir.uninspected))
	}
	entries := dir.entries
	matched := make([]bool, len(patterns))
	if len(patterns) > 0 {
		entries = nil
		for _, e := range dir.entries {
			hit := false
			for i, p := range patterns {
				if ok, _ := path.Match(p, e.Name); ok {
					matched[i], hit = true, true
				}
			}
			if hit {
				entries = append(entries, e)
			}
		}
	}
	if c.json {
		if entries == nil {
			entries = []*entry{}
		}
		if st := c.printJSON(entries); st != exitOK {
			return st
		}
	} else {
		tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
		if len(entries) > 0 || len(patterns) == 0 {
			fmt.Fprintf(tw, "NAME\tKIND\tSIZE\tMODE\tOWNER\tMODIFIED\tPROCESSES\tLOCKED\n")
		}
		for _, e := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", displayName(e.Name), e.kindLabel(), e.sizeLabel(c.bytes), e.Mode, e.ownerName(),
				e.ModTime.Format("2006-01-02 15:04:05"), e.pidList(), e.lockState())
		}
		tw.Flush()
	}
	status := exitOK
	for i, p := range patterns {
		if !matched[i] {
			if hasMeta(p) {
				fmt.Fprintf(c.stderr, "shmctl ls: no segment matches %q\n", args[i])
			} else {
				fmt.Fprintf(c.stderr, "shmctl ls: /%s: no such segment\n", displayName(p))
			}
			status = exitFail
		}
	}
	return status
}

// hasMeta reports whether a pattern holds a path.Match wildcard.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// uninspectedNote is one line about the processes that could not be
// inspected, naming at most three.
func uninspectedNote(ps []procInfo) string {
	const show = 3
	names := make([]string, 0, show)
	for i, p := range ps {
		if i == show {
			break
		}
		names = append(names, pidComm(p.PID, p.Name))
	}
	more := ""
	if len(ps) > show {
		more = fmt.Sprintf(" and %d more", len(ps)-show)
	}
	proc := "processes"
	if len(ps) == 1 {
		proc = "process"
	}
	return fmt.Sprintf("cannot inspect %d %s (%s%s): segments they use show no PID here", len(ps), proc, strings.Join(names, ", "), more)
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
	names, st, ok := c.nameArgs(args)
	if !ok {
		return st
	}
	e, err := statSegment(names[0])
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(e)
	}
	pids := e.pidList()
	if e.PIDs == nil && e.Mappings == nil {
		pids = "unknown on this system"
	}
	locked := e.lockState()
	switch {
	case e.LockError != "":
		locked += " (" + e.LockError + ")"
	case e.PIDs == nil && e.Type == "segment":
		locked = "unknown on this system"
	}
	kind := e.kindLabel()
	if e.KindError != "" {
		kind += " (" + e.KindError + ")"
	}
	fmt.Fprintf(c.stdout, "Name:     /%s\nType:     %s\nKind:     %s\nSize:     %d (%s)\nMode:     %s\nOwner:    %s\nModified: %s\nPIDs:     %s\nLocked:   %s\n",
		displayName(e.Name), e.Type, kind, e.Size, humanSize(e.Size), e.Mode, e.ownerName(), e.ModTime.Format(time.RFC3339Nano), pids, locked)
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
	names, st, ok := c.nameArgs(args)
	if !ok {
		return st
	}
	s, err := shm.OpenFile(names[0], os.O_RDONLY, 0, 0)
	if err != nil {
		return c.fail(err)
	}
	defer s.Close()
	size := int64(s.Size())
	if c.offset > size {
		return c.fail(fmt.Errorf("%s: offset %d is past the end of the segment (%d bytes)", s.Name(), c.offset, size))
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
			return c.fail(fmt.Errorf("%s: %w", s.Name(), err))
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
	names, st, ok := c.nameArgs(args[:1])
	if !ok {
		return st
	}
	size, err := parseSize(args[1])
	if err != nil {
		return c.usageErr("%v", err)
	}
	mode, err := strconv.ParseUint(c.mode, 8, 32)
	if err != nil || mode > 0o777 {
		return c.usageErr("bad -mode %q: want octal permission bits such as 0600", c.mode)
	}
	s, err := shm.OpenFile(names[0], os.O_RDWR|os.O_CREATE|os.O_EXCL, os.FileMode(mode), size)
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
	names, st, ok := c.nameArgs(args)
	if !ok {
		return st
	}
	status := exitOK
	for _, name := range names {
		err := shm.Unlink(name)
		if err == nil || (c.force && errors.Is(err, fs.ErrNotExist)) {
			continue
		}
		c.fail(err)
		status = exitFail
	}
	return status
}

func runVersion(c *cmdEnv, args []string) int {
	if len(args) != 0 {
		return c.usageErr("version takes no arguments")
	}
	fmt.Fprintln(c.stdout, versionString())
	return exitOK
}

// versionString is "shmctl MODULE VERSION GOVERSION GOOS/GOARCH", from the
// build information the go command embeds: the main module's version
// ("v1.2.3" with go install ...@v1.2.3, a pseudo-version or "(devel)" from
// a working tree).
func versionString() string {
	mod, ver := "github.com/mindmeld-go/shm", "(unknown)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path != "" {
			mod = bi.Main.Path
		}
		ver = bi.Main.Version
		if ver == "" {
			ver = "(devel)"
		}
	}
	return fmt.Sprintf("shmctl %s %s %s %s/%s", mod, ver, runtime.Version(), runtime.GOOS, runtime.GOARCH)
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
		s[i] = fmt.Sprintf("%d(%s, uid %d)", p.PID, displayName(p.Name), p.UID)
	}
	return strings.Join(s, ", ")
}

// errNowInUse is wrapped by the error removeIfSame returns when the segment
// was locked (Linux) or mapped (FreeBSD) after the scan found it unused.
var errNowInUse = errors.New("in use since the scan")

// gcKept is a segment gc left alone, and why.
type gcKept struct {
	*entry
	Reason string `json:"reason"`
	// Code is the reason as a word, for scripts: "not_segment", "in_use",
	// "locked", "recent", "lock_unchecked", "uninspected", "mapped",
	// "unseen_descriptors" (FreeBSD), "error".
	Code string `json:"code"`
}

// shortDuration formats d as "3h", "2m", "45s", "1h30m", "2d": whole
// seconds, without the zero units time.Duration's String shows.
func shortDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d >= 48*time.Hour {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	if d >= time.Hour {
		d = d.Truncate(time.Minute)
	}
	if d == 0 {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func runGc(c *cmdEnv, args []string) int {
	if c.age < 0 {
		return c.usageErr("-age %v is negative", c.age)
	}
	prefix := strings.TrimPrefix(c.prefix, "/")
	if strings.Contains(prefix, "/") {
		return c.usageErr("-prefix %s", pathHint(c.prefix))
	}
	names, st, ok := c.nameArgs(args)
	if !ok {
		return st
	}
	only := map[string]bool{}
	for _, n := range names {
		only[n] = true
	}
	dir, err := scanSegments()
	if err != nil {
		return c.fail(err)
	}
	result := struct {
		DryRun      bool       `json:"dry_run"`
		Removed     []*entry   `json:"removed"`
		Kept        []gcKept   `json:"kept"`
		Missing     []string   `json:"missing"` // NAMEs given that do not exist
		Uninspected []procInfo `json:"uninspected"`
	}{DryRun: c.dryRun, Removed: []*entry{}, Kept: []gcKept{}, Missing: []string{}, Uninspected: dir.uninspected}
	if result.Uninspected == nil {
		result.Uninspected = []procInfo{}
	}
	now := time.Now()
	status := exitOK
	seen := map[string]bool{}
	hidden := 0 // segments kept for processes or locks that could not be seen
	considered := 0
	for _, e := range dir.entries {
		if (len(only) > 0 && !only[e.Name]) || !strings.HasPrefix(e.Name, prefix) {
			continue
		}
		seen[e.Name] = true
		considered++
		reason, code := dir.keepReason(e, now, c)
		if code == "lock_unchecked" || code == "uninspected" || code == "unseen_descriptors" {
			hidden++
		}
		if reason == "" && !c.dryRun {
			if err := dir.removeIfSame(e); errors.Is(err, errNowInUse) {
				reason, code = err.Error(), "in_use"
			} else if err != nil {
				reason, code = "not removed: "+err.Error(), "error"
				status = exitFail
				fmt.Fprintf(c.stderr, "shmctl gc: /%s: %v\n", displayName(e.Name), err)
			}
		}
		if reason != "" {
			result.Kept = append(result.Kept, gcKept{e, reason, code})
			continue
		}
		result.Removed = append(result.Removed, e)
	}
	for _, a := range args {
		if n, _ := segmentName(a); !seen[n] {
			result.Missing = append(result.Missing, "/"+n)
			fmt.Fprintf(c.stderr, "shmctl gc: /%s: no such segment\n", displayName(n))
			status = exitFail
		}
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
	var freed int64
	for _, e := range result.Removed {
		freed += e.Size
		fmt.Fprintf(c.stdout, "%s /%s (unused, age %s, %s)\n", verb, displayName(e.Name), shortDuration(now.Sub(e.changed)), humanSize(e.Size))
	}
	for _, k := range result.Kept {
		fmt.Fprintf(c.stdout, "kept /%s: %s\n", displayName(k.Name), k.Reason)
	}
	noun := "segments"
	if considered == 1 {
		noun = "segment"
	}
	if len(result.Removed) == 0 {
		fmt.Fprintf(c.stdout, "gc: nothing to remove (%d %s considered)\n", considered, noun)
	} else {
		fmt.Fprintf(c.stdout, "gc: %s %d (%s), kept %d (%d %s considered)\n", verb, len(result.Removed), humanSize(freed), len(result.Kept), considered, noun)
	}
	if hidden > 0 {
		noun = "segments"
		if hidden == 1 {
			noun = "segment"
		}
		fmt.Fprintf(c.stdout, "gc: kept %d %s only because of %s; if those use none of them, run again with -ignore-uninspected\n",
			hidden, noun, dir.unseen())
	}
	return status
}

// keepReason says why gc keeps e, as text and as a code, or "" if it may be
// removed.
func (d *segDir) keepReason(e *entry, now time.Time, c *cmdEnv) (reason, code string) {
	switch {
	case e.Type != "segment":
		return "not a segment (" + e.Type + ")", "not_segment"
	case len(e.PIDs) > 0:
		return "in use by " + e.pidList(), "in_use"
	case e.Mappings != nil && *e.Mappings > 0:
		return fmt.Sprintf("in use: mapped %d time(s) (FreeBSD counts mappings but names no process)", *e.Mappings), "mapped"
	case e.Locked != nil && *e.Locked:
		return "presence lock held (a process maps it through the shm package, perhaps in another PID namespace)", "locked"
	case now.Sub(e.changed) < c.age:
		return fmt.Sprintf("modified %s ago (< -age %s)", shortDuration(now.Sub(e.changed)), shortDuration(c.age)), "recent"
	case c.ignoreUninspected:
		return "", ""
	case e.LockError != "":
		return "could be in use: its presence lock could not be checked: " + e.LockError + " (-ignore-uninspected overrides)", "lock_unchecked"
	case len(d.mayBeHidden(e)) > 0:
		return "could be in use by processes that could not be inspected: " + procList(d.mayBeHidden(e)) +
			" (-ignore-uninspected overrides)", "uninspected"
	case e.PIDs == nil && e.Mappings == nil:
		return "could be in use: it could not be inspected: " + e.KindError + " (-ignore-uninspected overrides)", "uninspected"
	case e.Mappings != nil:
		return "could be held open: FreeBSD shows a segment's mappings, not its open descriptors (-ignore-uninspected overrides)", "unseen_descriptors"
	}
	return "", ""
}
