//go:build !linux

package main

import (
	"errors"

	"github.com/mindmeld-go/shm"
)

// writableMappers is Linux only: elsewhere no process list names the
// mappings of a segment.
func writableMappers(seg *shm.Segment) ([]lockProc, error) {
	return nil, errors.New("the processes mapping a segment cannot be listed on this system")
}
