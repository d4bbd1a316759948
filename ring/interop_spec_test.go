package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
)

// Conformance of a peer written from SPEC.md alone (issue 9 item 1):
// spec/peer/specpeer.c, built with gcc and the address and undefined-
// behaviour sanitizers, was written from SPEC.md, the command line of
// internal/ringpeer and this harness, without reading the Go package,
// c/shm.h or the Python package. It speaks the command line of the other
// peers (interop_xlang_test.go), so these tests run it as the language
// "spec" against the Go, C and Python peers and against this process.
// Rows skip without gcc; Python rows without SHM_PYTHON.

const specLang lang = "spec"

var specPeerBuild peerBuild

// specRingPeer builds spec/peer/specpeer.c, once per test binary.
func specRingPeer(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the spec peer is written for Linux (futex, OFD locks)")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found")
	}
	return specPeerBuild.get(t, func(exe string) error {
		src, err := filepath.Abs(filepath.Join("..", "spec", "peer", "specpeer.c"))
		if err != nil {
			return err
		}
		args := []string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-fsanitize=address,undefined", "-o", exe, src}
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %v: %v\n%s", args, err, out)
		}
		return nil
	})
}

func kindName(multi bool) string { return map[bool]string{false: "single", true: "multi"}[multi] }

// TestXRingSpecPairs: the spec peer against each language and itself, both
// directions, on a single-producer ring (one producer) and on a
// multi-producer one (two producers of one language, one copying, one
// claiming in place); then Go, C and spec producers together into a spec
// and into a Go consumer. Every consumer checks each message's producer,
// sequence and content and must print "ok N".
func TestXRingSpecPairs(t *testing.T) {
	count := xlangCount()
	type row struct {
		prods []lang
		cons  lang
		multi bool
	}
	var rows []row
	for _, multi := range []bool{false, true} {
		for _, pc := range [][2]lang{{"go", specLang}, {specLang, "go"}, {"c", specLang}, {specLang, "c"}, {"py", specLang}, {specLang, "py"}, {specLang, specLang}} {
			prods := []lang{pc[0]}
			if multi {
				prods = []lang{pc[0], pc[0]}
			}
			rows = append(rows, row{prods, pc[1], multi})
		}
	}
	rows = append(rows, row{[]lang{"go", "c", specLang}, specLang, true}, row{[]lang{"go", "c", specLang}, "go", true})
	for _, r := range rows {
		var ps []string
		for _, p := range r.prods {
			ps = append(ps, string(p))
		}
		t.Run(fmt.Sprintf("%s-%s-%s", strings.Join(ps, "+"), r.cons, kindName(r.multi)), func(t *testing.T) {
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

// TestXRingSpecProducerKilled: a producer paused after 50 messages is
// SIGKILLed, the spec peer on one side or both, on both kinds of ring, with
// the consumer attached and drained ("live") or attaching after the death
// ("after"): the consumer delivers all 50, then reports the death
// (RING-30), then the end of the stream (RING-32).
func TestXRingSpecProducerKilled(t *testing.T) {
	const k = 50
	pairs := [][2]lang{{specLang, "go"}, {specLang, specLang}, {"go", specLang}, {"c", specLang}, {specLang, "c"}, {"py", specLang}, {specLang, "py"}}
	for _, multi := range []bool{false, true} {
		for _, pc := range pairs {
			for _, when := range []string{"live", "after"} {
				pl, cl := pc[0], pc[1]
				t.Run(fmt.Sprintf("%s-%s-%s-%s", pl, cl, kindName(multi), when), func(t *testing.T) {
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
						time.Sleep(50 * time.Millisecond) // lets the consumer drain and block first
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

// TestXRingSpecKilledMidStream: a producer that never pauses is SIGKILLed
// mid-stream. A spec producer under a Go consumer in this process: the
// consumer gets every message in order, then ErrPeerDead, then io.EOF. A Go
// or C producer under a spec consumer: the consumer checks every message,
// prints "peer-dead N" and "ended N", and N is the number of messages the
// producer committed by its statistics (RING-33), give or take the one
// message between its count and its publication.
func TestXRingSpecKilledMidStream(t *testing.T) {
	for _, multi := range []bool{false, true} {
		slots := 1
		if multi {
			slots = 2
		}
		t.Run("spec-go-"+kindName(multi), func(t *testing.T) {
			peerArgv(t, specLang)
			name := testName(t)
			r, err := Create(name, 4096, &Options{MaxMessage: 256, Producers: slots})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			prod := startPeer(t, specLang, time.Minute, "produce", name, "0", "100000000", "3", "256")
			kill := uint64(1000 + rand.Intn(2000))
			buf := make([]byte, 256)
			var want []byte
			k := uint64(0)
			for ; ; k++ {
				if k == kill {
					prod.kill()
				}
				n, err := c.Receive(buf)
				if errors.Is(err, ErrPeerDead) {
					break
				}
				if err != nil {
					t.Fatalf("after %d: %v", k, err)
				}
				want = pyMessage(want, 0, k, 3, 256)
				if string(buf[:n]) != string(want) {
					t.Fatalf("message %d differs", k)
				}
			}
			if k < kill {
				t.Fatalf("ErrPeerDead after %d messages, before the kill at %d", k, kill)
			}
			if _, err := c.Receive(buf); err == nil || !strings.Contains(err.Error(), "EOF") {
				t.Fatalf("after the death report: %v, want io.EOF", err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		})
		for _, pl := range []lang{"go", "c"} {
			t.Run(string(pl)+"-spec-"+kindName(multi), func(t *testing.T) {
				peerArgv(t, pl)
				peerArgv(t, specLang)
				name := testName(t)
				r, err := Create(name, 4096, &Options{MaxMessage: 256, Producers: slots})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				cons := startPeer(t, specLang, time.Minute, "consume", name, "1", "100000000", "3", "256")
				prod := startPeer(t, pl, time.Minute, "produce", name, "0", "100000000", "3", "256")
				// Killed once it holds its slot (under emulation a Go peer
				// can take longer than the pause below to start): one killed
				// before it began to attach leaves a ring with no stream.
				waitStats(t, r, prod.desc+" did not attach", func(s Stats) bool { return s.Producers > 0 })
				time.Sleep(time.Duration(50+rand.Intn(100)) * time.Millisecond)
				prod.kill()
				if err := cons.wait(); err != nil || sanitizerReport(cons.err.String()) {
					t.Fatalf("%s: %v; stdout %q, stderr:\n%s", cons.desc, err, cons.out.String(), cons.err.String())
				}
				var dead, ended uint64
				if _, err := fmt.Sscanf(cons.out.String(), "peer-dead %d\nended %d\n", &dead, &ended); err != nil || dead != ended {
					t.Fatalf("%s: stdout %q, want \"peer-dead N\\nended N\"", cons.desc, cons.out.String())
				}
				v := newView(t, r)
				committed := v.word(72, 8) // stat_committed
				if multi {
					committed = v.word(384+32, 8) // slot 0's stat_committed
				}
				// RING-33: Go counts just before its publishing store (a
				// kill between them leaves one counted message that never
				// comes), c/shm.h just after (one may come uncounted).
				lo, hi := committed, committed
				if pl == "go" && committed > 0 {
					lo--
				} else if pl == "c" {
					hi++
				}
				if dead < lo || dead > hi {
					t.Fatalf("spec consumer got %d messages, the %s producer counted %d committed", dead, pl, committed)
				}
				t.Logf("killed after %d messages", dead)
			})
		}
	}
}

// TestXRingSpecConsumerTakeover: a consumer paused after 400 released
// messages is SIGKILLed and a consumer of another (or the same) language
// takes over the dead end (RING-9) and gets messages 400 to 1399, the spec
// peer on one side or both, on both kinds of ring.
func TestXRingSpecConsumerTakeover(t *testing.T) {
	const n, k = 1400, 400
	pairs := [][2]lang{{specLang, "go"}, {"go", specLang}, {specLang, specLang}, {"c", specLang}, {specLang, "c"}, {"py", specLang}, {specLang, "py"}}
	for _, multi := range []bool{false, true} {
		for _, vs := range pairs {
			vl, sl := vs[0], vs[1]
			t.Run(fmt.Sprintf("%s-then-%s-%s", vl, sl, kindName(multi)), func(t *testing.T) {
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
				prod := startPeer(t, specLang, time.Minute, "produce", name, "0", strconv.Itoa(n), "17", "1024", "mixed")
				victim.waitLine(t, "paused "+strconv.Itoa(k), 30*time.Second)
				prod.mustSucceed(t, "")
				victim.kill()
				next := startPeer(t, sl, time.Minute, "consume", name, "1", strconv.Itoa(n), "17", "1024", "mixed", "from", strconv.Itoa(k))
				next.mustSucceed(t, "ok "+strconv.Itoa(n-k))
			})
		}
	}
}

// specRefuses runs `check NAME` in the spec peer and requires a refusal:
// exit status 1, stderr naming want, no sanitizer report.
func specRefuses(t *testing.T, name, want, what string) {
	t.Helper()
	p := startPeer(t, specLang, 30*time.Second, "check", name)
	err := p.wait()
	stderr := p.err.String()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr, want) || sanitizerReport(stderr) {
		t.Errorf("%s: spec reader: %v, stdout %q, stderr %q; want exit status 1 naming %q", what, err, p.out.String(), stderr, want)
	}
}

// TestXRingSpecHostileHeader: the RING-7 list of TestXRingHostileHeader,
// one header field changed at a time; the spec reader must refuse each
// with the right error (not a ring, or corrupt), read the restored ring as
// empty, and refuse a segment smaller than a ring header.
func TestXRingSpecHostileHeader(t *testing.T) {
	peerArgv(t, specLang)
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
		{"2 magic", "magic", 0, true},
		{"3 version", "version", Version + 1, true},
		{"3 version", "version", 1, true},
		{"4 capacity", "capacity", 4095, false},
		{"4 capacity", "capacity", 32, false},
		{"4 capacity", "capacity", 1 << 31, false},
		{"5 max message", "max_message", 0, false},
		{"5 max message", "max_message", 4096 - 7, false},
		{"6 slots", "slots", 0, false},
		{"6 slots", "slots", 2, false},
		{"6 slots", "slots", 1025, false},
		{"6 slots", "flags", flagMultiProducer, false},
		{"7 flags", "flags", 2, false},
		{"7 flags", "flags", 1 << 31, false},
		{"8 data offset", "data_offset", slotsOffset + slotSize + 8, false},
		{"8 data offset", "data_offset", 0, false},
		{"9 segment size", "capacity", 8192, false},
	}
	for _, c := range cases {
		f := v.field(c.field)
		old := v.word(f.off, f.size)
		v.put(f.off, f.size, c.value)
		want := "(SHM_ECORRUPT"
		if c.notRing {
			want = "(SHM_ENOTRING"
		}
		specRefuses(t, name, want, fmt.Sprintf("check %s: %s = %#x", c.check, c.field, c.value))
		v.put(f.off, f.size, old)
	}
	startPeer(t, specLang, 30*time.Second, "check", name).mustSucceed(t, "empty")

	small := testName(t)
	seg, err := shm.Create(small, slotsOffset-8)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	specRefuses(t, small, "(SHM_ENOTRING", fmt.Sprintf("check 1: a segment of %d bytes", slotsOffset-8))
}

// TestXRingSpecHostileRecord: the Go and C peers write a bad record into a
// single-producer ring and publish it (`garbage NAME KIND`); the spec
// reader must call each corrupt, without crashing. Then a claimed
// (negative) record no slot announces on a multi-producer ring (RING-28).
func TestXRingSpecHostileRecord(t *testing.T) {
	for _, wl := range []lang{"go", "c"} {
		for _, kind := range []string{"long", "past", "short", "type", "negative"} {
			t.Run(string(wl)+"-"+kind, func(t *testing.T) {
				peerArgv(t, wl)
				peerArgv(t, specLang)
				name := testName(t)
				r, err := Create(name, 4096, &Options{MaxMessage: 256})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				startPeer(t, wl, 30*time.Second, "garbage", name, kind).mustSucceed(t, "ok")
				specRefuses(t, name, "(SHM_ECORRUPT", string(wl)+" garbage "+kind)
			})
		}
	}
	t.Run("multi-negative", func(t *testing.T) {
		peerArgv(t, specLang)
		name := testName(t)
		r, err := Create(name, 4096, &Options{MaxMessage: 256, Producers: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		v := newView(t, r)
		v.put(v.doff, 8, uint64(uint32(0xfffffff0))|1<<32) // hdr(-16, 1)
		v.put(v.field("tail").off, 8, 16)
		specRefuses(t, name, "(SHM_ECORRUPT", "multi-producer negative record")
	})
}

// TestXRingSpecPlantedClaims plants, through the segment's bytes, the
// states RING-28 recovers on a multi-producer ring, and requires the same
// output from the spec, Go and C consumers:
//   - dead-negative: slot 0 holds a dead token and announces [0, 24), whose
//     header says claimed (hdr(-20, 1)); T = 24;
//   - dead-zero: the same claim with its header never written (0);
//   - dead-wrap: a dead claim that began with padding to the end of the
//     data area, [C-16, 40) wrapped, no header written (RING-28's clamp,
//     then recovery again at offset 0);
//   - killed-release: no slot, a zero run at H (a consumer killed between
//     its W(H) = 0 and its H store), then message 0 of producer 0.
//
// Dead claims end in "peer-dead 0" and "ended 0"; the zero run in "ok 1".
func TestXRingSpecPlantedClaims(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the planted bytes are little-endian")
	}
	const capacity = 4096
	const deadToken = 0x2b_1234_5678 // valid (LIVE-2), held by nobody
	const (
		headOff, tailOff, everOff  = 128, 64, 344
		attachesOff                = 340
		tokenOff, startOff, endOff = 384, 400, 408
	)
	msg := pyMessage(nil, 0, 0, 19, 256)
	cases := []struct {
		name      string
		plant     func(v *view)
		want      string
		recovered uint64 // RING-28 CASes: stat_recovered after the run
	}{
		{"dead-negative", func(v *view) {
			v.put(tokenOff, 8, deadToken)
			v.put(endOff, 8, 24)
			v.put(v.doff, 8, uint64(uint32(0xffffffec))|1<<32) // hdr(-20, 1)
			v.put(tailOff, 8, 24)
		}, "peer-dead 0\nended 0", 1},
		{"dead-zero", func(v *view) {
			v.put(tokenOff, 8, deadToken)
			v.put(endOff, 8, 24)
			v.put(tailOff, 8, 24)
		}, "peer-dead 0\nended 0", 1},
		{"dead-wrap", func(v *view) {
			start := uint64(3*capacity - 16) // the third lap
			v.put(headOff, 8, start)
			v.put(tokenOff, 8, deadToken)
			v.put(startOff, 8, start)
			v.put(endOff, 8, start+16+40)
			v.put(tailOff, 8, start+16+40)
		}, "peer-dead 0\nended 0", 2},
		{"killed-release", func(v *view) {
			rec := append([]byte(nil), make([]byte, 8)...)
			binary.LittleEndian.PutUint64(rec, uint64(len(msg)+8)|1<<32)
			rec = append(rec, msg...)
			for len(rec)%8 != 0 {
				rec = append(rec, 0)
			}
			for i := 0; i < len(rec); i += 8 {
				v.put(v.doff+32+i, 8, binary.LittleEndian.Uint64(rec[i:]))
			}
			v.put(tailOff, 8, uint64(32+len(rec)))
		}, "ok 1", 1},
	}
	for _, c := range cases {
		for _, l := range []lang{specLang, "go", "c"} {
			t.Run(c.name+"-"+string(l), func(t *testing.T) {
				peerArgv(t, l)
				name := testName(t)
				r, err := Create(name, capacity, &Options{MaxMessage: 256, Producers: 2})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				v := newView(t, r)
				v.put(everOff, 4, 1)
				v.put(attachesOff, 4, 1) // the planted producer held its slot (RING-11 step 4)
				c.plant(v)
				startPeer(t, l, 30*time.Second, "consume", name, "1", "1", "19", "256").mustSucceed(t, c.want)
				if got := v.word(360, 4); got != c.recovered {
					t.Errorf("stat_recovered = %d, want %d", got, c.recovered)
				}
				if h, tl := v.word(headOff, 8), v.word(tailOff, 8); h != tl {
					t.Errorf("after the consumer: H = %d, T = %d, want equal", h, tl)
				}
			})
		}
	}
}

// TestXRingSpecStaleAnnouncement: a consumer killed in a release (a zero
// run at H, message 0 after it) meets, when its successor attaches, a live
// producer's stale announcement covering H (a loser of RING-15 step 4 that
// has not yet withdrawn). RING-9 step 5 runs RING-28 once, and RING-28
// waits on the live slot; the announcement is then withdrawn without a
// wake (claim_end = 0), and the producer dies with its slot free of
// claims, so RING-27 finds no recovery pending. A consumer that ran
// RING-28 only where SPEC.md says would stay at H for ever; the rows
// require message 0, then the death report, then the end ("ok 1":
// the one producer sent its COUNT of 1).
func TestXRingSpecStaleAnnouncement(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the planted bytes are little-endian")
	}
	const capacity = 4096
	const tailOff, startOff, endOff = 64, 400, 408
	msg := pyMessage(nil, 0, 0, 19, 256)
	for _, l := range []lang{specLang, "go", "c"} {
		t.Run(string(l), func(t *testing.T) {
			peerArgv(t, l)
			name := testName(t)
			r, err := Create(name, capacity, &Options{MaxMessage: 256, Producers: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			v := newView(t, r)
			holder := startPeer(t, "go", time.Minute, "hold-producer", name) // slot 0, alive
			holder.waitLine(t, "ready", 30*time.Second)
			rec := make([]byte, 8, 8+len(msg)+8)
			binary.LittleEndian.PutUint64(rec, uint64(len(msg)+8)|1<<32)
			rec = append(rec, msg...)
			for len(rec)%8 != 0 {
				rec = append(rec, 0)
			}
			for i := 0; i < len(rec); i += 8 {
				v.put(v.doff+32+i, 8, binary.LittleEndian.Uint64(rec[i:]))
			}
			v.put(startOff, 8, 0) // slot 0 announces [0, 32): covers H = 0
			v.put(endOff, 8, 32)
			v.put(tailOff, 8, uint64(32+len(rec)))
			cons := startPeer(t, l, 20*time.Second, "consume", name, "1", "1", "19", "256")
			time.Sleep(300 * time.Millisecond) // not needed for the result: lets the consumer attach first
			v.put(endOff, 8, 0)                // withdrawn, without a wake
			holder.kill()
			cons.mustSucceed(t, "peer-dead 1\nok 1")
		})
	}
}

// TestXRingSpecCreates: the spec peer creates the ring (§2.3, RING-5);
// its header and slots, word by word, equal those of a ring the Go package
// creates with the same geometry. Then, each on a ring the spec peer
// created, C producers feed a Go consumer peer and Go producers a C one.
func TestXRingSpecCreates(t *testing.T) {
	for _, g := range []struct{ capacity, maxMsg, slots int }{{4096, 1000, 1}, {1 << 16, 1024, 4}} {
		multi := g.slots > 1
		create := func(t *testing.T) string {
			name := testName(t)
			startPeer(t, specLang, 30*time.Second, "create", name, strconv.Itoa(g.capacity), strconv.Itoa(g.maxMsg), strconv.Itoa(g.slots)).mustSucceed(t, "")
			return name
		}
		t.Run(kindName(multi)+"-header", func(t *testing.T) {
			peerArgv(t, specLang)
			r, err := Open(create(t), nil)
			if err != nil {
				t.Fatalf("Open of the spec peer's ring: %v", err)
			}
			defer r.Close()
			ref, err := Create(testName(t), g.capacity, &Options{MaxMessage: g.maxMsg, Producers: g.slots})
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			v, rv := newView(t, r), newView(t, ref)
			for off := 0; off < 384+64*g.slots; off += 8 {
				if got, want := v.word(off, 8), rv.word(off, 8); got != want {
					t.Errorf("word at %d: spec peer %#x, Go %#x", off, got, want)
				}
			}
		})
		for _, pc := range [][2]lang{{"c", "go"}, {"go", "c"}} {
			t.Run(fmt.Sprintf("%s-%s-%s", pc[0], pc[1], kindName(multi)), func(t *testing.T) {
				peerArgv(t, specLang)
				peerArgv(t, pc[0])
				peerArgv(t, pc[1])
				name := create(t)
				const per = 50000
				n := 1
				if multi {
					n = 2
				}
				cons := startPeer(t, pc[1], 5*time.Minute, "consume", name, strconv.Itoa(n), strconv.Itoa(per), "23", "1000", "mixed")
				var prods []*peerProc
				for id := 0; id < n; id++ {
					prods = append(prods, startPeer(t, pc[0], 5*time.Minute, "produce", name, strconv.Itoa(id), strconv.Itoa(per), "23", "1000", "mixed"))
				}
				for _, p := range prods {
					p.mustSucceed(t, "")
				}
				cons.mustSucceed(t, "ok "+strconv.Itoa(n*per))
			})
		}
	}
}

// TestXRingSpecGarbage: GEN-3 for the spec reader. A ring's positions,
// slots and data area are filled with random words, most of them small or
// near the positions (so that they pass some checks), and `check` must end
// within its time limit with status 0 or 1, without a signal or a
// sanitizer report.
func TestXRingSpecGarbage(t *testing.T) {
	peerArgv(t, specLang)
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	iters := 50
	if testing.Short() || childtest.Emulated() {
		iters = 20
	}
	const capacity = 256
	outcomes := map[string]int{}
	tally := func(s string) {
		for _, w := range []string{"ok ", "empty", "peer dead", "SHM_ECORRUPT", "SHM_ENOTRING", "busy"} {
			if strings.Contains(s, w) {
				outcomes[strings.TrimSpace(w)]++
				return
			}
		}
		outcomes["other: "+s]++
	}
	defer func() { t.Logf("outcomes: %v", outcomes) }()
	for i := 0; i < iters; i++ {
		slots := []int{1, 2, 4}[rnd.Intn(3)]
		name := testName(t)
		r, err := Create(name, capacity, &Options{MaxMessage: 64, Producers: slots})
		if err != nil {
			t.Fatal(err)
		}
		v := newView(t, r)
		base := uint64(rnd.Intn(1<<20) &^ 7)
		word := func() uint64 {
			switch rnd.Intn(6) {
			case 0:
				return rnd.Uint64()
			case 1:
				return uint64(rnd.Intn(capacity + 16))
			case 2:
				return base + uint64(rnd.Intn(2*capacity))&^7
			case 3:
				return uint64(uint32(rnd.Intn(capacity+16)-8)) | uint64(rnd.Intn(4))<<32 // a header
			case 4:
				return uint64(uint32(-rnd.Intn(capacity))) | 1<<32 // a claimed header
			}
			return 0
		}
		v.put(344, 4, uint64(rnd.Intn(2)))        // producers_ever
		v.put(128, 8, base+uint64(rnd.Intn(3))*8) // head
		if rnd.Intn(4) == 0 {
			v.put(64, 8, word()) // tail
		} else {
			v.put(64, 8, base+uint64(rnd.Intn(capacity/8+1))*8)
		}
		for s := 0; s < slots; s++ {
			for _, off := range []int{0, 16, 24} { // token, claim_start, claim_end
				if rnd.Intn(2) == 0 {
					v.put(384+64*s+off, 8, word())
				}
			}
		}
		for off := 0; off < capacity; off += 8 {
			switch rnd.Intn(4) {
			case 0:
				v.put(v.doff+off, 8, word())
			case 1:
				v.put(v.doff+off, 8, uint64(8+rnd.Intn(64))|uint64(1+rnd.Intn(2))<<32) // a plausible record
			}
		}
		p := startPeer(t, specLang, 30*time.Second, "check", name)
		began := time.Now()
		err = p.wait()
		if d := time.Since(began); d > 3*time.Second {
			t.Logf("iteration %d: check took %v: %v %q %q", i, d, err, p.out.String(), p.err.String())
		}
		var ee *exec.ExitError
		if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 1) || sanitizerReport(p.err.String()) {
			t.Fatalf("iteration %d (seed %d): check: %v; stdout %q, stderr:\n%s", i, seed, err, p.out.String(), p.err.String())
		}
		tally(p.out.String() + p.err.String())
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestXRingSpecGarbageProducer: GEN-3 for the spec producer. Random
// positions and slot words, a dead consumer (so that a producer facing a
// full ring fails, RING-31, instead of waiting for a consumer that never
// comes) or a closed one; `produce` of 3 messages must end with status 0
// or 1, without a signal or a sanitizer report.
func TestXRingSpecGarbageProducer(t *testing.T) {
	peerArgv(t, specLang)
	seed := time.Now().UnixNano()
	rnd := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	const capacity = 256
	const deadToken = 0x2b_1234_5678 // valid (LIVE-2), held by nobody
	outcomes := map[int]int{}
	for i := 0; i < 30; i++ {
		slots := []int{1, 2, 4}[rnd.Intn(3)]
		name := testName(t)
		r, err := Create(name, capacity, &Options{MaxMessage: 64, Producers: slots})
		if err != nil {
			t.Fatal(err)
		}
		v := newView(t, r)
		base := uint64(rnd.Intn(1<<20) &^ 7)
		pos := func() uint64 {
			switch rnd.Intn(8) {
			case 0:
				return rnd.Uint64()
			case 1:
				return base + uint64(rnd.Intn(2*capacity))
			}
			return base + uint64(rnd.Intn(capacity/8+1))*8
		}
		v.put(128, 8, base)                    // head
		v.put(64, 8, pos())                    // tail
		v.put(320, 8, deadToken)               // consumer_token
		v.put(336, 4, uint64(1+rnd.Intn(4)/3)) // consumer_state: attached, or closed (1 in 4)
		for s := 0; s < slots; s++ {
			for _, off := range []int{0, 16, 24} {
				if rnd.Intn(6) == 0 {
					v.put(384+64*s+off, 8, pos())
				}
			}
		}
		p := startPeer(t, specLang, 30*time.Second, "produce", name, "0", "3", "29", "32")
		err = p.wait()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if err != nil && code != 1 || sanitizerReport(p.err.String()) {
			t.Fatalf("iteration %d (seed %d): produce: %v; stdout %q, stderr:\n%s", i, seed, err, p.out.String(), p.err.String())
		}
		outcomes[code]++
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("exit statuses: %v", outcomes)
}
