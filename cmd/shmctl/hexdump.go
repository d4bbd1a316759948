package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// hexDumper writes bytes in the format of "hexdump -C": an offset, 16 bytes
// in hex in two groups of 8, and the printable ASCII between bars; a line
// equal to the one before it is replaced by a single "*"; the final line is
// the offset just past the end. Offsets are absolute: a dump starting at
// offset 5 begins "00000005", as "hexdump -C -s 5" does.
type hexDumper struct {
	w       *bufio.Writer
	off     int64  // offset of the next line
	line    []byte // bytes of the next line collected so far
	prev    []byte // the last full line written or skipped
	skipped bool   // "*" has been written for the run of lines equal to prev
	started bool
	// endLine prints the final offset even when nothing was dumped, as
	// hexdump does for a start at the end of the file.
	endLine bool
}

func newHexDumper(w io.Writer, off int64) *hexDumper {
	return &hexDumper{w: bufio.NewWriter(w), off: off, line: make([]byte, 0, 16)}
}

func (d *hexDumper) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(16-len(d.line), len(p))
		d.line = append(d.line, p[:k]...)
		p = p[k:]
		if len(d.line) == 16 {
			d.flushLine()
		}
	}
	return n, nil
}

func (d *hexDumper) flushLine() {
	if d.started && len(d.line) == 16 && bytes.Equal(d.line, d.prev) {
		if !d.skipped {
			d.w.WriteString("*\n")
			d.skipped = true
		}
	} else {
		d.writeLine(d.line)
		d.skipped = false
	}
	d.started = true
	d.prev = append(d.prev[:0], d.line...)
	d.off += int64(len(d.line))
	d.line = d.line[:0]
}

func (d *hexDumper) writeLine(b []byte) {
	fmt.Fprintf(d.w, "%08x ", d.off)
	for i := range 16 {
		if i == 8 {
			d.w.WriteByte(' ')
		}
		if i < len(b) {
			fmt.Fprintf(d.w, " %02x", b[i])
		} else {
			d.w.WriteString("   ")
		}
	}
	d.w.WriteString("  |")
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		d.w.WriteByte(c)
	}
	d.w.WriteString("|\n")
}

// Close writes the last partial line and the final offset, if anything was
// dumped, and flushes.
func (d *hexDumper) Close() error {
	if len(d.line) > 0 {
		d.flushLine()
	}
	if d.started || d.endLine {
		fmt.Fprintf(d.w, "%08x\n", d.off)
	}
	return d.w.Flush()
}
