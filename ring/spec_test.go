package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mindmeld-go/shm"
)

// The golden check of SPEC.md §9 against this package: the constants of
// §9.2 and the offsets of §9.3 (header) and §9.4 (slot) are parsed from the
// text, and the bytes of rings made here are read at the offsets the text
// states, fresh and after each step whose stores §9 gives. Nothing here
// uses the header and slot structs: a C or Python peer sees only bytes.

// specField is one row of a layout table: a named field, or reserved bytes
// (name "").
type specField struct {
	off, size int
	name      string
}

// specSection returns §9 of SPEC.md.
func specSection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## 9. ")
	j := strings.Index(s, "\n## 10. ")
	if i < 0 || j < i {
		t.Fatal("SPEC.md: no §9 followed by §10")
	}
	return s[i:j]
}

// specTable returns the cells of the rows of the first table after the
// heading "### <num>" in sec, without its head and separator rows.
func specTable(t *testing.T, sec, num string) [][]string {
	t.Helper()
	i := strings.Index(sec, "\n### "+num+" ")
	if i < 0 {
		t.Fatalf("SPEC.md §9: no heading %s", num)
	}
	var rows [][]string
	in := false
	for _, line := range strings.Split(sec[i+1:], "\n")[1:] {
		if !strings.HasPrefix(line, "|") {
			if in {
				break
			}
			continue
		}
		in = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for k := range cells {
			cells[k] = strings.TrimSpace(cells[k])
		}
		rows = append(rows, cells)
	}
	if len(rows) < 3 {
		t.Fatalf("SPEC.md §%s: no table", num)
	}
	return rows[2:]
}

// specLayout parses a layout table (offset | size | name | ...) and checks
// that its rows cover [0, total) in order, with no gap or overlap, and that
// every named field is a 4- or 8-byte word aligned to its size (GEN-1).
func specLayout(t *testing.T, sec, num string, total int) map[string]specField {
	t.Helper()
	fields := map[string]specField{}
	next := 0
	for _, row := range specTable(t, sec, num) {
		if len(row) < 3 {
			t.Fatalf("§%s: short row %q", num, row)
		}
		off, err1 := strconv.Atoi(row[0])
		size, err2 := strconv.Atoi(row[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("§%s: row %q: offset or size is not a number", num, row)
		}
		if off != next {
			t.Errorf("§%s: row at %d, want %d (a gap or an overlap)", num, off, next)
		}
		next = off + size
		name := strings.Trim(row[2], "`")
		if row[2] == "reserved" {
			name = ""
		} else {
			if size != 4 && size != 8 || off%size != 0 {
				t.Errorf("§%s: %s: %d bytes at %d is not an aligned 4- or 8-byte word", num, name, size, off)
			}
			if _, dup := fields[name]; dup {
				t.Errorf("§%s: %s twice", num, name)
			}
		}
		fields[name] = specField{off, size, name}
	}
	if next != total {
		t.Errorf("§%s: rows end at %d, want %d", num, next, total)
	}
	delete(fields, "")
	return fields
}

// specLayouts returns the header and slot fields of §9.3 and §9.4.
func specLayouts(t *testing.T) (hdr, slot map[string]specField) {
	t.Helper()
	sec := specSection(t)
	return specLayout(t, sec, "9.3", slotsOffset), specLayout(t, sec, "9.4", slotSize)
}

func TestSpecConstants(t *testing.T) {
	code := map[string]uint64{
		"RING_MAGIC": Magic, "RING_VERSION": Version, "HEADER_SIZE": slotsOffset,
		"SLOT_SIZE": slotSize, "MIN_CAPACITY": minCapacity, "MAX_CAPACITY": maxCapacity,
		"MAX_SLOTS": maxProducers, "RECORD_HEADER": recordHeader, "TYPE_DATA": typeData,
		"TYPE_PADDING": typePadding, "FLAG_MULTI": flagMultiProducer,
	}
	seen := map[string]bool{}
	for _, row := range specTable(t, specSection(t), "9.2") {
		name := strings.Trim(row[0], "`")
		v, err := strconv.ParseUint(strings.Trim(row[1], "`"), 0, 64)
		if err != nil {
			t.Errorf("§9.2 %s: value %q: %v", name, row[1], err)
			continue
		}
		want, ok := code[name]
		if !ok {
			t.Errorf("§9.2 %s: not a constant of package ring", name)
			continue
		}
		seen[name] = true
		if v != want {
			t.Errorf("§9.2 %s = %#x, package ring has %#x", name, v, want)
		}
	}
	for name := range code {
		if !seen[name] {
			t.Errorf("§9.2 lacks %s", name)
		}
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], Magic)
	if string(b[:]) != "SHMRING\x00" {
		t.Errorf("RING_MAGIC is %q in little-endian order, §9.2 says SHMRING\\0", b[:])
	}
}

