package main

// Listing on Linux: segments are the files in /dev/shm (glibc
// posix/shm-directory.c), and the processes that use one are found in
// /proc/PID/maps (mappings) and /proc/PID/fd (open descriptors), matched by
// device and inode number, so a name that was removed and made again is
// never mistaken for the old segment.
//
// A segment's kind is read from its first bytes with pread through the same
// read-only descriptor that checks its presence lock (below): never through
// a mapping, so a segment shrunk meanwhile gives a short read, not SIGBUS.
//
// Two things /proc does not show are covered besides (issue 8):
//
//   - A process whose main thread (the thread-group leader) has exited while
//     other threads run, as after pthread_exit in a C main: its
//     /proc/PID/stat says state Z and /proc/PID/maps and /proc/PID/fd are
//     empty, but /proc/PID/task/TID/maps and .../fd of a live thread list
//     them. When the leader's lists are empty or unreadable and field 20 of
//     stat (num_threads) is above 1, one live thread's lists are read
//     instead.
//   - A process in another PID namespace, which this /proc may not list at
//     all (a container sharing /dev/shm). Every writable mapping made by the
//     shm package holds an open-file-description (OFD) write lock on a byte
//     of the segment's own file at or above offset 1<<62, far past its end
//     (see liveness_linux.go and the README's Liveness section); the kernel
//     drops it only when that mapping is closed or the whole process is
//     gone, whatever its namespace. One F_OFD_GETLK per segment tells
//     whether any such lock is held.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mindmeld-go/shm"
)

const shmDir = "/dev/shm"

type devIno struct{ dev, ino uint64 }

// segDir is what a scan found.
type segDir struct {
	entries     []*entry
	uninspected []procInfo          // processes whose maps or fds could not be read
	sys         map[*entry]entrySys // what lstat said of each entry
}

// entrySys is what the Linux listing keeps of an entry besides: the identity
// of the file, to match it against /proc, and its permission bits.
type entrySys struct {
	dev, ino uint64
	perm     uint32
}

// mayBeHidden returns the processes that could not be inspected and might be
// using e: the owner's processes, root processes (which may open anything),
// or every one when the mode lets other users open it.
func (d *segDir) mayBeHidden(e *entry) []procInfo {
	var out []procInfo
	for _, p := range d.uninspected {
		if int64(p.UID) == e.UID || p.UID == 0 || d.sys[e].perm&0o077 != 0 {
			out = append(out, p)
		}
	}
	return out
}

// unseen says, for gc's summary, what could not be inspected.
func (d *segDir) unseen() string {
	if len(d.uninspected) == 0 {
		return "presence locks it could not check"
	}
	s := make([]string, 0, 3)
	for i, p := range d.uninspected {
		if i == 3 {
			s = append(s, fmt.Sprintf("and %d more", len(d.uninspected)-3))
			break
		}
		s = append(s, pidComm(p.PID, p.Name))
	}
	return "processes it cannot inspect (" + strings.Join(s, ", ") + ")"
}

func scanSegments() (*segDir, error) {
	ents, err := os.ReadDir(shmDir)
	if err != nil {
		return nil, err
	}
	d := &segDir{sys: map[*entry]entrySys{}}
	byKey := map[devIno]*entry{}
	for _, de := range ents {
		e, sys, err := lstatEntry(de.Name())
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			return nil, err
		}
		d.entries = append(d.entries, e)
		d.sys[e] = sys
		if e.Type == "segment" {
			byKey[devIno{sys.dev, sys.ino}] = e
			e.inspectFile(sys)
		}
	}
	d.uninspected = findUsers(byKey)
	for _, e := range byKey {
		e.setProcesses()
	}
	return d, nil
}

