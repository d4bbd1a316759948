package main

// shmctl ring: a read-only look at a ring's header, slots and counters,
// once or every interval (-watch). The segment is mapped read-only and the
// tool never attaches, never writes and never takes part in the protocol:
// looking cannot disturb the ring. The layout is read from the offsets the
// README's "Memory layout (layout version 3)" table documents, not through
// the ring package's internals, as a peer in another language would.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/bus"
	"github.com/mindmeld-go/shm/cell"
	"github.com/mindmeld-go/shm/ring"
)

// Ring header offsets (README "Memory layout (layout version 3)").
const (
	rOffMagic       = 0
	rOffVersion     = 8
	rOffFlags       = 12
	rOffCapacity    = 16
	rOffMaxMsg      = 24
	rOffSlots       = 32
	rOffDataOff     = 40
	rOffTail        = 64
	rOffCommitted   = 72
	rOffCommitB     = 80
	rOffFullWaits   = 88
	rOffHead        = 128
	rOffReleased    = 136
	rOffReleaseB    = 144
	rOffEmptyWaits  = 152
	rOffConsWaiting = 192
	rOffConsWakes   = 200
	rOffProdWaiting = 256
	rOffProdWakes   = 264
	rOffConsToken   = 320
	rOffConsPid     = 328
	rOffConsState   = 336
	rOffAttaches    = 340
	rOffProdEver    = 344
	rOffTakeovers   = 348
	rOffReaped      = 352
	rOffConsTakeov  = 356
	rOffRecovered   = 360
	rOffCorrupt     = 364
	rOffProdSleeps  = 368
	rOffConsSleeps  = 376
	rHeaderSize     = 384
	rSlotSize       = 64
	// Slot fields, from the slot's start.
	rSlotToken      = 0
	rSlotPid        = 8
	rSlotClaimStart = 16
	rSlotClaimEnd   = 24
	rSlotMessages   = 32
	rSlotBytes      = 40

	rFlagMulti     = 1
	rMinCapacity   = 64
	rMaxCapacity   = 1 << 30
	rMaxSlots      = 1024
	rRecordHeader  = 8
	rTypeData      = 1
	rTypePadding   = 2
	rMaxWalk       = 1 << 20 // records counted between H and T at most
	rPositionTries = 10      // H, T, H reads before giving up on agreement
)

// ringFlags holds the flags of shmctl ring (cmdEnv is main.go's).
var ringFlags struct {
	json     bool
	watch    bool
	interval time.Duration
	count    int
}

func init() {
	commands = append(commands, &command{
		name: "ring", args: "[-json] [-watch [-interval D] [-n COUNT]] NAME",
		summary: "show a ring's state: positions, fill, ends and their liveness, counters",
		help: `Shows the state of a ring made by the ring package (or any peer of its layout
version 3, or 2, which has the same bytes): its geometry, head H and tail T (bytes ever released and ever
claimed), the fill T−H, the messages in flight, the consumer and each
producer slot in use, the two sleeping flags and the statistics counters.

The segment is mapped read-only: shmctl never attaches, never writes and
takes no part in the protocol, so looking cannot disturb the ring. The
header is validated as ring.Open does (magic, layout version 3 or 2, geometry,
segment size); anything else is an error (exit 1) that says what the
segment looks like instead: a bus, a cell, a ring of another version, a
ring still being created, or plain bytes.

Consumer and producers are shown with the token their process recorded,
the PID it recorded beside it (for operators: in the writer's own PID
namespace) and its command name from /proc/PID/comm. "alive" or "dead" is
judged by the token (the process's presence lock on the segment, see
README "Liveness"), never by the PID; the command name is shown only for a
live end, since a dead one's PID may have been reused. A producer slot
with a claim in progress shows it as [start,end).

Messages in flight: the producers' count of messages committed (offset 72
on a single-producer ring, the sum over the slots' offset 32 on a
multi-producer one) less the consumer's count released (136); "unknown"
when the peers keep no counters (an implementation that predates them
leaves them 0) or the counts disagree. "Records" counts the
records between H and T by walking their headers, when H stays put while
they are read; a multi-producer ring shows claims not yet committed.
Counters are advisory statistics, kept by the peers, never used by the
protocol: producer takeovers (348), dead producers reaped (352), consumer
takeovers (356), dead claims recovered (360), corruptions seen (364),
blocking claims that found the ring full (88) and reads that found it
empty (152), futex sleeps (368, 376) and wakes (264, 200) of each side.

-watch samples the ring every -interval (default 1s) and shows messages
and bytes per second into the ring (T, and the message counters: offset 72,
or the producer slots' on a multi-producer ring, also each slot's rate)
and out of it (H and offset 136), and the
fill, as aeron-stat does. On a terminal it redraws the screen in place;
otherwise it prints one line per sample, or with -json one JSON object per
line. "?" (JSON null) is a message rate the counters cannot give. -n COUNT
stops after COUNT samples; Ctrl-C stops it too (exit 0).

JSON (without -watch) is one object with exact numbers: "name", "version",
"multi_producer", "capacity", "max_message", "slots", "data_offset",
"segment_size", "head", "tail", "fill", "fill_percent", "positions"
("consistent", "moving" or "corrupt"), "messages_committed",
"messages_released", "payload_bytes_committed", "payload_bytes_released",
"messages_in_flight" (null when unknown), "records"
(null when not counted), "consumer", "producers" (the slots in use),
"consumer_sleeping", "producer_sleeping", "counters" and "problems".`,
		run: runRing,
		flags: func(fs *flag.FlagSet, c *cmdEnv) {
			ringFlags.json, ringFlags.watch, ringFlags.interval, ringFlags.count = false, false, time.Second, 0
			fs.BoolVar(&ringFlags.json, "json", false, "print JSON: one object, or with -watch one object per sample and line")
			fs.BoolVar(&ringFlags.watch, "watch", false, "sample the ring every -interval and show rates")
			fs.DurationVar(&ringFlags.interval, "interval", time.Second, "time between samples with -watch")
			fs.IntVar(&ringFlags.count, "n", 0, "with -watch, stop after this many samples; 0 means until interrupted")
		},
	})
}

