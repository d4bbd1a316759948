// Command ringpeer is the Go ring peer of the cross-language tests, with the
// command line of python/tests/ringpeer.py and c/tests/ringpeer.c:
//
//	ringpeer create NAME CAP MAXMSG NSLOTS
//	ringpeer unlink NAME
//	ringpeer produce NAME ID COUNT SEED MAXLEN [MODE] [pause-after K]
//	ringpeer consume NAME NPROD COUNT SEED MAXLEN [MODE] [pause-after K] [from K]
//	ringpeer hold-consumer NAME | hold-producer NAME           (prints "ready", sleeps)
//	ringpeer check NAME                      (opens, attaches a consumer, reads one message)
//	ringpeer garbage NAME KIND               (writes a bad record at T and publishes it)
//	ringpeer bench-read NAME                 (reads in place until EOF; prints "ready", then "ok N BYTES")
//	ringpeer bench-sock PATH                 (accepts one Unix connection, reads to EOF; prints "ok BYTES")
//
// Message k of producer p is message(p, k, seed, maxlen). MODE is copy (the
// default), zerocopy (Claim and Commit, Read and Release) or mixed (message k
// in place when k is odd). With pause-after K a producer stops after K
// messages and a consumer after K released ones, print "paused K" and sleep
// until killed. A consumer given from K expects every producer's first
// message to be number K. It prints "peer-dead N" (N messages consumed so
// far) for each death report and, at the end of the stream, "ok N" when
// every producer sent COUNT messages, or, after a death report, "ended" and
// each producer's count; anything else fails with exit status 1.
//
// check prints "ok N" (a message of N bytes), "empty" (none within a
// second) or fails naming the error. garbage writes, through the segment's
// bytes and not the ring API, one bad record at T of a single-producer ring
// and moves T past it; KIND is long (longer than MAXMSG), past (past T),
// short (length 4), type (type 7) or negative (length -16).
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/ring"
)

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	z := x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// message appends message k of producer p to b.
func message(b []byte, p uint32, k, seed uint64, maxlen int) []byte {
	n := 16 + int(splitmix64(seed^(uint64(p)<<40)^k)%uint64(maxlen-16+1))
	b = binary.LittleEndian.AppendUint32(b[:0], p)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint64(b, k)
	for i := 16; i < n; i++ {
		b = append(b, byte(k+uint64(i)+131*uint64(p)))
	}
	return b
}

func num(s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		fail(err)
	}
	return v
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ringpeer:", err)
	os.Exit(1)
}

func main() {
	a := os.Args[1:]
	if len(a) < 2 {
		fail(errors.New("usage: ringpeer create|unlink|produce|consume|hold-consumer|hold-producer|check|garbage NAME [ARGS]"))
	}
	name := a[1]
	switch a[0] {
	case "create":
		r, err := ring.Create(name, int(num(a[2])), &ring.Options{MaxMessage: int(num(a[3])), Producers: int(num(a[4]))})
		if err != nil {
			fail(err)
		}
		_ = r.Close()
	case "unlink":
		if err := shm.Unlink(name); err != nil {
			fail(err)
		}
	case "produce", "consume":
		if len(a) < 6 {
			fail(errors.New("usage: ringpeer produce|consume NAME ID|NPROD COUNT SEED MAXLEN [MODE] [pause-after K] [from K]"))
		}
		o := parseOpts(a[6:])
		if a[0] == "produce" {
			produce(name, uint32(num(a[2])), num(a[3]), num(a[4]), int(num(a[5])), o)
		} else {
			consume(name, int(num(a[2])), num(a[3]), num(a[4]), int(num(a[5])), o)
		}
	case "check":
		check(name)
	case "garbage":
		if len(a) < 3 {
			fail(errors.New("usage: ringpeer garbage NAME long|past|short|type|negative"))
		}
		garbage(name, a[2])
	case "hold-consumer", "hold-producer":
		r, err := ring.Open(name, nil)
		if err != nil {
			fail(err)
		}
		if a[0] == "hold-consumer" {
			_, err = r.Consumer()
		} else {
			_, err = r.Producer()
		}
		if err != nil {
			fail(err)
		}
		fmt.Println("ready")
		for {
			time.Sleep(time.Second)
		}
	case "bench-read":
		benchRead(name)
	case "bench-sock":
		benchSock(name)
	default:
		fail(fmt.Errorf("unknown command %q", a[0]))
	}
}