func statSegment(name string) (*entry, error) {
	rest := strings.TrimPrefix(name, "/")
	if rest == "" || rest == "." || rest == ".." || strings.ContainsAny(rest, "/\x00") || len(rest) > 255 {
		// Let the package say what is wrong with the name.
		if _, err := shm.Exists(name); err != nil {
			return nil, err
		}
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	e, sys, err := lstatEntry(rest)
	if err != nil {
		return nil, err
	}
	if e.Type == "segment" {
		e.inspectFile(sys)
		findUsers(map[devIno]*entry{{sys.dev, sys.ino}: e})
		e.setProcesses()
	}
	return e, nil
}

// presenceBase is where the shm package's presence locks begin: every
// writable mapping it makes holds an OFD write lock on one byte at
// presenceBase + token<<16 + n (token < 2^46, n < 2^16), so the whole range
// from here to the end of the offset space is theirs.
const presenceBase = 1 << 62

// inspectFile sets e.Locked (or e.LockError when it cannot tell) and e's
// kind, through one read-only descriptor of its file.
func (e *entry) inspectFile(sys entrySys) {
	fd, err := openSame(e.Name, sys)
	if err != nil {
		e.LockError = err.Error()
		e.setKind(nil, err)
		return
	}
	defer unix.Close(fd)
	if held, err := lockHeld(fd, e.Name); err != nil {
		e.LockError = err.Error()
	} else {
		e.Locked = &held
	}
	e.setKind(readHead(fd, e.Name))
}

// readHead reads the first headSize bytes of the file (fewer if it is
// smaller) with pread.
func readHead(fd int, name string) ([]byte, error) {
	head := make([]byte, headSize)
	n := 0
	for n < len(head) {
		var m int
		err := ignoringEINTR(func() (err error) {
			m, err = unix.Pread(fd, head[n:], int64(n))
			return err
		})
		if err != nil {
			return nil, &fs.PathError{Op: "pread", Path: "/" + name, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	return head[:n], nil
}

// presenceLocked reports whether any process holds a write lock at or past
// presenceBase on the file /dev/shm/name, which must still be the file
// identified by sys.
func presenceLocked(name string, sys entrySys) (bool, error) {
	fd, err := openSame(name, sys)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	return lockHeld(fd, name)
}

// openSame opens /dev/shm/name read-only, without following a symlink and
// without blocking on a FIFO planted meanwhile, and checks that it is still
// the file identified by sys.
func openSame(name string, sys entrySys) (int, error) {
	path := shmDir + "/" + name
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		return err
	})
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: "/" + name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "fstat", Path: "/" + name, Err: err}
	}
	if uint64(st.Dev) != sys.dev || uint64(st.Ino) != sys.ino {
		unix.Close(fd)
		return -1, fmt.Errorf("/%s: the name was replaced while it was checked", name)
	}
	return fd, nil
}

// lockHeld asks F_OFD_GETLK whether a read lock over [presenceBase, end of
// the offset space) of fd's file would conflict: a write lock of any other
// open file description would, in whatever PID namespace its process is.
// An OFD lock belongs to its open file description, so opening and closing
// our own never touches anyone else's locks (fcntl(2), "Open file
// description locks").
func lockHeld(fd int, name string) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: unix.SEEK_SET, Start: presenceBase, Len: 0, Pid: 0}
	if err := ignoringEINTR(func() error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk) }); err != nil {
		return false, &fs.PathError{Op: "fcntl F_OFD_GETLK", Path: "/" + name, Err: err}
	}
	return lk.Type != unix.F_UNLCK, nil
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

var owners = map[uint32]string{}

// lstatEntry describes /dev/shm/name without following a symlink.
func lstatEntry(name string) (*entry, entrySys, error) {
	var st unix.Stat_t
	err := unix.Lstat(shmDir+"/"+name, &st)
	if err != nil {
		return nil, entrySys{}, &fs.PathError{Op: "lstat", Path: "/" + name, Err: err}
	}
	e := &entry{
		Name:    name,
		Size:    st.Size,
		Mode:    fmt.Sprintf("%04o", st.Mode&0o7777),
		UID:     int64(st.Uid),
		ModTime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		PIDs:    []int{},
	}
	e.changed = e.ModTime
	if ct := time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)); ct.After(e.changed) {
		e.changed = ct
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = "segment"
	case unix.S_IFLNK:
		e.Type = "symlink"
	case unix.S_IFDIR:
		e.Type = "directory"
	case unix.S_IFIFO:
		e.Type = "fifo"
	case unix.S_IFSOCK:
		e.Type = "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		e.Type = "device"
	default:
		e.Type = "other"
	}
	o, ok := owners[st.Uid]
	if !ok {
		if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
			o = u.Username
		}
		owners[st.Uid] = o
	}
	e.Owner = o
	return e, entrySys{dev: uint64(st.Dev), ino: uint64(st.Ino), perm: st.Mode & 0o777}, nil
}

// findUsers adds to each entry the processes that map it or hold it open,
// and returns the processes that could not be inspected.
func findUsers(want map[devIno]*entry) []procInfo {
	procs, err := os.ReadDir("/proc")
	if err != nil || len(want) == 0 {
		return nil
	}
	self := os.Getpid()
	var uninspected []procInfo
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		dir := "/proc/" + p.Name()
		if !inspect(dir, pid, want) {
			var st unix.Stat_t
			if unix.Stat(dir, &st) != nil {
				continue // it exited
			}
			comm, _ := os.ReadFile(dir + "/comm")
			uninspected = append(uninspected, procInfo{PID: pid, UID: st.Uid, Name: strings.TrimSpace(string(comm))})
		}
	}
	for _, e := range want {
		slices.Sort(e.PIDs)
		e.PIDs = slices.Compact(e.PIDs)
	}
	return uninspected
}