func runRing(c *cmdEnv, args []string) int {
	if len(args) != 1 {
		return c.usageErr("ring takes one NAME")
	}
	f := ringFlags
	if !f.watch && (f.count != 0 || f.interval != time.Second) {
		return c.usageErr("-n and -interval go with -watch")
	}
	if f.interval < 10*time.Millisecond {
		return c.usageErr("-interval %v is shorter than 10ms", f.interval)
	}
	if f.count < 0 {
		return c.usageErr("-n %d is negative", f.count)
	}
	names, st, ok := c.nameArgs(args)
	if !ok {
		return st
	}
	rv, err := openRingView(names[0])
	if err != nil {
		return c.fail(err)
	}
	defer rv.seg.Close()
	if f.watch {
		return rv.watch(c, f.interval, f.count, f.json)
	}
	snap, err := rv.snapshot(true)
	if err != nil {
		return c.fail(err)
	}
	if f.json {
		if st := c.printJSON(snap); st != exitOK {
			return st
		}
	} else {
		snap.write(c.stdout)
	}
	if len(snap.Problems) > 0 {
		return c.fail(fmt.Errorf("%s: %s", snap.Name, strings.Join(snap.Problems, "; ")))
	}
	return exitOK
}

// ringView is a ring's segment mapped read-only, with its geometry, read
// and validated once, as ring.Open does.
type ringView struct {
	seg      *shm.Segment
	name     string
	w64      []atomic.Uint64 // the segment as 64-bit words
	w32      []atomic.Uint32 // and as 32-bit words
	version  uint32
	multi    bool
	capacity uint64
	maxMsg   uint64
	slots    int
	dataOff  uint64
	size     int64
}

// errFault is returned for a memory fault while reading the mapping: the
// segment was shrunk by another process.
var errFault = errors.New("memory fault reading the segment (was it shrunk by another process?)")

// guard runs f, turning a memory fault into errFault.
func guard(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = errFault
		}
	}()
	f()
	return nil
}

func (v *ringView) u64(off uint64) uint64 { return v.w64[off/8].Load() }
func (v *ringView) u32(off uint64) uint32 { return v.w32[off/4].Load() }

// openRingView maps name read-only and validates its ring header. The
// error names the segment and, for one that is not a ring of layout
// version 3 (or 2), says what it looks like.
func openRingView(name string) (*ringView, error) {
	seg, err := shm.OpenFile(name, os.O_RDONLY, 0, 0)
	if err != nil {
		return nil, err
	}
	v, err := newRingView(seg)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return v, nil
}

