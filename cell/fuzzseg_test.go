package cell

import "github.com/mindmeld-go/shm"

func newFuzzSegment() (*shm.Segment, error) { return shm.CreateAnonymous(4096) }
