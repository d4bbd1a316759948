package shm

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// processStart returns the start time of process pid, in clock ticks after
// boot: field 22 (starttime) of /proc/PID/stat (proc(5)). A PID names a
// process only while that process lives; the pair (PID, start time) names
// it for ever, which is how a lock tells its dead owner from a newcomer
// that was given the same PID.
//
// It returns an error matching os.ErrProcessDone when no such process
// exists or it is a zombie or dead (state Z or X: it has exited and waits
// to be reaped). Any other error (no /proc mounted, say) means "unknown",
// and callers treat the process as alive.
func processStart(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, os.ErrProcessDone
	}
	var path [32]byte
	p := append(path[:0], "/proc/"...)
	p = strconv.AppendInt(p, int64(pid), 10)
	p = append(p, "/stat"...)
	fd, err := unix.Open(string(p), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT || err == unix.ESRCH {
		// /proc/PID is gone, or /proc itself is missing: ask the kernel.
		if kerr := unix.Kill(pid, 0); kerr == unix.ESRCH {
			return 0, os.ErrProcessDone
		}
		return 0, fmt.Errorf("shm: process %d: %w", pid, err)
	}
	if err != nil {
		return 0, fmt.Errorf("shm: process %d: %w", pid, err)
	}
	defer unix.Close(fd)
	var buf [1024]byte
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.ESRCH {
			// The process exited between open and read.
			return 0, os.ErrProcessDone
		}
		if err != nil {
			return 0, fmt.Errorf("shm: process %d: %w", pid, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return parseStat(buf[:n], pid)
}

// parseStat extracts the state and start time from the text of
// /proc/PID/stat: "pid (comm) state ppid ... starttime ...". The command
// name may hold spaces and parentheses, so fields are counted from the last
// ')'.
func parseStat(b []byte, pid int) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("shm: process %d: malformed /proc stat", pid)
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	const stateField, startField = 3, 22
	if len(fields) > 0 {
		switch string(fields[0]) {
		case "Z", "X", "x":
			return 0, os.ErrProcessDone
		}
	}
	if len(fields) <= startField-stateField {
		return 0, fmt.Errorf("shm: process %d: malformed /proc stat", pid)
	}
	start, err := strconv.ParseUint(string(fields[startField-stateField]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("shm: process %d: malformed /proc stat: %w", pid, err)
	}
	return start, nil
}
