//go:build !linux && !darwin && !freebsd

package shm

import (
	"errors"
	"fmt"
	"net"
)

// SendSegment sends the segment's descriptor to the peer of c. This platform
// cannot: it returns an error matching errors.ErrUnsupported.
func SendSegment(c *net.UnixConn, s *Segment) error {
	return fmt.Errorf("shm: send segment: %w", errors.ErrUnsupported)
}

// ReceiveSegment receives a segment from the peer of c. This platform
// cannot: it returns an error matching errors.ErrUnsupported.
func ReceiveSegment(c *net.UnixConn, opts *ReceiveOptions) (*Segment, error) {
	return nil, fmt.Errorf("shm: receive segment: %w", errors.ErrUnsupported)
}
