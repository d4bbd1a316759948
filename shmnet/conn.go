package shmnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/ring"
)

// Network is the network name of this package's addresses ([Addr.Network])
// and of the errors its connections return ([net.OpError.Net]).
const Network = "shm"

// An Addr is the address of one end of a connection: the Unix socket's
// name (a path, or "@name" for a Linux abstract name) and, where known,
// the process on that end.
type Addr struct {
	// Name is the rendezvous socket's address; "" for a dialing end seen
	// from the listener.
	Name string
	// PID is the process at this end, from the socket's peer credentials
	// for a remote address, 0 if unknown.
	PID int
}

// Network returns "shm".
func (a Addr) Network() string { return Network }

// String returns Name, or "pid N" for an address without a name.
func (a Addr) String() string {
	if a.Name == "" && a.PID > 0 {
		return fmt.Sprintf("pid %d", a.PID)
	}
	return a.Name
}

// Cred is the identity of the process at the other end of a connection, as
// the kernel recorded it when the connection was made (SO_PEERCRED on
// Linux, LOCAL_PEERCRED on macOS and FreeBSD).
type Cred struct {
	PID int // -1 where the system does not say (FreeBSD)
	UID int
	GID int
}

// A Conn is a connection over shared memory. It implements [net.Conn].
type Conn struct {
	sock  *net.UnixConn
	tx    *ring.Ring // we produce
	rx    *ring.Ring // we consume
	prod  *ring.Producer
	cons  *ring.Consumer
	chunk int // largest message Write sends

	local, remote Addr
	cred          Cred
	credErr       error

	ctx    context.Context // cancelled when the peer goes, and by Close
	cancel context.CancelFunc
	peer   atomic.Int32 // peerAlive, peerClosed, peerDied
	rdl    *deadline
	wdl    *deadline

	// Doorbells, one word past each ring in its segment (see trailer):
	// rbell is set by us before we park in Read, wbell by the peer.
	rbell, wbell *atomic.Uint32
	bell         chan struct{} // a doorbell byte arrived on the socket
	closing      chan struct{} // closed when Close begins
	polling      bool

	rmu  sync.Mutex // serialises Read; guards pend
	pend []byte     // rest of the message Read returned from the ring, not yet released
	wmu  sync.Mutex // serialises Write

	closed    atomic.Bool
	watchDone chan struct{}
}

const (
	peerAlive = iota
	peerClosed
	peerDied
)

// byeByte is written on the socket by Close before closing it: the end of
// file after it is a Close, without it a crash. bellByte wakes a peer
// parked in Read.
const (
	byeByte  = 'C'
	bellByte = 'W'
)

// A trailer follows each ring in its segment, at [trailerOffset]: the
// doorbell word of the ring's reader, 1 while it is parked (or about to
// park) waiting for the socket. It is this package's, not the ring's: the
// ring's layout ends before it.
type trailer struct {
	Parked atomic.Uint32
	_      [15]uint32
}

const trailerSize = 64

// trailerOffset returns the offset of the trailer after a ring of the
// given capacity.
func trailerOffset(capacity int) int {
	return (ring.Size(capacity, nil) + 63) &^ 63
}

func newConn(sock *net.UnixConn, tx, rx *ring.Ring, prod *ring.Producer, cons *ring.Consumer, polling bool, local, remote Addr, cred Cred, credErr error) (*Conn, error) {
	chunk := tx.Capacity() / 4
	if m := tx.MaxMessage(); chunk > m {
		chunk = m
	}
	wt, err := shm.View[trailer](tx.Segment(), trailerOffset(tx.Capacity()))
	if err != nil {
		return nil, err
	}
	rt, err := shm.View[trailer](rx.Segment(), trailerOffset(rx.Capacity()))
	if err != nil {
		return nil, err
	}
	c := &Conn{
		sock: sock, tx: tx, rx: rx, prod: prod, cons: cons, chunk: chunk,
		rbell: &rt.Parked, wbell: &wt.Parked, bell: make(chan struct{}, 1),
		closing: make(chan struct{}), polling: polling,
		local: local, remote: remote, cred: cred, credErr: credErr,
		watchDone: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.rdl = newDeadline(c.ctx)
	c.wdl = newDeadline(c.ctx)
	go c.watch()
	return c, nil
}

// watch reads the socket until its end: the peer has closed (a bye byte
// came first) or died. Anything else the peer writes is ignored.
func (c *Conn) watch() {
	defer close(c.watchDone)
	var buf [64]byte
	bye := false
	for {
		n, err := c.sock.Read(buf[:])
		for _, b := range buf[:n] {
			switch b {
			case byeByte:
				bye = true
			case bellByte:
				select {
				case c.bell <- struct{}{}:
				default:
				}
			}
		}
		if err != nil {
			break
		}
	}
	if c.closed.Load() {
		return
	}
	if bye {
		c.peer.Store(peerClosed)
	} else {
		c.peer.Store(peerDied)
	}
	c.cancel()
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: Network, Source: c.local, Addr: c.remote, Err: err}
}

