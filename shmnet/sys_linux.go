package shmnet

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"

	"github.com/mindmeld-go/shm"
	"golang.org/x/sys/unix"
)

const (
	supported = true
	sealable  = true
)

// peerCred reads SO_PEERCRED (unix(7)): the peer's credentials at connect
// (for the dialer) or listen (for the listener) time.
func peerCred(uc *net.UnixConn) (Cred, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return Cred{PID: -1}, err
	}
	var cr *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cr, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{PID: -1}, err
	}
	if serr != nil {
		return Cred{PID: -1}, serr
	}
	return Cred{PID: int(cr.Pid), UID: int(cr.Uid), GID: int(cr.Gid)}, nil
}

// sendSegment sends seg to the peer of uc as [shm.SendSegment] does, but
// with a freshly opened description of its file (through /proc/self/fd).
//
// The ring judges a peer's liveness by an OFD lock that each process's
// mapping takes on the segment's open file description (README,
// "Liveness"). A descriptor passed with SCM_RIGHTS carries the sender's
// description, and OFD locks of one description never conflict: each side
// would take the other for dead. The README's contract is that
// SendSegment sends a fresh description; until it does, this sends one
// itself, in the wire format ReceiveSegment reads (notes/ops.md: 16 bytes,
// "SHM1", flags u32 LE, size u64 LE, with the descriptor as SCM_RIGHTS).
// Once SendSegment reopens, this can call it directly.
func sendSegment(uc *net.UnixConn, seg *shm.Segment) error {
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(seg.Fd()), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return shm.SendSegment(uc, seg) // no /proc: the old way
	}
	defer unix.Close(fd)
	msg := make([]byte, 16)
	copy(msg, "SHM1")
	binary.LittleEndian.PutUint64(msg[8:], uint64(seg.Size()))
	if _, _, err := uc.WriteMsgUnix(msg, unix.UnixRights(fd), nil); err != nil {
		return fmt.Errorf("shmnet: send segment: %w", err)
	}
	return nil
}
