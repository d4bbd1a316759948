//go:build darwin || freebsd

package shm

// shmDir is where Linux keeps segments as files. macOS and FreeBSD keep them
// in a kernel table with no directory, so the tests that plant or truncate
// files in shmDir skip there; this only lets them compile.
const shmDir = "/nonexistent: no shm directory on this system"
