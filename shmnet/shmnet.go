package shmnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/ring"
)

// Defaults.
const (
	// DefaultRingSize is the capacity of each direction's ring when the
	// Dialer does not say: 128 KiB, so that a connection holds about 257
	// KiB of shared memory and 1,000 connections about 256 MiB.
	DefaultRingSize = 128 << 10
	// DefaultMaxRingSize is the largest ring a listener accepts when its
	// ListenConfig does not say: 64 MiB per direction.
	DefaultMaxRingSize = 64 << 20
	// DefaultHandshakeTimeout bounds a listener's wait for a dialer to
	// pass its segments.
	DefaultHandshakeTimeout = 10 * time.Second
	// MinRingSize is the smallest ring size accepted.
	MinRingSize = 4096
)

// ErrHandshake is wrapped by every error of a connection that could not be
// set up: returned by Dial, and passed to [ListenConfig.HandshakeError] on
// the listener's side.
var ErrHandshake = errors.New("shmnet: handshake failed")

// Handshake replies, one byte from the listener.
const (
	replyOK    = 'K'
	replyError = 'E'
)

// A Dialer holds the options for dialing. The zero value is usable.
type Dialer struct {
	// RingSize is the capacity in bytes of each direction's ring, a power
	// of two of at least [MinRingSize]; 0 means [DefaultRingSize]. A
	// listener refuses rings above its [ListenConfig.MaxRingSize].
	RingSize int
	// Polling makes this end's waits spin instead of sleeping in the
	// kernel: lowest latency, a busy core per waiting Read or Write.
	Polling bool
}

// Dial connects to the listener at address (a Unix socket path, or on
// Linux "@name" for an abstract name) with the default options.
func Dial(address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(context.Background(), address)
}

// DialContext is Dial with a context that bounds the whole set-up. It has
// the signature grpc.WithContextDialer and http.Transport.DialContext's
// address argument need, once wrapped.
func DialContext(ctx context.Context, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(ctx, address)
}

// Dial connects to the listener at address.
func (d *Dialer) Dial(address string) (net.Conn, error) {
	return d.DialContext(context.Background(), address)
}

// DialContext connects to the listener at address; ctx bounds the set-up,
// not the connection. The result is a *[Conn]. Errors are *net.OpError;
// a listener that refused the connection gives one matching [ErrHandshake].
func (d *Dialer) DialContext(ctx context.Context, address string) (net.Conn, error) {
	c, err := d.dial(ctx, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: Network, Addr: Addr{Name: address}, Err: err}
	}
	return c, nil
}

