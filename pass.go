package shm

import (
	"encoding/binary"
	"fmt"
	"io/fs"
)

// ReceiveOptions are the checks [ReceiveSegment] makes beyond those it always
// makes. The zero value asks for nothing more.
type ReceiveOptions struct {
	// RequireSeals lists seals the segment must carry (Linux only; on other
	// systems any seal required is an error). Require SealShrink, or
	// SealSize, to be sure the sender can never shrink the segment under
	// this process's mapping, which would make touching it raise SIGBUS.
	RequireSeals Seal
	// ReadOnly maps the segment read-only even when the descriptor allows
	// writing.
	ReadOnly bool
	// MaxSize, when positive, is the largest segment accepted, in bytes.
	MaxSize int
}

// The message SendSegment writes: the descriptor as SCM_RIGHTS ancillary
// data, and 16 bytes of data: a magic number, flags and the size, little
// endian.
const (
	passMagic   = "SHM1"
	passLen     = 16
	passFlagRO  = 1 // the descriptor was opened read-only
	maxPassFds  = 64
	errRejected = "shm: received segment rejected"
)

type passHeader struct {
	flags uint32
	size  uint64
}

func (h passHeader) encode() []byte {
	b := make([]byte, passLen)
	copy(b, passMagic)
	binary.LittleEndian.PutUint32(b[4:], h.flags)
	binary.LittleEndian.PutUint64(b[8:], h.size)
	return b
}

func decodePassHeader(b []byte) (passHeader, error) {
	if len(b) != passLen || string(b[:4]) != passMagic {
		return passHeader{}, rejected("the message is not a segment (%d bytes, %q)", len(b), b[:min(len(b), 4)])
	}
	return passHeader{flags: binary.LittleEndian.Uint32(b[4:]), size: binary.LittleEndian.Uint64(b[8:])}, nil
}

// rejected returns an error for a received message that fails a check. It
// matches fs.ErrInvalid.
func rejected(format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", errRejected, fs.ErrInvalid, fmt.Sprintf(format, args...))
}