// errPeerDied is the error of a Read or Write after the peer process died
// without closing.
var errPeerDied = fmt.Errorf("shmnet: peer process died: %w: %w", ring.ErrPeerDead, syscall.ECONNRESET)

// Read reads data that the peer wrote: what has arrived, up to len(p),
// blocking until something has. After the peer's Close it returns io.EOF
// once the data in flight has been read; after the peer's death, an error
// matching [ring.ErrPeerDead] and syscall.ECONNRESET. A corrupt ring gives
// an error matching [ring.ErrCorrupt], a passed read deadline one matching
// os.ErrDeadlineExceeded, and a closed Conn one matching net.ErrClosed.
func (c *Conn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.closed.Load() {
			return 0, c.opErr("read", net.ErrClosed)
		}
		ctx, expired := c.rdl.context()
		if expired {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		if len(p) == 0 {
			return 0, nil
		}
		if len(c.pend) > 0 {
			n := copy(p, c.pend)
			c.pend = c.pend[n:]
			if len(c.pend) == 0 {
				c.pend = nil
				c.cons.Release()
			}
			return n, nil
		}
		msg, err := c.next(ctx)
		if errors.Is(err, ring.ErrEmpty) {
			peer := c.peer.Load()
			if peer == peerAlive {
				continue // a deadline, a doorbell or Close: seen above
			}
			// The peer published everything before its socket closed:
			// what this poll does not find will never come.
			msg, err = c.cons.TryRead()
			if errors.Is(err, ring.ErrEmpty) {
				if peer == peerClosed {
					return 0, io.EOF
				}
				return 0, c.opErr("read", errPeerDied)
			}
		}
		if err != nil {
			return 0, c.readErr(err)
		}
		if len(msg) == 0 {
			c.cons.Release()
			continue
		}
		n := copy(p, msg)
		if n < len(msg) {
			c.pend = msg[n:]
		} else {
			c.cons.Release()
		}
		return n, nil
	}
}

// Waiting in Read: spin this many polls of the ring (yielding every
// spinYield) before parking.
const (
	spinPolls = 1000
	spinYield = 64
)

// next returns the next message from the ring, waiting for one. It
// returns ring.ErrEmpty, with nothing read, once ctx is done, the peer
// has gone, Close has begun or a doorbell woke it: the caller looks at
// why and calls again.
//
// It spins first, and then parks on a channel that the socket's reader
// feeds, having set the doorbell word the peer's Write checks: a parked
// Read holds no thread and wakes only when data comes. (The ring's own
// blocking Read would sleep on a futex, which holds a thread and wakes
// once a second to look at its peers: measured here, 100 idle
// connections cost 2% of a core that way.) The word's store, a full
// barrier, comes before the last poll, and the peer's Write publishes
// before it swaps the word: one of the two sees the other (Dekker).
func (c *Conn) next(ctx context.Context) ([]byte, error) {
	done := ctx.Done()
	for i := 1; ; i++ {
		msg, err := c.cons.TryRead()
		if err == nil || !errors.Is(err, ring.ErrEmpty) {
			return msg, err
		}
		if c.peer.Load() != peerAlive || c.closed.Load() {
			return nil, ring.ErrEmpty
		}
		select {
		case <-done:
			return nil, ring.ErrEmpty
		default:
		}
		if i%spinYield == 0 {
			runtime.Gosched()
		}
		if c.polling || i < spinPolls {
			continue
		}
		c.rbell.Store(1)
		msg, err = c.cons.TryRead()
		if err == nil || !errors.Is(err, ring.ErrEmpty) {
			c.rbell.Store(0)
			return msg, err
		}
		select {
		case <-c.bell:
		case <-done:
		case <-c.closing:
		}
		c.rbell.Store(0)
		return nil, ring.ErrEmpty
	}
}

