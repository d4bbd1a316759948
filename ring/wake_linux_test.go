package ring

// Lost wake-ups across processes and languages (SPEC.md RING-23 to
// RING-25). Since layout version 3 a registered waker publishes the tail or
// the head with a plain store and looks at the waiting word with no fence
// between; the sleeper's membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) stands
// in for that fence. If either half were wrong, a sleeper would miss the
// store that should wake it and sleep until its timeout (up to a second).
//
// Each row is a ping-pong between two processes over two rings, paced so
// that the side under test is asleep in the kernel when the other side
// publishes, and where nothing else would wake it: a lost wake-up shows as
// a round of hundreds of milliseconds. "consumer" rows: A sends on ring 1
// after a pause, B (asleep in a read) receives and answers on ring 2.
// "producer" rows: B has filled ring 1 and sleeps in a send; A, after a
// pause, releases one message, and B, woken, acknowledges on ring 2. A
// and B are Go (this test binary re-executed) or C (c/shm.h).

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mindmeld-go/shm/internal/childtest"
)

const (
	wakeRounds = 40
	wakeGapMS  = 10
	// wakeBound is far above a wake-up's cost (tens of microseconds, a few
	// milliseconds on a loaded machine) and far below a lost one's.
	wakeBound = 250 * time.Millisecond
)

func init() {
	children["wake"] = childWake
}

func monoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// childWake runs one side of a row: wake ROLE NAME1 NAME2 N GAPMS, with
// ROLE pinger, echoer, releaser or filler, as the C peer does.
func childWake(args []string) int {
	if len(args) != 5 {
		return childFail("usage: wake ROLE NAME1 NAME2 N GAPMS")
	}
	n, _ := strconv.Atoi(args[3])
	gapMS, _ := strconv.Atoi(args[4])
	gap := time.Duration(gapMS) * time.Millisecond
	r1, err := Open(args[1], nil)
	if err != nil {
		return childFail("%v", err)
	}
	defer r1.Close()
	r2, err := Open(args[2], nil)
	if err != nil {
		return childFail("%v", err)
	}
	defer r2.Close()
	msg := make([]byte, 8)
	buf := make([]byte, 8)
	var worst time.Duration
	switch args[0] {
	case "pinger", "releaser":
		c2, err := r2.Consumer()
		if err != nil {
			return childFail("%v", err)
		}
		var p1 *Producer
		var c1 *Consumer
		if args[0] == "pinger" {
			p1, err = r1.Producer()
		} else {
			c1, err = r1.Consumer()
		}
		if err != nil {
			return childFail("%v", err)
		}
		for range n {
			time.Sleep(gap)
			t0 := monoNow()
			if p1 != nil {
				binary.LittleEndian.PutUint64(msg, uint64(t0))
				err = p1.Send(msg)
			} else {
				if _, err = c1.Read(); err == nil {
					err = c1.Release()
				}
			}
			if err != nil {
				return childFail("round: %v", err)
			}
			if _, err := c2.Receive(buf); err != nil {
				return childFail("answer: %v", err)
			}
			worst = max(worst, time.Duration(monoNow()-t0))
		}
		fmt.Printf("ok %d\n", worst.Nanoseconds())
	case "echoer", "filler":
		p2, err := r2.Producer()
		if err != nil {
			return childFail("%v", err)
		}
		var p1 *Producer
		var c1 *Consumer
		if args[0] == "filler" {
			if p1, err = r1.Producer(); err != nil {
				return childFail("%v", err)
			}
			for {
				if err := p1.TrySend(msg); errors.Is(err, ErrFull) {
					break
				} else if err != nil {
					return childFail("fill: %v", err)
				}
			}
		} else if c1, err = r1.Consumer(); err != nil {
			return childFail("%v", err)
		}
		fmt.Println("ready")
		for range n {
			if p1 != nil {
				err = p1.Send(msg)
			} else {
				_, err = c1.Receive(buf)
			}
			if err != nil {
				return childFail("round: %v", err)
			}
			if err := p2.Send(msg); err != nil {
				return childFail("answer: %v", err)
			}
		}
		fmt.Println("done")
	default:
		return childFail("unknown role %q", args[0])
	}
	return 0
}

