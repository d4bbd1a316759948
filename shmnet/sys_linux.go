package shmnet

import (
	"net"

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
