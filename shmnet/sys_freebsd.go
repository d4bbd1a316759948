package shmnet

const localPeerPID = -1 // unused: FreeBSD has no LOCAL_PEERPID