// wakePeerSource is the C side of the rows, on c/shm.h.
const wakePeerSource = `#include "shm.h"
#include <stdlib.h>

static int64_t mono(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int die(const char *what, int rc) {
	fprintf(stderr, "wakepeer: %s: %d\n", what, rc);
	return 1;
}

int main(int argc, char **argv) {
	if (argc != 6) return die("usage: wakepeer ROLE NAME1 NAME2 N GAPMS", 0);
	const char *role = argv[1];
	long n = atol(argv[4]), gap = atol(argv[5]);
	shm_ring r1, r2;
	shm_ring_producer p1, p2;
	shm_ring_consumer c1, c2;
	int rc;
	if ((rc = shm_ring_open(&r1, argv[2])) < 0) return die("open 1", rc);
	if ((rc = shm_ring_open(&r2, argv[3])) < 0) return die("open 2", rc);
	uint64_t msg = 0, buf = 0;
	int64_t worst = 0;
	int pinger = !strcmp(role, "pinger"), releaser = !strcmp(role, "releaser");
	int echoer = !strcmp(role, "echoer"), filler = !strcmp(role, "filler");
	if (pinger || releaser) {
		if ((rc = shm_ring_consumer_attach(&r2, &c2, 0)) < 0) return die("attach 2", rc);
		rc = pinger ? shm_ring_producer_attach(&r1, &p1, 0) : shm_ring_consumer_attach(&r1, &c1, 0);
		if (rc < 0) return die("attach 1", rc);
		for (long i = 0; i < n; i++) {
			struct timespec ts = {gap / 1000, (gap % 1000) * 1000000L};
			nanosleep(&ts, NULL);
			int64_t t0 = mono();
			if (pinger) {
				msg = (uint64_t)t0;
				rc = shm_ring_send(&p1, &msg, 8, -1);
			} else {
				const void *m;
				size_t len;
				rc = shm_ring_read(&c1, &m, &len, -1);
				if (rc >= 0) rc = shm_ring_release(&c1);
			}
			if (rc < 0) return die("round", rc);
			int64_t got = shm_ring_receive(&c2, &buf, 8, -1);
			if (got < 0) return die("answer", (int)got);
			if (mono() - t0 > worst) worst = mono() - t0;
		}
		printf("ok %lld\n", (long long)worst);
		shm_ring_consumer_close(&c2);
		if (pinger) shm_ring_producer_close(&p1);
		else shm_ring_consumer_close(&c1);
	} else if (echoer || filler) {
		if ((rc = shm_ring_producer_attach(&r2, &p2, 0)) < 0) return die("attach 2", rc);
		if (filler) {
			if ((rc = shm_ring_producer_attach(&r1, &p1, 0)) < 0) return die("attach 1", rc);
			while ((rc = shm_ring_send(&p1, &msg, 8, 0)) == 0) {}
			if (rc != -EAGAIN) return die("fill", rc);
		} else if ((rc = shm_ring_consumer_attach(&r1, &c1, 0)) < 0) {
			return die("attach 1", rc);
		}
		printf("ready\n");
		fflush(stdout);
		for (long i = 0; i < n; i++) {
			if (filler) rc = shm_ring_send(&p1, &msg, 8, -1);
			else rc = (int)shm_ring_receive(&c1, &buf, 8, -1);
			if (rc < 0) return die("round", rc);
			if ((rc = shm_ring_send(&p2, &msg, 8, -1)) < 0) return die("answer", rc);
		}
		printf("done\n");
		shm_ring_producer_close(&p2);
		if (filler) shm_ring_producer_close(&p1);
		else shm_ring_consumer_close(&c1);
	} else {
		return die("unknown role", 0);
	}
	shm_ring_close(&r1);
	shm_ring_close(&r2);
	return 0;
}
`

