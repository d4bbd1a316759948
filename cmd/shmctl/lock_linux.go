package main

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/mindmeld-go/shm"
	"golang.org/x/sys/unix"
)

// writableMappers lists the processes, other than this one, that map seg
// writable, from /proc/*/maps (a mapping of the segment's file, matched by
// inode under /dev/shm, with write permission). Processes whose maps
// cannot be read (another user's, non-dumpable ones) are not seen, nor are
// processes in other PID namespaces.
func writableMappers(seg *shm.Segment) ([]lockProc, error) {
	fi, err := seg.Stat()
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*unix.Stat_t) // Segment.Stat's Sys is fstat's *unix.Stat_t
	if !ok {
		return nil, errors.New("no inode for the segment")
	}
	ino := strconv.FormatUint(uint64(st.Ino), 10)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []lockProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if mapsWritable(pid, ino) {
			out = append(out, lockProc{pid, procComm(pid)})
		}
	}
	return out, nil
}

// mapsWritable reports whether /proc/PID/maps shows a writable shared
// mapping of the file with inode ino under /dev/shm.
func mapsWritable(pid int, ino string) bool {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// address perms offset dev inode pathname
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[4] != ino || !strings.HasPrefix(fields[1], "rw") {
			continue
		}
		// Matched by inode on /dev/shm, not by name: a segment the shm
		// package creates is made with O_TMPFILE and mapped before it is
		// linked under its name, so maps may show "/dev/shm/#123 (deleted)".
		if p := strings.Join(fields[5:], " "); strings.HasPrefix(p, "/dev/shm/") {
			return true
		}
	}
	return false
}