func newRingView(seg *shm.Segment) (*ringView, error) {
	v := &ringView{seg: seg, name: seg.Name(), size: int64(seg.Size())}
	if v.size < rHeaderSize {
		return nil, fmt.Errorf("%s: not a ring: %d bytes, smaller than a ring header (%d); %s", v.name, v.size, rHeaderSize, looksLike(seg))
	}
	var err error
	if v.w64, err = shm.Slice[atomic.Uint64](seg, 0, int(v.size/8)); err != nil {
		return nil, err
	}
	if v.w32, err = shm.Slice[atomic.Uint32](seg, 0, int(v.size/4)); err != nil {
		return nil, err
	}
	var magic uint64
	var flags, slots uint32
	if err := guard(func() {
		magic = v.u64(rOffMagic)
		v.version, flags = v.u32(rOffVersion), v.u32(rOffFlags)
		v.capacity, v.maxMsg = v.u64(rOffCapacity), v.u64(rOffMaxMsg)
		slots, v.dataOff = v.u32(rOffSlots), v.u64(rOffDataOff)
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", v.name, err)
	}
	if magic != ring.Magic {
		return nil, fmt.Errorf("%s: not a ring: magic number %#x, want %#x; %s", v.name, magic, uint64(ring.Magic), looksLike(seg))
	}
	// Layout 2 has the bytes of layout 3 (only the wake-up handshake
	// differs, SPEC.md VER-3), so this reader, which takes no part in it,
	// shows both.
	if v.version != ring.Version && v.version != 2 {
		return nil, fmt.Errorf("%s: a ring of layout version %d; this shmctl reads versions 2 and %d only", v.name, v.version, ring.Version)
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%s: corrupt ring header: %s", v.name, fmt.Sprintf(format, args...))
	}
	switch {
	case v.capacity < rMinCapacity || v.capacity > rMaxCapacity || bits.OnesCount64(v.capacity) != 1:
		return nil, corrupt("capacity %d is not a power of two in [%d, 2^30]", v.capacity, rMinCapacity)
	case v.maxMsg == 0 || v.maxMsg > v.capacity-rRecordHeader:
		return nil, corrupt("max message %d is not in 1..%d", v.maxMsg, v.capacity-rRecordHeader)
	case slots == 0 || slots > rMaxSlots || (slots > 1) != (flags&rFlagMulti != 0):
		return nil, corrupt("%d producer slots with flags %#x", slots, flags)
	case flags&^rFlagMulti != 0:
		return nil, corrupt("unknown flags %#x", flags)
	}
	v.slots, v.multi = int(slots), slots > 1
	want := uint64(rHeaderSize + rSlotSize*v.slots)
	if v.dataOff != want {
		return nil, corrupt("data offset %d, want %d", v.dataOff, want)
	}
	if need := want + v.capacity; uint64(v.size) < need {
		return nil, corrupt("segment of %d bytes is too small for capacity %d (needs %d)", v.size, v.capacity, need)
	}
	return v, nil
}

// looksLike says what a segment that is not a ring looks like, from its
// first bytes, read with ReadAt (which survives a shrunk segment).
func looksLike(seg *shm.Segment) string {
	head := make([]byte, 16)
	n, err := seg.ReadAt(head, 0)
	if n == 0 && err != nil {
		return "its first bytes could not be read: " + err.Error()
	}
	head = head[:n]
	ne := binary.NativeEndian
	if len(head) >= 8 {
		switch ne.Uint32(head) {
		case bus.Magic:
			return fmt.Sprintf("it looks like a bus (layout version %d): see the bus package", ne.Uint32(head[4:]))
		case cell.Magic:
			return fmt.Sprintf("it looks like a cell (layout version %d): see the cell package", ne.Uint32(head[4:]))
		}
	}
	if len(head) >= 12 && ne.Uint64(head) == 0 {
		if v := ne.Uint32(head[8:]); v == ring.Version || v == 2 {
			return fmt.Sprintf("it looks like a ring still being created (magic 0, layout version %d), or one whose creator died before finishing", v)
		}
	}
	zero := true
	for _, b := range head {
		zero = zero && b == 0
	}
	if zero {
		return fmt.Sprintf("it looks plain: its first %d bytes are zero", len(head))
	}
	return fmt.Sprintf("it looks plain: first bytes % x", head)
}

// ringEnd is the consumer or a producer slot, as JSON gives it.
type ringEnd struct {
	Index   *int   `json:"index,omitempty"` // producer slot number
	State   string `json:"state,omitempty"` // consumer: "never", "attached", "closed", "invalid N"
	Token   uint64 `json:"token"`
	PID     uint64 `json:"pid"`
	Command string `json:"command"` // "" when unknown or dead
	Alive   bool   `json:"alive"`   // by the token's presence lock, never by the PID
	// ClaimStart and ClaimEnd are a producer slot's claim in progress,
	// [start, end); end 0 means none.
	ClaimStart uint64 `json:"claim_start,omitempty"`
	ClaimEnd   uint64 `json:"claim_end,omitempty"`
	// Messages is a multi-producer slot's count of messages committed by
	// its current owner (offset 32 of the slot).
	Messages uint64 `json:"messages,omitempty"`
}

// ringRecords counts the records between H and T.
type ringRecords struct {
	Data        uint64 `json:"data"`
	Padding     uint64 `json:"padding"`
	Uncommitted uint64 `json:"uncommitted"` // claims not yet committed (multi-producer)
	// Complete is false when the walk stopped before T: a record not yet
	// written (header 0), too many records, or a bad header.
	Complete bool   `json:"complete"`
	Note     string `json:"note,omitempty"`
}

// ringCounters are the advisory statistics of the header.
type ringCounters struct {
	ProducerTakeovers   uint32 `json:"producer_takeovers"`
	DeadProducersReaped uint32 `json:"dead_producers_reaped"`
	ConsumerTakeovers   uint32 `json:"consumer_takeovers"`
	DeadClaimsRecovered uint32 `json:"dead_claims_recovered"`
	CorruptionsSeen     uint32 `json:"corruptions_seen"`
	ProducerSleeps      uint64 `json:"producer_sleeps"`
	ConsumerSleeps      uint64 `json:"consumer_sleeps"`
	FullWaits           uint64 `json:"full_waits"`
	EmptyWaits          uint64 `json:"empty_waits"`
	ConsumerWakes       uint64 `json:"consumer_wakes"`
	ProducerWakes       uint64 `json:"producer_wakes"`
}

// ringSnap is one look at a ring.
type ringSnap struct {
	Name             string       `json:"name"`
	Version          uint32       `json:"version"`
	MultiProducer    bool         `json:"multi_producer"`
	Capacity         uint64       `json:"capacity"`
	MaxMessage       uint64       `json:"max_message"`
	Slots            int          `json:"slots"`
	DataOffset       uint64       `json:"data_offset"`
	SegmentSize      int64        `json:"segment_size"`
	Head             uint64       `json:"head"`
	Tail             uint64       `json:"tail"`
	Fill             uint64       `json:"fill"`
	FillPercent      float64      `json:"fill_percent"`
	Positions        string       `json:"positions"` // "consistent", "moving", "corrupt"
	Committed        uint64       `json:"messages_committed"`
	Released         uint64       `json:"messages_released"`
	CommittedBytes   uint64       `json:"payload_bytes_committed"`
	ReleasedBytes    uint64       `json:"payload_bytes_released"`
	InFlight         *uint64      `json:"messages_in_flight"`
	InFlightNote     string       `json:"messages_in_flight_note,omitempty"`
	Records          *ringRecords `json:"records"`
	Consumer         ringEnd      `json:"consumer"`
	Producers        []ringEnd    `json:"producers"`
	ProducersEver    bool         `json:"producers_ever_attached"`
	Attaches         uint32       `json:"attaches"`
	ConsumerSleeping uint32       `json:"consumer_sleeping"`
	ProducerSleeping uint32       `json:"producer_sleeping"`
	Counters         ringCounters `json:"counters"`
	Problems         []string     `json:"problems"`

	at time.Time
}

// positions reads H and T so that they belong together: H, T, H again,
// until the two H agree. With H unchanged around it, T was read at a
// moment when H had that value, so H ≤ T ≤ H + C held unless the ring is
// corrupt. It reports whether they agreed.
func (v *ringView) positions() (h, t uint64, agreed bool) {
	for range rPositionTries {
		h = v.u64(rOffHead)
		t = v.u64(rOffTail)
		if v.u64(rOffHead) == h {
			return h, t, true
		}
	}
	return h, t, false
}

// snapshot reads the whole ring state; walk counts the records between H
// and T as well.
func (v *ringView) snapshot(walk bool) (*ringSnap, error) {
	s := &ringSnap{
		Name: v.name, Version: v.version, MultiProducer: v.multi, Capacity: v.capacity,
		MaxMessage: v.maxMsg, Slots: v.slots, DataOffset: v.dataOff, SegmentSize: v.size,
		Producers: []ringEnd{}, Problems: []string{},
	}
	err := guard(func() {
		s.at = time.Now()
		// Released before committed: released ≤ committed on an honest
		// ring, whose ends count a message before they publish it.
		s.Released = v.u64(rOffReleased)
		s.ReleasedBytes = v.u64(rOffReleaseB)
		h, t, agreed := v.positions()
		if !v.multi {
			s.Committed = v.u64(rOffCommitted)
			s.CommittedBytes = v.u64(rOffCommitB)
		}
		s.Head, s.Tail = h, t
		switch {
		case h%8 != 0 || t%8 != 0:
			s.Positions = "corrupt"
			s.Problems = append(s.Problems, fmt.Sprintf("positions not 8-aligned: H %d, T %d", h, t))
		case agreed && (t < h || t-h > v.capacity):
			s.Positions = "corrupt"
			s.Problems = append(s.Problems, fmt.Sprintf("positions out of range: H %d, T %d, capacity %d (want H ≤ T ≤ H+C)", h, t, v.capacity))
		case agreed:
			s.Positions = "consistent"
		default:
			// H kept moving: T is at least the first H read, and the fill
			// is clamped to the capacity.
			s.Positions = "moving"
		}
		if t > h {
			s.Fill = min(t-h, v.capacity)
		}
		s.FillPercent = float64(s.Fill) * 100 / float64(v.capacity)
		if s.Positions == "consistent" && walk {
			s.Records = v.walk(h, t)
		}
		v.endsAndCounters(s)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.name, err)
	}
	switch {
	case s.Committed < s.Released:
		s.InFlightNote = fmt.Sprintf("unknown: counters disagree (%d committed, %d released)", s.Committed, s.Released)
	case s.Committed == 0 && s.Tail != s.Head:
		s.InFlightNote = "unknown: the peers keep no message counters (offsets 72, or slot offset 32, and 136 read 0)"
	default:
		n := s.Committed - s.Released
		s.InFlight = &n
	}
	return s, nil
}

// walk counts the records in [h, t) from their headers. The count is kept
// only if H is still h afterwards: until the consumer releases them, the
// producers cannot overwrite those records.
func (v *ringView) walk(h, t uint64) *ringRecords {
	r := &ringRecords{}
	mask := v.capacity - 1
	pos := h
	for pos < t {
		if r.Data+r.Padding+r.Uncommitted >= rMaxWalk {
			r.Note = fmt.Sprintf("stopped after %d records", rMaxWalk)
			break
		}
		off := pos & mask
		word := v.u64(v.dataOff + off)
		length := int32(uint32(word))
		typ := uint32(word >> 32)
		if length <= 0 {
			if !v.multi {
				r.Note = fmt.Sprintf("bad record header %#x at position %d (single-producer records below T are complete)", word, pos)
				break
			}
			if length == 0 {
				// Claimed (T moved) but its header is not written yet.
				r.Note = fmt.Sprintf("a claim at position %d has no header yet", pos)
				break
			}
			length = -length
			r.Uncommitted++
		} else {
			switch typ {
			case rTypeData:
				r.Data++
			case rTypePadding:
				r.Padding++
			default:
				r.Note = fmt.Sprintf("bad record type %d at position %d", typ, pos)
			}
		}
		alen := (uint64(length) + 7) &^ 7
		if length < rRecordHeader || alen > t-pos || off+alen > v.capacity || (typ == rTypeData && uint64(length)-rRecordHeader > v.maxMsg) {
			r.Note = fmt.Sprintf("bad record length %d at position %d", length, pos)
		}
		if r.Note != "" {
			break
		}
		pos += alen
	}
	if v.u64(rOffHead) != h {
		return nil // the consumer moved on: the count is of no moment
	}
	r.Complete = pos == t
	return r
}

func (v *ringView) endsAndCounters(s *ringSnap) {
	s.Consumer = v.end(v.u64(rOffConsToken), v.u64(rOffConsPid))
	switch st := v.u32(rOffConsState); st {
	case 0:
		s.Consumer.State = "never"
	case 1:
		s.Consumer.State = "attached"
	case 2:
		s.Consumer.State = "closed"
	default:
		s.Consumer.State = fmt.Sprintf("invalid %d", st)
		s.Problems = append(s.Problems, fmt.Sprintf("consumer state %d is not 0, 1 or 2", st))
	}
	for i := range v.slots {
		base := v.dataOffSlot(i)
		tok := v.u64(base + rSlotToken)
		end := v.u64(base + rSlotClaimEnd)
		if v.multi {
			// Every slot's counts, free ones too: each owner counts on
			// from what the last one left (SPEC.md RING-33).
			s.Committed += v.u64(base + rSlotMessages)
			s.CommittedBytes += v.u64(base + rSlotBytes)
		}
		if tok == 0 && end == 0 {
			continue
		}
		e := v.end(tok, v.u64(base+rSlotPid))
		e.Index = &i
		e.ClaimEnd = end
		if end != 0 {
			e.ClaimStart = v.u64(base + rSlotClaimStart)
		}
		e.Messages = v.u64(base + rSlotMessages)
		s.Producers = append(s.Producers, e)
	}
	s.ProducersEver = v.u32(rOffProdEver) != 0
	s.Attaches = v.u32(rOffAttaches)
	s.ConsumerSleeping = v.u32(rOffConsWaiting)
	s.ProducerSleeping = v.u32(rOffProdWaiting)
	s.Counters = ringCounters{
		ProducerTakeovers:   v.u32(rOffTakeovers),
		DeadProducersReaped: v.u32(rOffReaped),
		ConsumerTakeovers:   v.u32(rOffConsTakeov),
		DeadClaimsRecovered: v.u32(rOffRecovered),
		CorruptionsSeen:     v.u32(rOffCorrupt),
		ProducerSleeps:      v.u64(rOffProdSleeps),
		ConsumerSleeps:      v.u64(rOffConsSleeps),
		FullWaits:           v.u64(rOffFullWaits),
		EmptyWaits:          v.u64(rOffEmptyWaits),
		ConsumerWakes:       v.u64(rOffConsWakes),
		ProducerWakes:       v.u64(rOffProdWakes),
	}
}

func (v *ringView) dataOffSlot(i int) uint64 { return uint64(rHeaderSize + rSlotSize*i) }

// end describes an end from its token and recorded PID. Its command name
// is looked up only when the token is alive: a dead end's PID may belong
// to another process by now.
func (v *ringView) end(tok, pid uint64) ringEnd {
	e := ringEnd{Token: tok, PID: pid}
	if tok != 0 {
		e.Alive = v.seg.PeerAlive(tok)
	}
	if e.Alive && pid != 0 && pid < 1<<31 {
		e.Command = procComm(int(pid))
	}
	return e
}

// label is an end as text: "PID 123 (prog), token 0x1f, alive".
func (e *ringEnd) label() string {
	if e.Token == 0 {
		if e.PID != 0 {
			return fmt.Sprintf("no token, PID %d left", e.PID)
		}
		return "none"
	}
	pid := "PID ?"
	if e.PID != 0 {
		pid = "PID " + strconv.FormatUint(e.PID, 10)
		if e.Command != "" {
			pid += " (" + displayName(e.Command) + ")"
		}
	}
	alive := "alive"
	if !e.Alive {
		alive = "dead"
	}
	return fmt.Sprintf("%s, token %#x, %s", pid, e.Token, alive)
}

func yesNo(w uint32) string {
	switch w {
	case 0:
		return "no"
	case 1:
		return "yes"
	}
	return fmt.Sprintf("invalid %d", w)
}

// write prints s as text.
func (s *ringSnap) write(w io.Writer) {
	kind := "single producer"
	if s.MultiProducer {
		kind = fmt.Sprintf("multi-producer, %d slots", s.Slots)
	}
	fmt.Fprintf(w, "Ring:        %s (layout version %d, %s)\n", displayName(s.Name), s.Version, kind)
	fmt.Fprintf(w, "Capacity:    %d bytes (%s), max message %d, data at offset %d, segment %d bytes\n",
		s.Capacity, humanSize(int64(s.Capacity)), s.MaxMessage, s.DataOffset, s.SegmentSize)
	fmt.Fprintf(w, "Head H:      %d\nTail T:      %d\n", s.Head, s.Tail)
	note := ""
	switch s.Positions {
	case "moving":
		note = " (approximate: H moved on every read)"
	case "corrupt":
		note = " (positions corrupt)"
	}
	fmt.Fprintf(w, "Fill:        %d bytes (%.1f%%)%s\n", s.Fill, s.FillPercent, note)
	if s.InFlight != nil {
		fmt.Fprintf(w, "In flight:   %d messages (%d committed − %d released; payload bytes %d in, %d out)\n", *s.InFlight, s.Committed, s.Released, s.CommittedBytes, s.ReleasedBytes)
	} else {
		fmt.Fprintf(w, "In flight:   %s\n", s.InFlightNote)
	}
	if r := s.Records; r != nil {
		fmt.Fprintf(w, "Records:     %d data, %d padding", r.Data, r.Padding)
		if s.MultiProducer {
			fmt.Fprintf(w, ", %d claimed, not committed", r.Uncommitted)
		}
		fmt.Fprintf(w, " between H and T")
		if !r.Complete {
			fmt.Fprintf(w, " (partial: %s)", r.Note)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Consumer:    %s, %s\n", s.Consumer.State, s.Consumer.label())
	fmt.Fprintf(w, "Producers:   %d of %d slots in use", len(s.Producers), s.Slots)
	if !s.ProducersEver {
		fmt.Fprintf(w, ", none ever attached")
	}
	fmt.Fprintln(w)
	for _, p := range s.Producers {
		fmt.Fprintf(w, "  slot %d:    %s", *p.Index, p.label())
		if s.MultiProducer {
			fmt.Fprintf(w, ", %d messages committed", p.Messages)
		}
		if p.ClaimEnd != 0 {
			fmt.Fprintf(w, ", claim in progress [%d,%d)", p.ClaimStart, p.ClaimEnd)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Sleeping:    consumer %s, producers %s\n", yesNo(s.ConsumerSleeping), yesNo(s.ProducerSleeping))
	k := s.Counters
	fmt.Fprintf(w, "Counters:    producer takeovers %d, dead producers reaped %d, consumer takeovers %d,\n", k.ProducerTakeovers, k.DeadProducersReaped, k.ConsumerTakeovers)
	fmt.Fprintf(w, "             dead claims recovered %d, corruptions seen %d,\n", k.DeadClaimsRecovered, k.CorruptionsSeen)
	fmt.Fprintf(w, "             full waits %d, producer sleeps %d, producer wakes %d,\n", k.FullWaits, k.ProducerSleeps, k.ProducerWakes)
	fmt.Fprintf(w, "             empty waits %d, consumer sleeps %d, consumer wakes %d\n", k.EmptyWaits, k.ConsumerSleeps, k.ConsumerWakes)
	for _, p := range s.Problems {
		fmt.Fprintf(w, "PROBLEM:     %s\n", p)
	}
}

// ringRate is one producer slot's message rate over a sample.
type ringRate struct {
	Index      int      `json:"index"`
	Token      uint64   `json:"token"`
	PID        uint64   `json:"pid"`
	MsgsPerSec *float64 `json:"msgs_per_sec"`
}

// ringSample is one line of -watch -json.
type ringSample struct {
	Sample         int        `json:"sample"`
	Start          int64      `json:"start_unix_nano"`
	End            int64      `json:"end_unix_nano"`
	Head           uint64     `json:"head"`
	Tail           uint64     `json:"tail"`
	Fill           uint64     `json:"fill"`
	FillPercent    float64    `json:"fill_percent"`
	Committed      uint64     `json:"messages_committed"`
	Released       uint64     `json:"messages_released"`
	InMsgsPerSec   *float64   `json:"in_msgs_per_sec"`
	InBytesPerSec  float64    `json:"in_bytes_per_sec"`
	OutMsgsPerSec  *float64   `json:"out_msgs_per_sec"`
	OutBytesPerSec float64    `json:"out_bytes_per_sec"`
	Producers      []ringRate `json:"producers,omitempty"`
}

// rate computes a sample from two snapshots.
func rate(n int, prev, cur *ringSnap) ringSample {
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		dt = 1e-9
	}
	per := func(d uint64) float64 { return float64(d) / dt }
	delta := func(a, b uint64) uint64 {
		if b < a {
			return 0 // a counter went back: a peer reset or rewrote it
		}
		return b - a
	}
	s := ringSample{
		Sample: n, Start: prev.at.UnixNano(), End: cur.at.UnixNano(),
		Head: cur.Head, Tail: cur.Tail, Fill: cur.Fill, FillPercent: cur.FillPercent,
		Committed: cur.Committed, Released: cur.Released,
		InBytesPerSec:  per(delta(prev.Tail, cur.Tail)),
		OutBytesPerSec: per(delta(prev.Head, cur.Head)),
	}
	// A message rate is known when its counter moved, or when the bytes
	// did not (then it is 0); bytes moving under a still counter mean the
	// peers keep no counters.
	out := delta(prev.Released, cur.Released)
	if out > 0 || cur.Head == prev.Head {
		r := per(out)
		s.OutMsgsPerSec = &r
	}
	in := delta(prev.Committed, cur.Committed)
	if in > 0 || cur.Tail == prev.Tail {
		r := per(in)
		s.InMsgsPerSec = &r
	}
	if !cur.MultiProducer {
		return s
	}
	// Multi-producer: each slot's rate too. A new owner counts on from
	// the last one's count (RING-33); a peer that restarts it from 0 gives
	// that slot no rate for the sample.
	old := map[int]ringEnd{}
	for _, p := range prev.Producers {
		old[*p.Index] = p
	}
	for _, p := range cur.Producers {
		pr := ringRate{Index: *p.Index, Token: p.Token, PID: p.PID}
		o, ok := old[*p.Index]
		if p.Token != 0 && (!ok || o.Messages <= p.Messages) {
			r := per(p.Messages - o.Messages)
			pr.MsgsPerSec = &r
		}
		s.Producers = append(s.Producers, pr)
	}
	return s
}

func fmtRate(r *float64) string {
	if r == nil {
		return "? msg/s"
	}
	return fmt.Sprintf("%.0f msg/s", *r)
}

func fmtBytes(r float64) string { return humanSize(int64(r+0.5)) + "B/s" }

// line is a sample as one line of text.
func (s *ringSample) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  in %s %s  out %s %s  fill %d (%.1f%%)  H %d T %d",
		time.Unix(0, s.End).UTC().Format("2006-01-02T15:04:05.000Z"),
		fmtRate(s.InMsgsPerSec), fmtBytes(s.InBytesPerSec), fmtRate(s.OutMsgsPerSec), fmtBytes(s.OutBytesPerSec),
		s.Fill, s.FillPercent, s.Head, s.Tail)
	for _, p := range s.Producers {
		fmt.Fprintf(&b, "  slot %d: %s", p.Index, fmtRate(p.MsgsPerSec))
	}
	return b.String()
}

// ANSI sequences for the terminal display.
const (
	ansiHome       = "\x1b[H\x1b[2J"
	ansiHideCursor = "\x1b[?25l"
	ansiShowCursor = "\x1b[?25h"
)

// watch samples the ring every interval, count times (0: until
// interrupted), and prints each sample.
func (v *ringView) watch(c *cmdEnv, interval time.Duration, count int, jsonOut bool) int {
	tty := !jsonOut && isTerminal(c.stdout)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(stop)
	if tty {
		fmt.Fprint(c.stdout, ansiHideCursor)
		defer fmt.Fprint(c.stdout, ansiShowCursor)
	}
	prev, err := v.snapshot(false)
	if err != nil {
		return c.fail(err)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 1; count == 0 || n <= count; n++ {
		select {
		case <-stop:
			if tty {
				fmt.Fprintln(c.stdout)
			}
			return exitOK
		case <-tick.C:
		}
		cur, err := v.snapshot(tty)
		if err != nil {
			return c.fail(err)
		}
		s := rate(n, prev, cur)
		switch {
		case jsonOut:
			b, err := json.Marshal(s)
			if err != nil {
				return c.fail(err)
			}
			fmt.Fprintf(c.stdout, "%s\n", b)
		case tty:
			var b strings.Builder
			b.WriteString(ansiHome)
			cur.write(&b)
			fmt.Fprintf(&b, "\nRates over the last %.2fs (sample %d, every %v; Ctrl-C to stop):\n", float64(s.End-s.Start)/1e9, n, interval)
			fmt.Fprintf(&b, "  in:   %s, %s\n  out:  %s, %s\n", fmtRate(s.InMsgsPerSec), fmtBytes(s.InBytesPerSec), fmtRate(s.OutMsgsPerSec), fmtBytes(s.OutBytesPerSec))
			for _, p := range s.Producers {
				fmt.Fprintf(&b, "  slot %d (PID %d): %s\n", p.Index, p.PID, fmtRate(p.MsgsPerSec))
			}
			// The terminal expects CR LF only in raw mode; plain "\n" is
			// right for a cooked terminal.
			io.WriteString(c.stdout, b.String())
		default:
			fmt.Fprintln(c.stdout, s.line())
		}
		prev = cur
	}
	return exitOK
}