var wakePeerBuild peerBuild

// wakePeer builds wakePeerSource against ../c/shm.h, once per test binary.
func wakePeer(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found")
	}
	return wakePeerBuild.get(t, func(exe string) error {
		inc, err := filepath.Abs(filepath.Join("..", "c"))
		if err != nil {
			return err
		}
		src := exe + ".c"
		if err := os.WriteFile(src, []byte(wakePeerSource), 0o600); err != nil {
			return err
		}
		args := []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-fsanitize=address,undefined", "-I", inc, "-o", exe, src, "-lrt"}
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %v: %v\n%s", args, err, out)
		}
		return nil
	})
}

// TestWakeNotLost: in every row the side under test sleeps in the kernel
// (the ring's sleep counters show it) and every round ends well within
// wakeBound.
func TestWakeNotLost(t *testing.T) {
	childtest.SkipIfEmulated(t, "rounds are timed")
	for _, sleeper := range []string{"consumer", "producer"} {
		for _, langs := range [][2]string{{"go", "go"}, {"go", "c"}, {"c", "go"}, {"c", "c"}} {
			a, b := langs[0], langs[1]
			t.Run(fmt.Sprintf("%s-sleeps/%s-wakes-%s", sleeper, a, b), func(t *testing.T) {
				roleA, roleB := "pinger", "echoer"
				if sleeper == "producer" {
					roleA, roleB = "releaser", "filler"
				}
				r1, err := Create(testName(t), 4096, &Options{MaxMessage: 64})
				if err != nil {
					t.Fatal(err)
				}
				defer r1.Close()
				r2, err := Create(testName(t), 4096, &Options{MaxMessage: 64})
				if err != nil {
					t.Fatal(err)
				}
				defer r2.Close()
				cmd := func(lang, role string) *exec.Cmd {
					args := []string{role, r1.Name(), r2.Name(), strconv.Itoa(wakeRounds), strconv.Itoa(wakeGapMS)}
					if lang == "c" {
						return exec.Command(wakePeer(t), args...)
					}
					return childtestCommand(t, "wake", args...)
				}
				cb := cmd(b, roleB)
				var outB strings.Builder
				cb.Stderr = &outB
				stdout, err := cb.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cb.Start(); err != nil {
					t.Fatal(err)
				}
				waited := false
				defer func() {
					if !waited {
						cb.Process.Kill()
						cb.Wait()
					}
				}()
				rd := bufio.NewReader(stdout)
				if line, err := rd.ReadString('\n'); err != nil || line != "ready\n" {
					t.Fatalf("%s %s: %q, %v; stderr %s", b, roleB, line, err, outB.String())
				}
				out, err := cmd(a, roleA).CombinedOutput()
				if err != nil {
					t.Fatalf("%s %s: %v\n%s", a, roleA, err, out)
				}
				rest, _ := io.ReadAll(rd)
				waited = true
				if err := cb.Wait(); err != nil || string(rest) != "done\n" {
					t.Fatalf("%s %s: %v, printed %q; stderr %s", b, roleB, err, rest, outB.String())
				}
				var worst int64
				if _, err := fmt.Sscanf(string(out), "ok %d", &worst); err != nil {
					t.Fatalf("%s %s printed %q", a, roleA, out)
				}
				st, err := r1.Stats()
				if err != nil {
					t.Fatal(err)
				}
				sleeps := st.ConsumerSleeps
				if sleeper == "producer" {
					sleeps = st.ProducerSleeps
				}
				t.Logf("worst round %v; %d %s sleeps in %d rounds", time.Duration(worst), sleeps, sleeper, wakeRounds)
				if time.Duration(worst) > wakeBound {
					t.Errorf("a round took %v (> %v): a wake-up was lost", time.Duration(worst), wakeBound)
				}
				if sleeps < wakeRounds/2 {
					t.Errorf("the %s slept %d times in %d rounds: the rows do not test sleeping", sleeper, sleeps, wakeRounds)
				}
			})
		}
	}
}