// ring rings the peer's doorbell if it is parked in Read. The swap is
// a full barrier after the message's publication (see next).
func (c *Conn) ringBell() {
	if c.wbell.CompareAndSwap(1, 0) {
		c.sock.Write([]byte{bellByte})
	}
}

func (c *Conn) readErr(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case c.closed.Load() && errors.Is(err, fs.ErrClosed):
		return c.opErr("read", net.ErrClosed)
	case errors.Is(err, ring.ErrPeerDead):
		c.peer.CompareAndSwap(peerAlive, peerDied) // Write fails from now on
		return c.opErr("read", errPeerDied)
	}
	return c.opErr("read", err)
}

// Write writes p, split into messages of at most a quarter of the ring,
// blocking while the ring is full. It returns the number of bytes sent
// before an error. Write to a peer that has closed or died gives an error
// matching syscall.EPIPE; the other errors are those of Read.
func (c *Conn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := 0
	for {
		if c.closed.Load() {
			return n, c.opErr("write", net.ErrClosed)
		}
		ctx, expired := c.wdl.context()
		if expired {
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		}
		if n == len(p) {
			return n, nil
		}
		switch c.peer.Load() {
		case peerClosed:
			return n, c.opErr("write", fmt.Errorf("shmnet: %w: %w", syscall.EPIPE, ring.ErrPeerClosed))
		case peerDied:
			return n, c.opErr("write", fmt.Errorf("shmnet: %w: %w", syscall.EPIPE, errPeerDied))
		}
		chunk := p[n:min(len(p), n+c.chunk)]
		err := c.prod.TrySend(chunk)
		if errors.Is(err, ring.ErrFull) {
			err = c.prod.SendContext(ctx, chunk)
		}
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			return n, c.writeErr(err)
		}
		c.ringBell()
		n += len(chunk)
	}
}

func (c *Conn) writeErr(err error) error {
	switch {
	case c.closed.Load() && errors.Is(err, fs.ErrClosed):
		return c.opErr("write", net.ErrClosed)
	case errors.Is(err, ring.ErrPeerClosed), errors.Is(err, ring.ErrPeerDead):
		return c.opErr("write", fmt.Errorf("shmnet: %w: %w", syscall.EPIPE, err))
	}
	return c.opErr("write", err)
}

// Close closes the connection. Blocked Read and Write calls return errors
// matching net.ErrClosed. The peer reads the data in flight and then
// io.EOF. A second Close returns an error matching net.ErrClosed.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opErr("close", net.ErrClosed)
	}
	close(c.closing)
	// Closing the ends first unblocks our calls and tells the peer's ring:
	// its Read drains and gets io.EOF, its Write gets ErrPeerClosed.
	c.prod.Close()
	c.cons.Close()
	c.sock.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	c.sock.Write([]byte{byeByte})
	err := c.sock.Close()
	// Wait for running calls to leave the rings' memory before unmapping.
	c.rmu.Lock()
	c.wmu.Lock()
	c.pend = nil
	c.tx.Close()
	c.rx.Close()
	c.wmu.Unlock()
	c.rmu.Unlock()
	c.rdl.stop()
	c.wdl.stop()
	c.cancel()
	<-c.watchDone
	if err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// LocalAddr returns the local end's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines; see [net.Conn].
func (c *Conn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline for Read calls, current and future.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for Write calls, current and future.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.wdl.set(t)
	return nil
}

// PeerCred returns the credentials of the process at the other end, as
// the kernel recorded them when the connection was made. A listener uses
// them to decide whom to serve. On systems without peer credentials the
// error matches errors.ErrUnsupported.
func (c *Conn) PeerCred() (Cred, error) { return c.cred, c.credErr }

// RingSize returns the capacity in bytes of the ring carrying each
// direction: what this end writes, and what it reads.
func (c *Conn) RingSize() (write, read int) { return c.tx.Capacity(), c.rx.Capacity() }
