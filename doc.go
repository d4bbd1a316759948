// Package shm maps POSIX shared memory segments into Go programs, without
// cgo.
package shm