func (d *Dialer) dial(ctx context.Context, address string) (*Conn, error) {
	if !supported {
		return nil, fmt.Errorf("shmnet: %w on %s", errors.ErrUnsupported, runtime.GOOS)
	}
	size := d.RingSize
	if size == 0 {
		size = DefaultRingSize
	}
	if size < MinRingSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("shmnet: ring size %d is not a power of two of at least %d", size, MinRingSize)
	}
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "unix", address)
	if err != nil {
		return nil, err
	}
	uc := nc.(*net.UnixConn)
	ok := false
	var tx, rx *ring.Ring
	defer func() {
		if !ok {
			uc.Close()
			if tx != nil {
				tx.Close()
			}
			if rx != nil {
				rx.Close()
			}
		}
	}()
	if dl, has := ctx.Deadline(); has {
		uc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { uc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	opts := &ring.Options{Polling: d.Polling}
	if tx, err = newRing(size, opts); err != nil {
		return nil, err
	}
	if rx, err = newRing(size, opts); err != nil {
		return nil, err
	}
	prod, err := tx.Producer()
	if err != nil {
		return nil, err
	}
	cons, err := rx.Consumer()
	if err != nil {
		return nil, err
	}
	sendErr := sendSegment(uc, tx.Segment())
	if sendErr == nil {
		sendErr = sendSegment(uc, rx.Segment())
	}
	// Read the reply even when sending failed: a listener that refused
	// the first segment says why before it hangs up.
	var b [1]byte
	if _, err := io.ReadFull(uc, b[:]); err != nil {
		if sendErr != nil {
			return nil, ctxErr(ctx, sendErr)
		}
		return nil, ctxErr(ctx, fmt.Errorf("%w: no reply from the listener: %w", ErrHandshake, err))
	}
	if b[0] != replyOK || sendErr != nil {
		msg, _ := io.ReadAll(io.LimitReader(uc, 512))
		switch {
		case b[0] == replyError:
			return nil, fmt.Errorf("%w: refused by the listener: %s", ErrHandshake, msg)
		case sendErr != nil:
			return nil, ctxErr(ctx, sendErr)
		}
		return nil, fmt.Errorf("%w: the listener replied %q, not a shmnet listener?", ErrHandshake, append(b[:], msg...))
	}
	if !stop() {
		return nil, ctx.Err()
	}
	if err := uc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	cred, credErr := peerCred(uc)
	c, err := newConn(uc, tx, rx, prod, cons, d.Polling, Addr{}, Addr{Name: address, PID: cred.PID}, cred, credErr)
	if err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// ctxErr returns ctx's error if ctx is done (the socket's deadline was
// moved to the past by it), else err.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// newRing makes a ring of the given capacity in a new anonymous segment
// sealed against resizing.
func newRing(capacity int, opts *ring.Options) (*ring.Ring, error) {
	seg, err := shm.CreateAnonymous(trailerOffset(capacity) + trailerSize)
	if err != nil {
		return nil, err
	}
	if sealable {
		if err := seg.AddSeals(shm.SealShrink | shm.SealGrow | shm.SealSeal); err != nil {
			seg.Close()
			return nil, err
		}
	}
	r, err := ring.CreateIn(seg, capacity, opts)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return r, nil
}

// A ListenConfig holds the options for listening. The zero value is
// usable.
type ListenConfig struct {
	// MaxRingSize is the largest ring capacity accepted from a dialer, per
	// direction; 0 means [DefaultMaxRingSize].
	MaxRingSize int
	// HandshakeTimeout bounds the wait for a dialer's segments; 0 means
	// [DefaultHandshakeTimeout].
	HandshakeTimeout time.Duration
	// Polling makes the accepted connections' waits spin instead of
	// sleeping in the kernel.
	Polling bool
	// HandshakeError, if set, is called (from the connection's own
	// goroutine) with the error of each incoming connection that could
	// not be set up: garbage on the socket, a segment without seals, of
	// the wrong size or not a ring. The error matches [ErrHandshake].
	// Such connections are closed and never returned by Accept, so that
	// one bad client cannot stop a server's Accept loop.
	HandshakeError func(err error)
}

// A Listener accepts connections over shared memory. It implements
// [net.Listener].
type Listener struct {
	ul   *net.UnixListener
	addr Addr
	cfg  ListenConfig

	conns chan *Conn
	done  chan struct{}
	errc  chan error // the accept loop's fatal error

	mu      sync.Mutex
	pending map[*net.UnixConn]struct{}
	closed  bool
	wg      sync.WaitGroup
	once    sync.Once
}

// Listen listens on address, a Unix socket path (which must not exist) or
// on Linux "@name" for an abstract name, with the default options.
func Listen(address string) (*Listener, error) {
	var lc ListenConfig
	return lc.Listen(address)
}

// Listen listens on address. Errors are *net.OpError.
func (lc *ListenConfig) Listen(address string) (*Listener, error) {
	if !supported {
		return nil, &net.OpError{Op: "listen", Net: Network, Addr: Addr{Name: address}, Err: fmt.Errorf("shmnet: %w on %s", errors.ErrUnsupported, runtime.GOOS)}
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: address, Net: "unix"})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: Network, Addr: Addr{Name: address}, Err: err}
	}
	ul.SetUnlinkOnClose(true)
	l := &Listener{
		ul: ul, addr: Addr{Name: address}, cfg: *lc,
		conns: make(chan *Conn), done: make(chan struct{}), errc: make(chan error, 1),
		pending: make(map[*net.UnixConn]struct{}),
	}
	if l.cfg.MaxRingSize == 0 {
		l.cfg.MaxRingSize = DefaultMaxRingSize
	}
	if l.cfg.HandshakeTimeout == 0 {
		l.cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		uc, err := l.ul.AcceptUnix()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
				// Out of descriptors for now: wait, as net/http's Serve does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
				case <-l.done:
					return
				}
				continue
			}
			l.errc <- err
			return
		}
		backoff = 0
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			uc.Close()
			return
		}
		l.pending[uc] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.handshake(uc)
	}
}

