package ring

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// processStart returns the start time of process pid in clock ticks since
// boot (field 22 of /proc/PID/stat, proc(5)), which tells a process from a
// later one given the same PID. A missing or zombie process is
// os.ErrProcessDone.
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if os.IsNotExist(err) {
			return 0, os.ErrProcessDone
		}
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces or
	// parentheses: the fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("shm: ring: cannot parse /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("shm: ring: cannot parse /proc/%d/stat", pid)
	}
	if f[0][0] == 'Z' || f[0][0] == 'X' {
		return 0, os.ErrProcessDone
	}
	return strconv.ParseUint(string(f[19]), 10, 64)
}