// view reads a ring's words at the offsets of the spec.
type view struct {
	t           *testing.T
	b           []byte
	hdr, slot   map[string]specField
	slots, doff int
}

func newView(t *testing.T, r *Ring) *view {
	hdr, slot := specLayouts(t)
	v := &view{t: t, b: r.Segment().Bytes(), hdr: hdr, slot: slot}
	v.slots = int(v.get("slots"))
	v.doff = int(v.get("data_offset"))
	return v
}

func (v *view) word(off, size int) uint64 {
	if size == 4 {
		return uint64(binary.NativeEndian.Uint32(v.b[off:]))
	}
	return binary.NativeEndian.Uint64(v.b[off:])
}

func (v *view) put(off, size int, x uint64) {
	if size == 4 {
		binary.NativeEndian.PutUint32(v.b[off:], uint32(x))
	} else {
		binary.NativeEndian.PutUint64(v.b[off:], x)
	}
}

func (v *view) field(name string) specField {
	f, ok := v.hdr[name]
	if !ok {
		v.t.Fatalf("§9.3 has no field %s", name)
	}
	return f
}

func (v *view) get(name string) uint64 { f := v.field(name); return v.word(f.off, f.size) }

// record returns the record header word at data offset off.
func (v *view) record(off int) uint64 { return binary.NativeEndian.Uint64(v.b[v.doff+off:]) }

// expect checks every header and slot word of the spec against want (by
// name; slot fields as "slot<i>.<name>"); words not in want must be 0,
// except the advisory statistics words once ends have acted (stats), and
// every reserved byte must be 0.
func (v *view) expect(step string, want map[string]uint64, stats bool) {
	v.t.Helper()
	check := func(name string, f specField) {
		got := v.word(f.off, f.size)
		w, ok := want[name]
		if !ok && stats && strings.Contains(name, "stat_") {
			return
		}
		if got != w {
			v.t.Errorf("%s: %s (offset %d) = %#x, want %#x", step, name, f.off, got, w)
		}
	}
	for name := range want {
		field, isSlot := strings.CutPrefix(name, "slot0.")
		if _, ok := v.hdr[name]; !ok && !(isSlot && v.slot[field].size != 0) {
			v.t.Errorf("%s: SPEC.md §9.3/§9.4 has no field %s", step, name)
		}
	}
	named := map[int]bool{}
	for name, f := range v.hdr {
		check(name, f)
		for k := range f.size {
			named[f.off+k] = true
		}
	}
	for i := range v.slots {
		for name, f := range v.slot {
			f.off += slotsOffset + i*slotSize
			check("slot"+strconv.Itoa(i)+"."+name, f)
			for k := range f.size {
				named[f.off+k] = true
			}
		}
	}
	for off := 0; off < v.doff; off++ {
		if !named[off] && v.b[off] != 0 {
			v.t.Errorf("%s: reserved byte %d = %#x, want 0", step, off, v.b[off])
		}
	}
}

