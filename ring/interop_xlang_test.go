package ring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
)

// Cross-language conformance of the ring (SPEC.md §9, issue 9 item 4): the
// three ring peers, internal/ringpeer (Go, built with go build),
// c/tests/ringpeer.c (C, gcc with ASan and UBSan) and python/tests/ringpeer.py
// (Python, SHM_PYTHON), share one command line and one message function
// (pyMessage), so every test here runs peers as processes and this process
// only creates the ring, plants hostile bytes and judges the output. C rows
// skip without gcc, Python rows without SHM_PYTHON, Go rows without go.

// A lang is one of the three peers: "go", "c" or "py".
type lang string

var goPeerBuild peerBuild

// goRingPeer builds internal/ringpeer, once per test binary.
func goRingPeer(t *testing.T) string {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	return goPeerBuild.get(t, func(exe string) error {
		out, err := exec.Command(gotool, "build", "-o", exe, "github.com/mindmeld-go/shm/internal/ringpeer").CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build ./internal/ringpeer: %v\n%s", err, out)
		}
		return nil
	})
}

// peerArgv returns the command line that starts the peer of language l.
func peerArgv(t *testing.T, l lang) []string {
	t.Helper()
	switch l {
	case "go":
		return []string{goRingPeer(t)}
	case "c":
		return []string{cRingPeer(t)}
	case "py":
		python, script := pythonPeer(t)
		return []string{python, script}
	case specLang:
		return []string{specRingPeer(t)}
	}
	t.Fatalf("no peer %q", l)
	return nil
}

// A peerProc is a running peer with its outputs.
type peerProc struct {
	cmd      *exec.Cmd
	desc     string
	out, err *childtest.Buffer
}

// startPeer starts the peer of language l with args after its argv; the
// process is killed when the test ends, or after limit.
func startPeer(t *testing.T, l lang, limit time.Duration, args ...string) *peerProc {
	t.Helper()
	argv := peerArgv(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:len(argv):len(argv)], args...)...)
	p := &peerProc{cmd: cmd, desc: fmt.Sprintf("%s peer %s", l, strings.Join(args, " ")), out: new(childtest.Buffer), err: new(childtest.Buffer)}
	cmd.Stdout, cmd.Stderr = p.out, p.err
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", p.desc, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		cancel()
	})
	return p
}

// wait waits for the peer to exit and returns its status error.
func (p *peerProc) wait() error { return p.cmd.Wait() }

// mustSucceed waits for the peer and fails the test unless it exited 0
// with stdout want (trimmed; "" accepts any).
func (p *peerProc) mustSucceed(t *testing.T, want string) {
	t.Helper()
	err := p.wait()
	got := strings.TrimSpace(p.out.String())
	if err != nil || (want != "" && got != want) || sanitizerReport(p.err.String()) {
		t.Fatalf("%s: %v, stdout %q, want %q; stderr:\n%s", p.desc, err, got, want, p.err.String())
	}
}

