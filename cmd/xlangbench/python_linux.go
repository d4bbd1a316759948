//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// pyBench runs python/bench/pybench.py once per batch.
type pyBench struct {
	python, script, peer string
	rows                 []*Row
}

// pyFields maps pybench.py's JSON keys to rows.
var pyFields = []struct{ key, json, name, unit string }{
	{"py-ring", "ring", "shm.Ring, Python → Python (64 B, send/receive)", "msgs/s"},
	{"py-queue", "queue", "multiprocessing.Queue, Python → Python (64 B)", "msgs/s"},
	{"py-pipe", "pipe", "multiprocessing.Pipe, Python → Python (64 B)", "msgs/s"},
	{"py-1mib-ring", "ring_1mib_fill", "shm.Ring, Python → Go, 1 MiB filled in the claim", "MiB/s"},
	{"py-1mib-sock", "sock_1mib_fill", "Unix socket, Python → Go, 1 MiB filled, sendall", "MiB/s"},
	{"py-1mib-ring-copy", "ring_1mib_copy", "shm.Ring, Python → Go, 1 MiB copied into the claim", "MiB/s"},
	{"py-1mib-sock-copy", "sock_1mib_copy", "Unix socket, Python → Go, 1 MiB prebuilt, sendall", "MiB/s"},
}

// newPyBench checks that the python imports shm and numpy and builds the
// Go peer, internal/ringpeer, into dir.
func newPyBench(ctx context.Context, repo, dir string) (*pyBench, error) {
	py := &pyBench{python: *python, script: filepath.Join(repo, "python", "bench", "pybench.py"), peer: filepath.Join(dir, "ringpeer")}
	if out, err := exec.CommandContext(ctx, py.python, "-c", "import shm, numpy").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("-python %s cannot import shm and numpy (pip install ./python into it): %v\n%s", py.python, err, out)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("-python needs the go command to build internal/ringpeer: %w", err)
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", py.peer, "./internal/ringpeer")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./internal/ringpeer: %v\n%s", err, out)
	}
	for _, f := range pyFields {
		py.rows = append(py.rows, &Row{Key: f.key, Name: f.name, Unit: f.unit})
	}
	return py, nil
}

// batch runs pybench.py once and adds its figures to the rows.
func (py *pyBench) batch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, timeout(3**pyN)+timeout(2**pyN1MiB*100))
	defer cancel()
	cmd := exec.CommandContext(ctx, py.python, py.script, "--json", "--go-peer", py.peer, strconv.Itoa(*pyN), strconv.Itoa(*pyN1MiB))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("pybench.py printed %q: %w", out, err)
	}
	for i, f := range pyFields {
		x, ok := res[f.json].(float64)
		if !ok || x <= 0 {
			return fmt.Errorf("pybench.py: %s is %v, want a rate", f.json, res[f.json])
		}
		py.rows[i].add(x)
	}
	if stderr.Len() > 0 {
		os.Stderr.Write(stderr.Bytes())
	}
	return nil
}