func (l *Listener) handshake(uc *net.UnixConn) {
	defer l.wg.Done()
	c, err := serverHandshake(uc, &l.cfg, l.addr)
	l.mu.Lock()
	delete(l.pending, uc)
	l.mu.Unlock()
	if err != nil {
		if l.cfg.HandshakeError != nil {
			select {
			case <-l.done:
			default:
				l.cfg.HandshakeError(err)
			}
		}
		return
	}
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// serverHandshake receives and checks the dialer's two segments, attaches
// to their rings and replies. On error uc is closed.
func serverHandshake(uc *net.UnixConn, cfg *ListenConfig, local Addr) (c *Conn, err error) {
	cred, credErr := peerCred(uc)
	var tx, rx *ring.Ring
	defer func() {
		if err == nil {
			return
		}
		if tx != nil {
			tx.Close()
		}
		if rx != nil {
			rx.Close()
		}
		msg := err.Error()
		uc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		uc.Write(append([]byte{replyError}, msg[:min(len(msg), 500)]...))
		uc.Close()
		who := "a client"
		if credErr == nil {
			who = fmt.Sprintf("pid %d (uid %d)", cred.PID, cred.UID)
		}
		err = fmt.Errorf("%w: with %s on %s: %w", ErrHandshake, who, local.Name, err)
	}()
	if err := uc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	ropts := &shm.ReceiveOptions{MaxSize: ring.Size(cfg.MaxRingSize, nil) + 64<<10} // room for page rounding
	if sealable {
		ropts.RequireSeals = shm.SealShrink | shm.SealGrow
	}
	opts := &ring.Options{Polling: cfg.Polling}
	open := func(what string) (*ring.Ring, error) {
		seg, err := shm.ReceiveSegment(uc, ropts)
		if err != nil {
			return nil, fmt.Errorf("%s segment: %w", what, err)
		}
		r, err := ring.OpenIn(seg, opts)
		if err != nil {
			seg.Close()
			return nil, fmt.Errorf("%s segment: %w", what, err)
		}
		if r.Capacity() < MinRingSize || r.Capacity() > cfg.MaxRingSize || r.MultiProducer() {
			r.Close()
			return nil, fmt.Errorf("%s segment: a ring of %d bytes (multi-producer %v), want a single-producer ring of %d to %d bytes", what, r.Capacity(), r.MultiProducer(), MinRingSize, cfg.MaxRingSize)
		}
		if need := trailerOffset(r.Capacity()) + trailerSize; seg.Size() < need {
			r.Close()
			return nil, fmt.Errorf("%s segment: %d bytes, a ring of %d bytes and its trailer need %d", what, seg.Size(), r.Capacity(), need)
		}
		return r, nil
	}
	if rx, err = open("first (dialer to listener)"); err != nil {
		return nil, err
	}
	if tx, err = open("second (listener to dialer)"); err != nil {
		return nil, err
	}
	cons, err := rx.Consumer()
	if err != nil {
		return nil, err
	}
	prod, err := tx.Producer()
	if err != nil {
		return nil, err
	}
	if _, err := uc.Write([]byte{replyOK}); err != nil {
		return nil, err
	}
	if err := uc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return newConn(uc, tx, rx, prod, cons, cfg.Polling, local, Addr{PID: cred.PID}, cred, credErr)
}

// Accept waits for the next connection, set up and checked, and returns
// it as a *[Conn]. After Close it returns an error matching net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptShm()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptShm is Accept returning the *Conn.
func (l *Listener) AcceptShm() (*Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
	case err := <-l.errc:
		l.errc <- err
		return nil, &net.OpError{Op: "accept", Net: Network, Addr: l.addr, Err: err}
	}
	return nil, &net.OpError{Op: "accept", Net: Network, Addr: l.addr, Err: net.ErrClosed}
}

// Close stops listening and removes the socket file. Connections being set
// up are dropped; accepted connections stay open. A second Close returns
// an error matching net.ErrClosed.
func (l *Listener) Close() error {
	err := error(net.ErrClosed)
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.done)
		for uc := range l.pending {
			uc.SetDeadline(time.Unix(1, 0))
		}
		l.mu.Unlock()
		err = l.ul.Close()
		l.wg.Wait()
	})
	if err != nil {
		return &net.OpError{Op: "close", Net: Network, Addr: l.addr, Err: err}
	}
	return nil
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.addr }
