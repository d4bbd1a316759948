package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/mindmeld-go/shm"
)

// takeover measures the time from SIGKILL of a process holding the lock to
// the moment a waiter already blocked in LockContext has it. With ns the
// holder runs in a new PID namespace, where it is PID 1, under
// unshare(1); otherwise it is a plain child. Before the kill, the waiter
// has been blocked for 30ms and must still be: a live owner is never taken
// for dead.
func takeover(ns bool) (_ time.Duration, err error) {
	s, err := shm.CreateTemp("synccmp-", 4096)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	defer s.Unlink()
	h, err := shm.View[header](s, 0)
	if err != nil {
		return 0, err
	}
	cmd, err := holder(s.Name(), ns)
	if err != nil {
		return 0, err
	}
	defer func() {
		cmd.Process.Kill() // unshare --kill-child takes its child along
		cmd.Wait()
		if b, ok := cmd.Stderr.(*bytes.Buffer); ok && err != nil && b.Len() > 0 {
			err = fmt.Errorf("%w\nunshare's stderr:\n%s", err, b)
		}
	}()
	if err := awaitReady(h); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	if ns {
		if pid, err = pidnsHolder(cmd.Process.Pid); err != nil {
			return 0, err
		}
		if p := h.pid.Load(); p != 1 {
			return 0, fmt.Errorf("holder under unshare --pid sees itself as PID %d, want 1", p)
		}
	}
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res <- h.mu.LockContext(ctx)
	}()
	time.Sleep(30 * time.Millisecond) // the waiter is asleep
	select {
	case err := <-res:
		return 0, fmt.Errorf("LockContext returned %v while the owner (PID %d) lived, want it to wait", err, pid)
	default:
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := p.Signal(os.Kill); err != nil {
		return 0, fmt.Errorf("SIGKILL of holder %d: %v", pid, err)
	}
	err = <-res
	d := time.Since(t0)
	if !errors.Is(err, shm.ErrOwnerDead) {
		return 0, fmt.Errorf("LockContext after SIGKILL = %v, want ErrOwnerDead", err)
	}
	h.mu.Unlock()
	return d, nil
}

// holder starts a process (this program re-executed, under unshare(1) if
// ns) that locks the Mutex in segment name and holds it until killed.
func holder(name string, ns bool) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if ns {
		cmd = exec.Command("unshare", append(pidnsArgs, exe, "child-hold", name, "0")...)
	} else {
		cmd = exec.Command(exe, "child-hold", name, "0")
	}
	cmd.Stderr = os.Stderr
	if ns {
		// util-linux 2.38's unshare, its child killed by SIGKILL, says
		// "sigprocmask unblock failed: Invalid argument" as it tries to
		// re-raise the signal: kept, and shown only if the trial fails.
		cmd.Stderr = new(bytes.Buffer)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// awaitReady waits, up to 10s, for the holder to say it holds the lock.
func awaitReady(h *header) error {
	for t0 := time.Now(); h.ready.Load() == 0; {
		if time.Since(t0) > 10*time.Second {
			return errors.New("the holder did not take the lock within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}