// inspect records which wanted segments process pid (whose /proc directory
// is dir) maps or holds open, and reports whether it could be inspected.
//
// The lists are the leader thread's, which are empty once it has exited
// (state Z) even while other threads run: the kernel keeps them in the
// address space and descriptor table, which a zombie leader no longer
// points to (fs/proc/task_mmu.c, fs/proc/fd.c). Then, if stat says there
// are other threads, the lists of one live thread are read instead: every
// thread of a process shares its address space, and, unless it called
// unshare(CLONE_FILES), its descriptor table. A process with no threads
// besides the leader and empty lists (a kernel thread, a true zombie) costs
// one read of stat.
func inspect(dir string, pid int, want map[devIno]*entry) bool {
	nMaps, okMaps := scanMaps(dir, pid, want)
	nFds, okFds := scanFds(dir, pid, want)
	if okMaps && okFds && nMaps > 0 && nFds > 0 {
		return true
	}
	if numThreads(dir) <= 1 {
		return okMaps && okFds
	}
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		return okMaps && okFds
	}
	for _, t := range tasks {
		if t.Name() == strconv.Itoa(pid) {
			continue // the leader, already read
		}
		tdir := dir + "/task/" + t.Name()
		n, ok := scanMaps(tdir, pid, want)
		if !ok {
			break // not readable: neither are the others
		}
		if n == 0 {
			continue // exited meanwhile: try another
		}
		_, okTaskFds := scanFds(tdir, pid, want)
		return okTaskFds || okFds
	}
	return okMaps && okFds
}

// numThreads returns field 20 of /proc/PID/stat, num_threads, or 0 if it
// cannot be read. The fields are counted after the last ')', since the
// command name (field 2) may hold spaces and parentheses (proc(5)).
func numThreads(dir string) int {
	data, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3, state
	if len(f) < 18 {
		return 0
	}
	n, _ := strconv.Atoi(f[17])
	return n
}

// scanMaps reads dir/maps: "address perms offset dev inode path", with dev
// as hex "major:minor". It returns the number of lines read, and false if
// the file could not be read for a reason other than the process having
// exited.
func scanMaps(dir string, pid int, want map[devIno]*entry) (int, bool) {
	data, err := os.ReadFile(dir + "/maps")
	if err != nil {
		return 0, gone(err)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines++
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[4] == "0" {
			continue
		}
		majS, minS, ok := strings.Cut(f[3], ":")
		if !ok {
			continue
		}
		maj, err1 := strconv.ParseUint(majS, 16, 32)
		mnr, err2 := strconv.ParseUint(minS, 16, 32)
		ino, err3 := strconv.ParseUint(f[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if e := want[devIno{unix.Mkdev(uint32(maj), uint32(mnr)), ino}]; e != nil {
			e.PIDs = append(e.PIDs, pid)
		}
	}
	return lines, true
}

// scanFds stats each descriptor in dir/fd that names a file. It returns
// the number of descriptors listed, and false as scanMaps does.
func scanFds(dir string, pid int, want map[devIno]*entry) (int, bool) {
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return 0, gone(err)
	}
	for _, fd := range fds {
		path := dir + "/fd/" + fd.Name()
		link, err := os.Readlink(path)
		if err != nil || !strings.HasPrefix(link, "/") {
			continue // a socket, pipe or anon inode, or closed meanwhile
		}
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil {
			continue
		}
		if e := want[devIno{uint64(st.Dev), uint64(st.Ino)}]; e != nil {
			e.PIDs = append(e.PIDs, pid)
		}
	}
	return len(fds), true
}

// gone reports whether err says the process has exited.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// removeIfSame removes e's name if it still names the same segment and no
// presence lock has been taken on it since the scan: the /proc scan takes
// long enough for a process to have mapped it meanwhile, and the lock
// check is cheap.
func (d *segDir) removeIfSame(e *entry) error {
	var st unix.Stat_t
	if err := unix.Lstat(shmDir+"/"+e.Name, &st); err != nil {
		return err
	}
	sys := d.sys[e]
	if uint64(st.Dev) != sys.dev || uint64(st.Ino) != sys.ino {
		return errors.New("the name was replaced since it was checked")
	}
	held, err := presenceLocked(e.Name, sys)
	switch {
	case err != nil && e.Locked != nil:
		return fmt.Errorf("checking its presence lock again: %w", err)
	case held:
		return fmt.Errorf("%w: a presence lock was taken on it", errNowInUse)
	}
	return shm.Unlink(e.Name)
}

// setProcesses fills e.Processes from e.PIDs.
func (e *entry) setProcesses() {
	e.Processes = make([]process, len(e.PIDs))
	for i, p := range e.PIDs {
		e.Processes[i] = process{p, procComm(p)}
	}
}