// TestSpecLayout makes single- and multi-producer rings and reads their
// bytes at the offsets of §9.3 and §9.4: fresh (RING-5), after the attach
// of each end (RING-9, RING-11), a claim (RING-15), a commit (RING-14,
// RING-17), a release (RING-22) and the close of each end (RING-10,
// RING-13).
func TestSpecLayout(t *testing.T) {
	tok, pid := shm.ProcessToken(), uint64(os.Getpid())
	for _, producers := range []int{1, 3} {
		multi := producers > 1
		const capacity, maxMsg = 4096, 1000
		r, err := Create(testName(t), capacity, &Options{MaxMessage: maxMsg, Producers: producers})
		if err != nil {
			t.Fatal(err)
		}
		v := newView(t, r)
		flags, slots := uint64(0), uint64(1)
		if multi {
			flags, slots = flagMultiProducer, uint64(producers)
		}
		doff := uint64(slotsOffset + slotSize*producers)
		want := map[string]uint64{
			"magic": Magic, "version": Version, "flags": flags, "capacity": capacity,
			"max_message": maxMsg, "slots": slots, "data_offset": doff,
		}
		v.expect("fresh", want, false)
		if got := len(v.b); got != int(doff)+capacity {
			t.Errorf("segment of %d bytes, want D + C = %d", got, int(doff)+capacity)
		}

		c, err := r.Consumer()
		if err != nil {
			t.Fatal(err)
		}
		want["consumer_token"], want["consumer_pid"], want["consumer_state"] = tok, pid, consumerAttached
		v.expect("consumer attached", want, true)
		p, err := r.Producer()
		if err != nil {
			t.Fatal(err)
		}
		want["slot0.token"], want["slot0.pid"], want["attaches"], want["producers_ever"] = tok, pid, 1, 1
		v.expect("producer attached", want, true)

		msg := []byte("hello") // a record of 13 bytes, 16 aligned
		buf, err := p.Claim(len(msg))
		if err != nil {
			t.Fatal(err)
		}
		copy(buf, msg)
		if multi {
			want["tail"], want["slot0.claim_start"], want["slot0.claim_end"] = 16, 0, 16
			v.expect("claimed", want, true)
			if got, w := v.record(0), pack(-13, typeData); got != w {
				t.Errorf("claimed: record header %#x, want %#x (negated length, RING-15)", got, w)
			}
		}
		if err := p.Commit(); err != nil {
			t.Fatal(err)
		}
		want["tail"], want["slot0.claim_end"] = 16, 0
		v.expect("committed", want, true)
		if got, w := v.record(0), uint64(13)|uint64(typeData)<<32; got != w {
			t.Errorf("committed: record header at D %#x, want %#x", got, w)
		}
		if !bytes.Equal(v.b[v.doff+8:v.doff+13], msg) {
			t.Errorf("payload at D+8 = %q, want %q", v.b[v.doff+8:v.doff+13], msg)
		}

		got, err := c.Read()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("Read = %q, %v", got, err)
		}
		if err := c.Release(); err != nil {
			t.Fatal(err)
		}
		want["head"] = 16
		v.expect("released", want, true)
		if multi && (v.record(0) != 0 || !bytes.Equal(v.b[v.doff:v.doff+16], make([]byte, 16))) {
			t.Errorf("released: record bytes % x, want zeros (RING-4, RING-22)", v.b[v.doff:v.doff+16])
		}

		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		want["slot0.token"], want["slot0.pid"] = 0, 0
		v.expect("producer closed", want, true)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		want["consumer_token"], want["consumer_pid"], want["consumer_state"] = 0, 0, consumerClosed
		v.expect("consumer closed", want, true)
		r.Close()
	}
}

