// Package shmnet is a [net.Conn] and a [net.Listener] over shared memory,
// for processes on one host: gRPC, net/http and anything else written
// against net.Conn run over it unchanged.
//
//	l, err := shmnet.Listen("/run/myapp/rpc.sock") // or "@myapp" (Linux abstract name)
//	go http.Serve(l, handler)
//
//	c, err := shmnet.Dial("/run/myapp/rpc.sock")
//
// # How a connection is made
//
// The rendezvous is a Unix socket: a path, or on Linux an abstract name
// beginning with "@". The dialing side creates two anonymous segments
// ([shm.CreateAnonymous]), each holding one [ring] (one per direction),
// seals their size ([shm.SealShrink], [shm.SealGrow], [shm.SealSeal]) and
// passes them with [shm.SendSegment]. The accepting side receives them
// with [shm.ReceiveSegment], requiring the seals on Linux, checks the
// size against its limit and the ring headers, and answers with one byte.
// No name is ever created in /dev/shm, so none can be squatted or left
// behind; the memory is freed when both processes have closed the
// connection or died.
//
// The socket stays open for the life of the connection and carries no
// data. Its end of file is how each side learns at once (not by polling)
// that the other has closed or died: a Close sends one byte on it first,
// so that a crash, which sends none, is told apart from a Close.
//
// # Semantics
//
// A [Conn] follows the net.Conn contract. Read returns what has arrived,
// up to len(p) (stream semantics: message boundaries are not preserved).
// A Write of any size is split into messages of at most a quarter of the
// ring. Close unblocks every blocked Read and Write, which return errors
// matching [net.ErrClosed]. After the peer's Close, Read returns the data
// in flight and then [io.EOF]; after the peer's death it returns the data
// in flight and then an error matching [ring.ErrPeerDead] and
// syscall.ECONNRESET, within milliseconds. Write to a peer that has gone
// fails with an error matching syscall.EPIPE. Deadlines give errors
// matching [os.ErrDeadlineExceeded] whose Timeout method reports true.
// Data the peer corrupted in shared memory gives an error matching
// [ring.ErrCorrupt]. All methods are safe for concurrent use.
//
// # Cost
//
// Each connection holds 2 × ([Options.RingSize] + 448) bytes of shared
// memory, reserved when it is made: with the default of 128 KiB per
// direction, 1,000 connections take about 256 MiB. A Read or Write that
// waits spins for a few microseconds and then sleeps in the kernel (one
// OS thread per sleeping call, as a blocking system call would hold): an
// idle connection costs no CPU. With [Options.Polling] waits never sleep:
// lowest latency, a busy core per waiting call.
//
// # Platforms
//
// Linux, macOS and FreeBSD. On macOS and FreeBSD segments cannot be
// sealed, so the accepting side cannot require seals: it trusts the
// dialing process not to shrink the segments, and the ring's fault guard
// turns a shrink into an error matching [ring.ErrCorrupt]. Elsewhere
// Listen and Dial return errors matching errors.ErrUnsupported.
package shmnet
