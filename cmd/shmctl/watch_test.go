//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mindmeld-go/shm/internal/childtest"
	"github.com/mindmeld-go/shm/ring"
)

func init() { children["ringpace"] = childRingPace }

// paceRate is the messages per second childRingPace sends, of 100 bytes
// (112 bytes of ring each, header and padding included).
const paceRate, paceRecord = 2000, 112

// childRingPace: NAME. It creates a ring, prints "ready", and sends 100-byte
// messages at paceRate per second, paced by a clock, while a consumer
// goroutine drains them, until killed.
func childRingPace(args []string) int {
	r, err := ring.Create(args[0], 1<<20, nil)
	if err != nil {
		return childtest.Fail("ring: %v", err)
	}
	p, err := r.Producer()
	if err != nil {
		return childtest.Fail("producer: %v", err)
	}
	c, err := r.Consumer()
	if err != nil {
		return childtest.Fail("consumer: %v", err)
	}
	go func() {
		buf := make([]byte, 256)
		for {
			if _, err := c.Receive(buf); err != nil {
				childtest.Fail("receive: %v", err)
				os.Exit(1)
			}
		}
	}()
	fmt.Println("ready")
	msg := make([]byte, 100)
	start, sent := time.Now(), 0
	for {
		due := int(time.Since(start).Seconds() * paceRate)
		for ; sent < due; sent++ {
			if err := p.Send(msg); err != nil {
				return childtest.Fail("send: %v", err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type watchSample struct {
	Sample   int      `json:"sample"`
	InBytes  float64  `json:"in_bytes_per_sec"`
	OutBytes float64  `json:"out_bytes_per_sec"`
	InMsgs   *float64 `json:"in_msgs_per_sec"`
	OutMsgs  *float64 `json:"out_msgs_per_sec"`
}

// -watch -n 3: the byte and message rates in and out are within 20% of the
// rate a producer in another process sends at.
func TestWatchRates(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a timed test")
	}
	childtest.SkipIfEmulated(t, "rates need the producer to keep its pace")
	name := testName(t)
	startChild(t, "ringpace", name)
	time.Sleep(300 * time.Millisecond)
	out := mustShmctl(t, "ring", "-watch", "-json", "-n", "3", "-interval", "1s", name)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("-watch -n 3 printed %d lines:\n%s", len(lines), out)
	}
	want := float64(paceRate * paceRecord)
	for i, l := range lines {
		var s watchSample
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("-watch -json line %d does not parse: %v\n%s", i, err, l)
		}
		if s.Sample != i+1 {
			t.Errorf("sample %d numbered %d", i+1, s.Sample)
		}
		for what, got := range map[string]float64{"in": s.InBytes, "out": s.OutBytes} {
			if got < 0.8*want || got > 1.2*want {
				t.Errorf("sample %d: %s %.0f B/s, want %.0f ± 20%%", i+1, what, got, want)
			}
		}
		for what, got := range map[string]*float64{"in": s.InMsgs, "out": s.OutMsgs} {
			if got == nil || *got < 0.8*paceRate || *got > 1.2*paceRate {
				t.Errorf("sample %d: %s %v msgs/s, want %d ± 20%%", i+1, what, got, paceRate)
			}
		}
	}
}

// Under tmux, a terminal: -watch redraws the screen, and Ctrl-C ends it
// with exit status 0.
func TestWatchTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed")
	}
	name := testName(t)
	startChild(t, "ringpace", name)
	sock := fmt.Sprintf("shmctl-test-%d", os.Getpid())
	tm := func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tm("new-session", "-d", "-x", "120", "-y", "40", shmctlBin(t)+" ring -watch -interval 200ms "+name+"; echo EXITED $?; sleep 60")
	t.Cleanup(func() { exec.Command(tmux, "-L", sock, "kill-server").Run() })
	screen := func() string { return tm("capture-pane", "-p") }
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		var s string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if s = screen(); ok(s) {
				return s
			}
		}
		t.Fatalf("screen never showed %s:\n%s", what, s)
		return s
	}
	first := waitFor("a sample", func(s string) bool { return strings.Contains(s, "Rates over") })
	waitFor("an update", func(s string) bool { return strings.Contains(s, "Rates over") && tailLine(s) != tailLine(first) })
	tm("send-keys", "C-c")
	s := waitFor("the exit", func(s string) bool { return strings.Contains(s, "EXITED") })
	if !strings.Contains(s, "EXITED 0") {
		t.Errorf("Ctrl-C: %s", s)
	}
}

// tailLine is the "Tail T:" line of a screen, which moves as the producer
// sends.
func tailLine(screen string) string {
	sc := bufio.NewScanner(strings.NewReader(screen))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Tail T:") {
			return sc.Text()
		}
	}
	return ""
}
