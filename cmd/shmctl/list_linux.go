package main

// Listing on Linux: segments are the files in /dev/shm (glibc
// posix/shm-directory.c), and the processes that use one are found in
// /proc/PID/maps (mappings) and /proc/PID/fd (open descriptors), matched by
// device and inode number, so a name that was removed and made again is
// never mistaken for the old segment.

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
		}
	}
	d.uninspected = findUsers(byKey)
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
		findUsers(map[devIno]*entry{{sys.dev, sys.ino}: e})
	}
	return e, nil
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
		okMaps := scanMaps(dir, pid, want)
		okFds := scanFds(dir, pid, want)
		if !okMaps || !okFds {
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

// scanMaps reads /proc/PID/maps: "address perms offset dev inode path",
// with dev as hex "major:minor". It returns false if the file could not be
// read for a reason other than the process having exited.
func scanMaps(dir string, pid int, want map[devIno]*entry) bool {
	data, err := os.ReadFile(dir + "/maps")
	if err != nil {
		return gone(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
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
	return true
}

// scanFds stats each descriptor of the process that names a file.
func scanFds(dir string, pid int, want map[devIno]*entry) bool {
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return gone(err)
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
	return true
}

// gone reports whether err says the process has exited.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// removeIfSame removes e's name if it still names the same segment.
func (d *segDir) removeIfSame(e *entry) error {
	var st unix.Stat_t
	if err := unix.Lstat(shmDir+"/"+e.Name, &st); err != nil {
		return err
	}
	if sys := d.sys[e]; uint64(st.Dev) != sys.dev || uint64(st.Ino) != sys.ino {
		return errors.New("the name was replaced since it was checked")
	}
	return shm.Unlink(e.Name)
}