// opts are the optional arguments of produce and consume.
type opts struct {
	mode  string // copy, zerocopy or mixed
	pause uint64 // pause-after K; 0: never
	from  uint64 // from K
}

func parseOpts(a []string) opts {
	o := opts{mode: "copy"}
	for i := 0; i < len(a); i++ {
		switch a[i] {
		case "copy", "zerocopy", "mixed":
			o.mode = a[i]
		case "pause-after", "from":
			if i+1 == len(a) {
				fail(fmt.Errorf("%s needs a number", a[i]))
			}
			if a[i] == "from" {
				o.from = num(a[i+1])
			} else {
				o.pause = num(a[i+1])
			}
			i++
		default:
			fail(fmt.Errorf("unknown argument %q", a[i]))
		}
	}
	return o
}

// inPlace reports whether message k goes by Claim or Read.
func (o opts) inPlace(k uint64) bool {
	return o.mode == "zerocopy" || o.mode == "mixed" && k%2 == 1
}

// pauseAt prints "paused K" and sleeps until the process is killed if k is
// the pause-after count.
func (o opts) pauseAt(k uint64) {
	if o.pause == 0 || k != o.pause {
		return
	}
	fmt.Printf("paused %d\n", k)
	for {
		time.Sleep(time.Second)
	}
}

func produce(name string, id uint32, count, seed uint64, maxlen int, o opts) {
	r, err := ring.Open(name, nil)
	if err != nil {
		fail(err)
	}
	p, err := r.Producer()
	if err != nil {
		fail(err)
	}
	var m []byte
	for k := uint64(0); k < count; k++ {
		o.pauseAt(k)
		m = message(m, id, k, seed, maxlen)
		if o.inPlace(k) {
			buf, err := p.Claim(len(m))
			if err != nil {
				fail(err)
			}
			copy(buf, m)
			err = p.Commit()
			if err != nil {
				fail(err)
			}
		} else if err := p.Send(m); err != nil {
			fail(err)
		}
	}
	_ = p.Close()
	_ = r.Close()
}

func consume(name string, nprod int, count, seed uint64, maxlen int, o opts) {
	r, err := ring.Open(name, nil)
	if err != nil {
		fail(err)
	}
	c, err := r.Consumer()
	if err != nil {
		fail(err)
	}
	next := make([]uint64, nprod)
	for p := range next {
		next[p] = o.from
	}
	buf := make([]byte, maxlen)
	var want []byte
	total, deaths := uint64(0), 0
	for {
		o.pauseAt(total)
		zc := o.inPlace(total)
		var m []byte
		if zc {
			m, err = c.Read()
		} else {
			var n int
			n, err = c.Receive(buf)
			m = buf[:n]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ring.ErrPeerDead) {
			fmt.Printf("peer-dead %d\n", total)
			deaths++
			continue
		}
		if err != nil {
			fail(err)
		}
		if len(m) < 16 {
			fail(fmt.Errorf("short message of %d bytes", len(m)))
		}
		p := binary.LittleEndian.Uint32(m)
		k := binary.LittleEndian.Uint64(m[8:])
		if int(p) >= nprod || k != next[p] {
			fail(fmt.Errorf("message p=%d k=%d out of order", p, k))
		}
		want = message(want, p, k, seed, maxlen)
		if !bytes.Equal(m, want) {
			fail(fmt.Errorf("message p=%d k=%d: wrong content", p, k))
		}
		if zc {
			if err := c.Release(); err != nil {
				fail(err)
			}
		}
		next[p]++
		total++
	}
	short := false
	for _, n := range next {
		short = short || n != count
	}
	switch {
	case !short:
		fmt.Printf("ok %d\n", total)
	case deaths > 0:
		fmt.Printf("ended%s\n", counts(next, o.from))
	default:
		fail(fmt.Errorf("short: messages per producer%s, want %d each", counts(next, o.from), count-o.from))
	}
	_ = c.Close()
	_ = r.Close()
}

