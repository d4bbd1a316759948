//go:build !linux && !darwin && !freebsd

package shmnet

import (
	"errors"
	"net"
)

const (
	supported = false
	sealable  = false
)

func peerCred(*net.UnixConn) (Cred, error) { return Cred{PID: -1}, errors.ErrUnsupported }
