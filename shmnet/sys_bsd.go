//go:build darwin || freebsd

package shmnet

import (
	"net"
	"runtime"

	"github.com/mindmeld-go/shm"

	"golang.org/x/sys/unix"
)

const (
	supported = true
	// Only Linux memfds take seals: a listener on macOS or FreeBSD cannot
	// require them (see the package documentation).
	sealable = false
)

// peerCred reads LOCAL_PEERCRED (unix(4) on FreeBSD, xnu
// bsd/kern/uipc_usrreq.c), and on macOS LOCAL_PEERPID for the PID. FreeBSD
// has cr_pid in a union x/sys does not expose: PID is -1 there.
func peerCred(uc *net.UnixConn) (Cred, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return Cred{PID: -1}, err
	}
	cred := Cred{PID: -1}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var x *unix.Xucred
		x, serr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if serr != nil {
			return
		}
		cred.UID = int(x.Uid)
		if x.Ngroups > 0 {
			cred.GID = int(x.Groups[0])
		}
		if runtime.GOOS == "darwin" {
			if pid, err := unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, localPeerPID); err == nil {
				cred.PID = pid
			}
		}
	}); err != nil {
		return Cred{PID: -1}, err
	}
	return cred, serr
}

// sendSegment is shm.SendSegment: without OFD locks, liveness does not
// depend on the open file description (see sys_linux.go).
func sendSegment(uc *net.UnixConn, seg *shm.Segment) error { return shm.SendSegment(uc, seg) }