// kill SIGKILLs the peer and reaps it.
func (p *peerProc) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// waitLine waits (up to limit) until the peer's stdout holds line.
func (p *peerProc) waitLine(t *testing.T, line string, limit time.Duration) {
	t.Helper()
	end := time.Now().Add(limit)
	for !strings.Contains("\n"+p.out.String(), "\n"+line+"\n") {
		if time.Now().After(end) {
			t.Fatalf("%s: no line %q after %v; stdout %q, stderr:\n%s", p.desc, line, limit, p.out.String(), p.err.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sanitizerReport reports whether a C peer's stderr holds an ASan or UBSan
// report.
func sanitizerReport(stderr string) bool {
	return strings.Contains(stderr, "AddressSanitizer") || strings.Contains(stderr, "runtime error:") ||
		strings.Contains(stderr, "LeakSanitizer") || strings.Contains(stderr, "UndefinedBehaviorSanitizer")
}

// xlangCount is the number of messages of a counting row: 1,000,000, or
// a tenth under -short or emulation.
func xlangCount() int {
	if testing.Short() || childtest.Emulated() {
		return 100000
	}
	return 1000000
}

// TestXRingPairs: every pair of languages, both directions, on a single-
// producer ring (one producer, copy and in place alternating) and on a
// multi-producer one (two producers of the same language, one copying,
// one claiming in place); the consumer checks every message's producer,
// sequence and content, reads alternately by copy and in place, and must
// print "ok N". Then producers in all three languages feed one consumer of
// each language.
func TestXRingPairs(t *testing.T) {
	count := xlangCount()
	type row struct {
		prods []lang
		cons  lang
		multi bool
	}
	var rows []row
	langs := []lang{"go", "c", "py"}
	for _, multi := range []bool{false, true} {
		for _, p := range langs {
			for _, c := range langs {
				if multi {
					rows = append(rows, row{[]lang{p, p}, c, true})
				} else {
					rows = append(rows, row{[]lang{p}, c, false})
				}
			}
		}
	}
	for _, c := range langs {
		rows = append(rows, row{langs, c, true})
	}
	for _, r := range rows {
		kind := "single"
		if r.multi {
			kind = "multi"
		}
		var ps []string
		for _, p := range r.prods {
			ps = append(ps, string(p))
		}
		t.Run(fmt.Sprintf("%s-%s-%s", strings.Join(ps, "+"), r.cons, kind), func(t *testing.T) {
			for _, l := range append(r.prods, r.cons) {
				peerArgv(t, l) // skips early
			}
			name := testName(t)
			slots := 1
			if r.multi {
				slots = 4
			}
			rg, err := Create(name, 1<<16, &Options{MaxMessage: 1024, Producers: slots})
			if err != nil {
				t.Fatal(err)
			}
			defer rg.Close()
			per := count / len(r.prods)
			start := time.Now()
			limit := 10 * time.Minute
			cons := startPeer(t, r.cons, limit, "consume", name, strconv.Itoa(len(r.prods)), strconv.Itoa(per), "11", "1024", "mixed")
			var prods []*peerProc
			for id, l := range r.prods {
				mode := "mixed"
				if r.multi {
					mode = []string{"copy", "zerocopy", "mixed"}[id]
				}
				prods = append(prods, startPeer(t, l, limit, "produce", name, strconv.Itoa(id), strconv.Itoa(per), "11", "1024", mode))
			}
			for _, p := range prods {
				p.mustSucceed(t, "")
			}
			cons.mustSucceed(t, "ok "+strconv.Itoa(per*len(r.prods)))
			t.Logf("%d messages in %v (provisional: shared machine)", per*len(r.prods), time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestXRingProducerKilled: a producer paused after 50 messages is
// SIGKILLed, for every (producer, consumer) pair of languages on both
// kinds of ring. Once with the consumer attached and drained ("live"), once
// with the consumer attaching after the death ("after"), when the 50
// messages are still in the ring: either way the consumer delivers all 50,
// then reports the death (RING-30), then the end of the stream.
func TestXRingProducerKilled(t *testing.T) {
	langs := []lang{"go", "c", "py"}
	const k = 50
	for _, multi := range []bool{false, true} {
		for _, pl := range langs {
			for _, cl := range langs {
				for _, when := range []string{"live", "after"} {
					kind := map[bool]string{false: "single", true: "multi"}[multi]
					t.Run(fmt.Sprintf("%s-%s-%s-%s", pl, cl, kind, when), func(t *testing.T) {
						peerArgv(t, pl)
						peerArgv(t, cl)
						name := testName(t)
						slots := 1
						if multi {
							slots = 2
						}
						rg, err := Create(name, 1<<16, &Options{MaxMessage: 1024, Producers: slots})
						if err != nil {
							t.Fatal(err)
						}
						defer rg.Close()
						consume := []string{"consume", name, "1", "1000", "13", "1024", "mixed"}
						var cons *peerProc
						if when == "live" {
							cons = startPeer(t, cl, time.Minute, consume...)
						}
						prod := startPeer(t, pl, time.Minute, "produce", name, "0", "1000", "13", "1024", "mixed", "pause-after", strconv.Itoa(k))
						prod.waitLine(t, "paused "+strconv.Itoa(k), 30*time.Second)
						if cons != nil {
							time.Sleep(50 * time.Millisecond) // not needed for the result: lets the consumer drain and block first
						}
						prod.kill()
						if cons == nil {
							cons = startPeer(t, cl, time.Minute, consume...)
						}
						cons.mustSucceed(t, fmt.Sprintf("peer-dead %d\nended %d", k, k))
					})
				}
			}
		}
	}
}

// TestXRingProducerTakeover: on a two-slot multi-producer ring, one
// producer holds a slot (and sends nothing) and another,
// paused after 50 messages, is SIGKILLed; at once a producer in any
// language attaches and sends 200 messages, taking the dead one's slot
// over (RING-11) unless the consumer has reaped it first (RING-27). The
// consumer, of any language, learns of the death either way, from the
// slot or from the takeovers counter (RING-9, RING-30), and reports it
// exactly once, after the dead producer's 50 messages; the holder, killed
// at the end, is the second report, after all 250; then the stream ends.
func TestXRingProducerTakeover(t *testing.T) {
	langs := []lang{"go", "c", "py"}
	const k, m = 50, 200
	report := regexp.MustCompile(`^peer-dead (\d+)\npeer-dead (\d+)\nended 50 200$`)
	for _, dl := range langs {
		for _, nl := range langs {
			for _, cl := range langs {
				t.Run(fmt.Sprintf("%s-then-%s-to-%s", dl, nl, cl), func(t *testing.T) {
					peerArgv(t, dl)
					peerArgv(t, nl)
					peerArgv(t, cl)
					name := testName(t)
					rg, err := Create(name, 1<<16, &Options{MaxMessage: 1024, Producers: 2})
					if err != nil {
						t.Fatal(err)
					}
					defer rg.Close()
					// The holder keeps the consumer from taking the dead
					// producer's reaped slot for the end of the stream.
					holder := startPeer(t, cl, time.Minute, "hold-producer", name)
					holder.waitLine(t, "ready", 30*time.Second)
					cons := startPeer(t, cl, time.Minute, "consume", name, "2", strconv.Itoa(m), "13", "1024", "mixed")
					// Attached before the takeover: one attaching after it
					// takes it into its baseline (RING-9 step 3).
					waitStats(t, rg, cons.desc+" did not attach", func(s Stats) bool { return s.Consumer })
					dead := startPeer(t, dl, time.Minute, "produce", name, "0", strconv.Itoa(m), "13", "1024", "mixed", "pause-after", strconv.Itoa(k))
					dead.waitLine(t, "paused "+strconv.Itoa(k), 30*time.Second)
					dead.kill()
					startPeer(t, nl, time.Minute, "produce", name, "1", strconv.Itoa(m), "13", "1024", "mixed").mustSucceed(t, "")
					st, err := rg.Stats()
					if err != nil {
						t.Fatal(err)
					}
					holder.kill()
					cons.mustSucceed(t, "")
					out := strings.TrimSpace(cons.out.String())
					g := report.FindStringSubmatch(out)
					if g == nil {
						t.Fatalf("%s printed %q; want two peer-dead reports, then ended 50 200 (before the holder's death: reaped %d, producer takeovers %d)", cons.desc, out, st.DeadProducersReaped, st.ProducerTakeovers)
					}
					if n, _ := strconv.Atoi(g[1]); n < k || n > k+m {
						t.Errorf("%s reported the first death after %d messages; want from %d to %d", cons.desc, n, k, k+m)
					}
					if n, _ := strconv.Atoi(g[2]); n != k+m {
						t.Errorf("%s reported the holder's death after %d messages; want %d", cons.desc, n, k+m)
					}
					t.Logf("%q; before the holder's death: reaped %d, producer takeovers %d", out, st.DeadProducersReaped, st.ProducerTakeovers)
				})
			}
		}
	}
}

// TestXRingConsumerTakeover: a consumer paused after 400 released messages
// is SIGKILLed; a consumer in another (or the same) language attaches,
// taking over the dead end (RING-9), and gets messages 400 to 1399, every
// one, for every pair of languages on both kinds of ring. The Go producer
// has finished by then (the ring holds the rest), so it never sees the
// dead consumer (RING-31).
func TestXRingConsumerTakeover(t *testing.T) {
	langs := []lang{"go", "c", "py"}
	const n, k = 1400, 400
	for _, multi := range []bool{false, true} {
		for _, vl := range langs {
			for _, sl := range langs {
				kind := map[bool]string{false: "single", true: "multi"}[multi]
				t.Run(fmt.Sprintf("%s-then-%s-%s", vl, sl, kind), func(t *testing.T) {
					peerArgv(t, vl)
					peerArgv(t, sl)
					name := testName(t)
					slots := 1
					if multi {
						slots = 2
					}
					rg, err := Create(name, 1<<20, &Options{MaxMessage: 1024, Producers: slots})
					if err != nil {
						t.Fatal(err)
					}
					defer rg.Close()
					victim := startPeer(t, vl, time.Minute, "consume", name, "1", strconv.Itoa(n), "17", "1024", "mixed", "pause-after", strconv.Itoa(k))
					prod := startPeer(t, "go", time.Minute, "produce", name, "0", strconv.Itoa(n), "17", "1024", "mixed")
					victim.waitLine(t, "paused "+strconv.Itoa(k), 30*time.Second)
					prod.mustSucceed(t, "")
					victim.kill()
					next := startPeer(t, sl, time.Minute, "consume", name, "1", strconv.Itoa(n), "17", "1024", "mixed", "from", strconv.Itoa(k))
					next.mustSucceed(t, "ok "+strconv.Itoa(n-k))
				})
			}
		}
	}
}

// hostileReader runs `check NAME` in the peer of language l and requires
// a refusal: exit status 1, a message naming the error (want[l]) and, for
// C, no sanitizer report.
func hostileReader(t *testing.T, l lang, name string, want map[lang]string, what string) {
	t.Helper()
	p := startPeer(t, l, 30*time.Second, "check", name)
	err := p.wait()
	stderr := p.err.String()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr, want[l]) || sanitizerReport(stderr) {
		t.Errorf("%s: %s reader: %v, stdout %q, stderr %q; want exit status 1 naming %q", what, l, err, p.out.String(), stderr, want[l])
	}
}

var (
	notRingWords = map[lang]string{"go": ErrNotRing.Error(), "c": "(SHM_ENOTRING", "py": "OSError EPROTO"}
	corruptWords = map[lang]string{"go": ErrCorrupt.Error(), "c": "(SHM_ECORRUPT", "py": "CorruptError EBADMSG"}
)

// TestXRingHostileHeader: this process changes one field of a ring's header
// at a time (the RING-7 list of TestSpecOpen) and each language's reader
// must refuse it with the right error and no crash; then a segment smaller
// than a ring header.
func TestXRingHostileHeader(t *testing.T) {
	name := testName(t)
	r, err := Create(name, 4096, &Options{MaxMessage: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	v := newView(t, r)
	cases := []struct {
		check, field string
		value        uint64
		notRing      bool
	}{
		{"2 magic", "magic", Magic + 1, true},
		{"2 magic", "magic", 0, true}, // after 200 ms of zero
		{"3 version", "version", Version + 1, true},
		{"3 version", "version", 1, true},
		{"4 capacity", "capacity", 4095, false},
		{"4 capacity", "capacity", 32, false},
		{"4 capacity", "capacity", 1 << 31, false},
		{"5 max message", "max_message", 0, false},
		{"5 max message", "max_message", 4096 - 7, false},
		{"6 slots", "slots", 0, false},
		{"6 slots", "slots", 2, false},
		{"6 slots", "flags", flagMultiProducer, false},
		{"7 flags", "flags", 2, false},
		{"7 flags", "flags", 1 << 31, false},
		{"8 data offset", "data_offset", slotsOffset + slotSize + 8, false},
		{"8 data offset", "data_offset", 0, false},
		{"9 segment size", "capacity", 8192, false},
	}
	for _, l := range []lang{"go", "c", "py"} {
		t.Run(string(l), func(t *testing.T) {
			peerArgv(t, l)
			for _, c := range cases {
				f := v.field(c.field)
				old := v.word(f.off, f.size)
				v.put(f.off, f.size, c.value)
				want := corruptWords
				if c.notRing {
					want = notRingWords
				}
				hostileReader(t, l, name, want, fmt.Sprintf("check %s: %s = %#x", c.check, c.field, c.value))
				v.put(f.off, f.size, old)
			}
			p := startPeer(t, l, 30*time.Second, "check", name)
			p.mustSucceed(t, "empty")

			small := testName(t)
			seg, err := shm.Create(small, slotsOffset-8)
			if err != nil {
				t.Fatal(err)
			}
			defer seg.Close()
			hostileReader(t, l, small, notRingWords, fmt.Sprintf("check 1: a segment of %d bytes", slotsOffset-8))
		})
	}
}

// TestXRingHostileRecord: each language's peer writes a bad record into a
// single-producer ring through raw memory and publishes it by moving T
// (`garbage NAME KIND`): longer than the ring's maximum message, past T,
// shorter than a record header, of an unknown type, of a negative length.
// A Go consumer in this process gets ErrCorrupt, then each language's
// reader refuses it naming the error, without crashing. Last, this process
// plants a claimed (negative) record no slot announces on a multi-producer
// ring, which every reader must call corrupt (RING-28).
func TestXRingHostileRecord(t *testing.T) {
	langs := []lang{"go", "c", "py"}
	for _, wl := range langs {
		for _, kind := range []string{"long", "past", "short", "type", "negative"} {
			t.Run(string(wl)+"-"+kind, func(t *testing.T) {
				peerArgv(t, wl)
				name := testName(t)
				r, err := Create(name, 4096, &Options{MaxMessage: 256})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				startPeer(t, wl, 30*time.Second, "garbage", name, kind).mustSucceed(t, "ok")
				goReaderCorrupt(t, r, wl+" "+lang(kind))
				for _, rl := range langs {
					if rl == "py" && os.Getenv("SHM_PYTHON") == "" || rl == "c" && !haveGCC() {
						continue
					}
					hostileReader(t, rl, name, corruptWords, string(wl)+" garbage "+kind)
				}
			})
		}
	}
	t.Run("multi-negative", func(t *testing.T) {
		name := testName(t)
		r, err := Create(name, 4096, &Options{MaxMessage: 256, Producers: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		v := newView(t, r)
		v.put(v.doff, 8, uint64(uint32(0xfffffff0))|1<<32) // hdr(-16, 1)
		v.put(v.field("tail").off, 8, 16)
		for _, rl := range []lang{"c", "py", "go"} {
			t.Run(string(rl), func(t *testing.T) {
				peerArgv(t, rl)
				hostileReader(t, rl, name, corruptWords, "multi-producer negative record")
			})
		}
	})
}

// goReaderCorrupt attaches a consumer in this process to r and requires
// ErrCorrupt from a read, within two seconds.
func goReaderCorrupt(t *testing.T, r *Ring, what lang) {
	t.Helper()
	c, err := r.Consumer()
	if err != nil {
		t.Fatalf("%s: Consumer: %v", what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.ReadContext(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("%s: Go ReadContext: %v, want ErrCorrupt", what, err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("%s: Close: %v", what, err)
	}
}

func haveGCC() bool {
	_, err := exec.LookPath("gcc")
	return err == nil
}

// TestXRingFirstProducerWindow: a ring whose first producer has stored
// producers_ever (RING-11 step 1) but not yet taken a slot (step 2) is not
// at its end (RING-32): every reader, in every language, finds it empty
// for a second rather than ending the stream before its first message.
func TestXRingFirstProducerWindow(t *testing.T) {
	for _, l := range []lang{"go", "c", "py", specLang} {
		for _, multi := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s-%s", l, kindName(multi)), func(t *testing.T) {
				peerArgv(t, l)
				slots := 1
				if multi {
					slots = 2
				}
				rg, err := Create(testName(t), 1<<16, &Options{MaxMessage: 1024, Producers: slots})
				if err != nil {
					t.Fatal(err)
				}
				defer rg.Close()
				rg.h.ProducersEver.Store(1)
				startPeer(t, l, time.Minute, "check", rg.Name()).mustSucceed(t, "empty")
			})
		}
	}
}
