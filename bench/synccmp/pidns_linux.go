package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// pidnsArgs run a command as PID 1 of a new PID namespace, with its own
// /proc, killed when unshare is (util-linux unshare(1)).
var pidnsArgs = []string{"--pid", "--fork", "--kill-child", "--mount-proc"}

var pidnsSkip = sync.OnceValue(func() string {
	out, err := exec.Command("unshare", append(pidnsArgs, "true")...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			return fmt.Sprintf("unshare %s true: %v", strings.Join(pidnsArgs, " "), err)
		}
		return fmt.Sprintf("unshare %s true: %v: %s", strings.Join(pidnsArgs, " "), err, msg)
	}
	return ""
})

// pidnsHolder returns the PID, in this namespace, of the child that
// unshare (PID parent) forked into the new PID namespace, after checking
// that it is in another PID namespace than this process.
func pidnsHolder(parent int) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		mine, err1 := os.Readlink("/proc/self/ns/pid")
		its, err2 := os.Readlink("/proc/" + e.Name() + "/ns/pid")
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("PID namespaces of %d and this process: %v, %v", pid, err1, err2)
		}
		if mine == its {
			return 0, fmt.Errorf("holder %d under unshare is in this PID namespace (%s)", pid, its)
		}
		return pid, nil
	}
	return 0, fmt.Errorf("no child of unshare (PID %d) found", parent)
}
