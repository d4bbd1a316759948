// Command ringpeer is the Go ring peer of the cross-language tests, with the
// command line of python/tests/ringpeer.py and c/tests/ringpeer.c:
//
//	ringpeer create NAME CAP MAXMSG NSLOTS
//	ringpeer unlink NAME
//	ringpeer produce NAME ID COUNT SEED MAXLEN [zerocopy]
//	ringpeer consume NAME NPROD COUNT SEED MAXLEN [zerocopy]   (prints "ok N")
//	ringpeer hold-consumer NAME | hold-producer NAME           (prints "ready", sleeps)
//	ringpeer bench-read NAME                 (reads in place until EOF; prints "ready", then "ok N BYTES")
//	ringpeer bench-sock PATH                 (accepts one Unix connection, reads to EOF; prints "ok BYTES")
//
// Message k of producer p is Message(p, k, seed, maxlen).
package main

import (
	"bytes"
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
		fail(errors.New("usage: ringpeer create|unlink|produce|consume|hold-consumer|hold-producer NAME [ARGS]"))
	}
	name := a[1]
	zc := len(a) > 6 && a[6] == "zerocopy"
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
	case "produce":
		produce(name, uint32(num(a[2])), num(a[3]), num(a[4]), int(num(a[5])), zc)
	case "consume":
		consume(name, int(num(a[2])), num(a[3]), num(a[4]), int(num(a[5])), zc)
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

func produce(name string, id uint32, count, seed uint64, maxlen int, zc bool) {
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
		m = message(m, id, k, seed, maxlen)
		if zc {
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

func consume(name string, nprod int, count, seed uint64, maxlen int, zc bool) {
	r, err := ring.Open(name, nil)
	if err != nil {
		fail(err)
	}
	c, err := r.Consumer()
	if err != nil {
		fail(err)
	}
	next := make([]uint64, nprod)
	buf := make([]byte, maxlen)
	var want []byte
	total := 0
	for {
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
			fmt.Println("peer-dead")
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
	for p, n := range next {
		if n != count {
			fail(fmt.Errorf("producer %d: %d messages, want %d", p, n, count))
		}
	}
	fmt.Printf("ok %d\n", total)
	_ = c.Close()
	_ = r.Close()
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
