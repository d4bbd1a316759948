//go:build !linux && !darwin && !freebsd

package shmnet

import (
	"errors"
	"net"

	"github.com/mindmeld-go/shm"
)

const (
	supported = false
	sealable  = false
)

func peerCred(*net.UnixConn) (Cred, error) { return Cred{PID: -1}, errors.ErrUnsupported }

func sendSegment(uc *net.UnixConn, seg *shm.Segment) error { return shm.SendSegment(uc, seg) }
