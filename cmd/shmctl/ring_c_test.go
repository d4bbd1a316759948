//go:build linux

package main

// shmctl ring against rings fed by C processes built from the project's C
// header (c/shm.h, through c/tests/ringpeer.c): what it shows comes from
// the layout, not from the Go package.

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mindmeld-go/shm/ring"
)

var (
	cPeerOnce sync.Once
	cPeerPath string
	cPeerErr  error
)

// cRingPeer builds c/tests/ringpeer.c once; it skips the test without gcc.
func cRingPeer(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found")
	}
	cPeerOnce.Do(func() {
		cPeerPath = filepath.Join(tempBuildDir(t), "ringpeer")
		out, err := exec.Command(gcc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", cPeerPath, "../../c/tests/ringpeer.c").CombinedOutput()
		if err != nil {
			cPeerErr = err
			t.Logf("gcc: %s", out)
		}
	})
	if cPeerErr != nil {
		t.Fatalf("building ringpeer.c: %v", cPeerErr)
	}
	return cPeerPath
}

// TestRingInspectC: C producers (one holding its slot, one that sent 20
// messages and closed) on single- and multi-producer rings. shmctl ring
// shows the 20 messages in flight from the C header's counters, the
// holder's PID with its command, alive, and after SIGKILL, dead.
func TestRingInspectC(t *testing.T) {
	peer := cRingPeer(t)
	for _, slots := range []int{1, 2} {
		t.Run(map[int]string{1: "single", 2: "multi"}[slots], func(t *testing.T) {
			name := testName(t)
			r, err := ring.Create(name, 1<<16, &ring.Options{MaxMessage: 1024, Producers: slots})
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			const n = 20
			// MAXLEN 16: every message is 16 bytes, a 24-byte record.
			if out, err := exec.Command(peer, "produce", "/"+name, "0", "20", "1", "16").CombinedOutput(); err != nil {
				t.Fatalf("ringpeer produce: %v\n%s", err, out)
			}
			hold := exec.Command(peer, "hold-producer", "/"+name)
			stdout, _ := hold.StdoutPipe()
			if err := hold.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { hold.Process.Kill(); hold.Wait() })
			if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
				t.Fatalf("ringpeer hold-producer: %q, %v", line, err)
			}
			st := ringState(t, name)
			if st.Tail-st.Head != n*24 || st.Records.Data != n {
				t.Errorf("ring -json: %+v; want %d bytes and %d records in flight", st, n*24, n)
			}
			// c/shm.h keeps the message counters (72, or the slot's +32)
			// and counts on from what it finds: the holder that took the
			// freed slot of a multi-producer ring kept its count.
			if st.InFlight == nil || *st.InFlight != n || st.Committed != n {
				t.Errorf("ring -json: in flight %v, committed %d; want %d", st.InFlight, st.Committed, n)
			}
			var found bool
			for _, p := range st.Producers {
				if p.PID == hold.Process.Pid && p.Alive && p.Command == "ringpeer" {
					found = true
				}
			}
			if !found {
				t.Errorf("the C holder, PID %d, not shown alive with its command: %+v", hold.Process.Pid, st.Producers)
			}
			killWait(hold)
			text := mustShmctl(t, "ring", name)
			if !strings.Contains(text, "dead") {
				t.Errorf("the killed C producer is not shown dead:\n%s", text)
			}
		})
	}
}