// counts lists the number of messages each producer delivered, each after
// a space.
func counts(next []uint64, from uint64) string {
	var b []byte
	for _, n := range next {
		b = fmt.Appendf(b, " %d", n-from)
	}
	return string(b)
}

// check opens the ring, attaches a consumer and reads one message, waiting
// up to a second.
func check(name string) {
	r, err := ring.Open(name, nil)
	if err != nil {
		fail(err)
	}
	c, err := r.Consumer()
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m, err := c.ReadContext(ctx)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Println("empty")
	case err != nil:
		fail(err)
	default:
		fmt.Printf("ok %d\n", len(m))
		_ = c.Release()
	}
	_ = c.Close()
	_ = r.Close()
}

// garbage writes one bad record of the given kind at T of a single-producer
// ring, through the segment's bytes as a stranger would, and moves T past it
// (or, for past, by 16 bytes only).
func garbage(name, kind string) {
	r, err := ring.Open(name, nil)
	if err != nil {
		fail(err)
	}
	defer r.Close()
	if r.MultiProducer() {
		fail(errors.New("garbage: not a single-producer ring"))
	}
	b := r.Segment().Bytes()
	le := binary.NativeEndian
	d := le.Uint64(b[40:])
	t := le.Uint64(b[64:])
	capacity := uint64(r.Capacity())
	length, typ, step := int32(0), int32(1), uint64(16)
	switch kind {
	case "long":
		length = int32(r.MaxMessage() + 16)
		step = (uint64(length) + 7) &^ 7
	case "past":
		length = 1000
	case "short":
		length = 4
	case "type":
		length, typ = 16, 7
	case "negative":
		length = -16
	default:
		fail(fmt.Errorf("unknown garbage %q", kind))
	}
	if capacity-t%capacity < step {
		fail(errors.New("garbage: no room before the end of the data area"))
	}
	le.PutUint64(b[d+t%capacity:], uint64(uint32(length))|uint64(uint32(typ))<<32)
	le.PutUint64(b[64:], t+step) // no consumer is attached yet: a plain store

	fmt.Println("ok")
}

// benchRead consumes messages in place until EOF, touching each one's first
// and last byte, and reports their number and bytes.
func benchRead(name string) {
	r, err := ring.Open(name, nil)
	if err != nil {
		fail(err)
	}
	c, err := r.Consumer()
	if err != nil {
		fail(err)
	}
	fmt.Println("ready")
	var count, total int
	var sum byte
	for {
		m, err := c.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail(err)
		}
		if len(m) > 0 {
			sum += m[0] + m[len(m)-1]
		}
		count++
		total += len(m)
		if err := c.Release(); err != nil {
			fail(err)
		}
	}
	fmt.Printf("ok %d %d\n", count, total)
	if sum == 1 && count < 0 { // keeps the reads
		fmt.Println(sum)
	}
	_ = c.Close()
	_ = r.Close()
}

// benchSock accepts one connection on the Unix socket path and reads it to
// EOF in 1 MiB reads.
func benchSock(path string) {
	l, err := net.Listen("unix", path)
	if err != nil {
		fail(err)
	}
	defer l.Close()
	fmt.Println("ready")
	conn, err := l.Accept()
	if err != nil {
		fail(err)
	}
	buf := make([]byte, 1<<20)
	total := 0
	for {
		n, err := conn.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(err)
		}
	}
	fmt.Printf("ok %d\n", total)
	_ = conn.Close()
}
