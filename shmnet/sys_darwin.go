package shmnet

import "golang.org/x/sys/unix"

const localPeerPID = unix.LOCAL_PEERPID