// TestSpecOpen changes the header of a ring one field at a time, at the
// offsets of §9.3, and checks that Open refuses each as RING-7 says.
func TestSpecOpen(t *testing.T) {
	name := testName(t)
	r, err := Create(name, 4096, &Options{MaxMessage: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	v := newView(t, r)
	for _, c := range []struct {
		check string
		field string
		value uint64
		want  error
	}{
		{"2 magic", "magic", Magic + 1, ErrNotRing},
		{"2 magic", "magic", 0, ErrNotRing}, // after 200 ms of zero
		{"3 version", "version", Version + 1, ErrNotRing},
		{"3 version", "version", 1, ErrNotRing},
		{"4 capacity", "capacity", 4095, ErrCorrupt},
		{"4 capacity", "capacity", 32, ErrCorrupt},
		{"4 capacity", "capacity", 1 << 31, ErrCorrupt},
		{"5 max message", "max_message", 0, ErrCorrupt},
		{"5 max message", "max_message", 4096 - 7, ErrCorrupt},
		{"6 slots", "slots", 0, ErrCorrupt},
		{"6 slots", "slots", 2, ErrCorrupt},
		{"6 slots", "flags", flagMultiProducer, ErrCorrupt},
		{"7 flags", "flags", 2, ErrCorrupt},
		{"8 data offset", "data_offset", slotsOffset + slotSize + 8, ErrCorrupt},
		{"9 segment size", "capacity", 8192, ErrCorrupt},
	} {
		f := v.field(c.field)
		old := v.word(f.off, f.size)
		v.put(f.off, f.size, c.value)
		r2, err := Open(name, nil)
		v.put(f.off, f.size, old)
		if err == nil {
			r2.Close()
			t.Errorf("check %s: Open with %s = %#x succeeded", c.check, c.field, c.value)
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("check %s: Open with %s = %#x: %v, want %v", c.check, c.field, c.value, err, c.want)
		}
		if c.field == "version" && !strings.Contains(err.Error(), strconv.Itoa(int(c.value))) {
			t.Errorf("check 3: %q does not name the version found (VER-3)", err)
		}
	}
	r2, err := Open(name, nil)
	if err != nil {
		t.Fatalf("Open of the restored header: %v", err)
	}
	r2.Close()

	// Check 1: a segment smaller than the header.
	seg, err := shm.Create(testName(t), slotsOffset-8)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if _, err := OpenIn(seg, nil); !errors.Is(err, ErrNotRing) {
		t.Errorf("check 1: OpenIn of %d bytes: %v, want ErrNotRing", slotsOffset-8, err)
	}
}

// TestSpecHexDump compares the hex dump of §9.3 with the first bytes of a
// fresh ring made with the geometry it states.
func TestSpecHexDump(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the dump of §9.3 is of a little-endian host")
	}
	sec := specSection(t)
	i := strings.Index(sec, "\n### 9.3 ")
	j := strings.Index(sec, "\n### 9.4 ")
	if i < 0 || j < i {
		t.Fatal("SPEC.md §9.3 not found")
	}
	var dump []byte
	for _, line := range strings.Split(sec[i:j], "\n") {
		f := strings.Fields(line)
		if len(f) < 17 || len(f[0]) != 8 {
			continue
		}
		off, err := strconv.ParseUint(f[0], 16, 32)
		if err != nil || int(off) != len(dump) {
			t.Fatalf("§9.3 dump: line %q out of order", line)
		}
		for _, h := range f[1:17] {
			b, err := strconv.ParseUint(h, 16, 8)
			if err != nil {
				t.Fatalf("§9.3 dump: line %q: %v", line, err)
			}
			dump = append(dump, byte(b))
		}
	}
	if len(dump) != 48 {
		t.Fatalf("§9.3 dump has %d bytes, want 48", len(dump))
	}
	r, err := Create(testName(t), 4096, &Options{MaxMessage: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := r.Segment().Bytes()
	if !bytes.Equal(b[:48], dump) {
		t.Errorf("fresh ring begins\n% x\n§9.3 says\n% x", b[:48], dump)
	}
	if !bytes.Equal(b[48:448], make([]byte, 400)) {
		t.Errorf("bytes 48–447 of a fresh ring are not all 0")
	}
}
