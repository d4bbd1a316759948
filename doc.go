// Package shm maps POSIX shared memory segments into Go programs, without
// cgo, so that processes on one host can share memory: Go programs with each
// other, and with C programs using shm_open and Python programs using
// multiprocessing.shared_memory.
//
// One process creates a named segment and others open it by name; each maps
// it and reads and writes it as ordinary memory:
//
//	s, err := shm.Create("/demo", 4096) // process A
//	...
//	s, err := shm.Open("/demo")         // process B
//	copy(s.Bytes(), "hello")
//
// # Names
//
// A name is one path element with an optional leading slash: "demo" and
// "/demo" name the same segment, and [Segment.Name] returns "/demo". The
// empty name, ".", "..", names with a slash after the first byte or a NUL
// byte, and names longer than the platform's limit (255 bytes after the
// slash on Linux, 31 bytes counting it on macOS) are refused with an error
// matching fs.ErrInvalid. Every error from a call that takes a name is an
// *fs.PathError whose Op is the C call that failed ("shm_open", "ftruncate",
// "fallocate", "mmap", "shm_unlink") and whose Path is the canonical name.
// Use errors.Is with fs.ErrExist, fs.ErrNotExist, fs.ErrPermission,
// fs.ErrInvalid and fs.ErrClosed.
//
// Shared memory names are a global namespace, and on Linux /dev/shm is
// world-writable. Open never follows a symbolic link, never blocks on a FIFO
// planted under a name, and accepts only a shared memory object.
//
// # Lifetime
//
// A segment exists until its name is removed with [Unlink] and the last
// process has unmapped it. Closing a [Segment] unmaps it in this process
// only; a name that nobody unlinks outlives every process, including one
// that crashed. Decide which process owns the name and unlinks it.
// [CreateTemp] picks a fresh random name. The command shmctl
// (cmd/shmctl) lists segments with the processes that use them, and
// "shmctl gc" removes those that no live process uses and that have not
// changed for a while (-age, default an hour); both work on Linux only.
// A process uses a segment when /proc shows it mapped or open (a live
// thread's lists, if the main thread has exited), or when a presence lock
// of this package is held on it, which is seen across PID namespaces.
//
// [CreateAnonymous] makes a segment with no name, freed with its last
// descriptor and mapping; share it with [SendSegment] and [ReceiveSegment]
// over a Unix socket. On Linux, seals ([Segment.AddSeals]) let a receiver
// trust that the size never changes under it, so it cannot be hit by SIGBUS.
//
// [Create] makes a segment whose memory is zero-filled. On Linux the name
// appears only once the segment is fully sized (it is made with O_TMPFILE
// and published with linkat), its pages are reserved with fallocate so a full
// /dev/shm fails at Create with ENOSPC instead of killing the program with
// SIGBUS later, and its mode is exactly the one asked for, whatever the
// umask. [OpenFile] with O_CREATE but not O_EXCL is race-free: exactly one
// process creates, and all of them get the same fully sized segment.
//
// # Memory safety
//
// [Segment.Bytes] is the mapping itself. It, and every pointer and slice
// derived from it by [View] and [Slice], is valid only until [Segment.Close];
// using it afterwards is undefined and the library cannot catch it.
//
// Shared memory has no built-in locking: two processes writing the same bytes
// race, and the Go race detector cannot see the other process. Use
// sync/atomic types inside shared structs, or a [Mutex] or [Semaphore] that
// lives in the segment.
//
// On Linux another process may shrink a segment with ftruncate. Touching
// memory past the new end then raises SIGBUS, which Go cannot recover from
// in ordinary code: the program dies. [Segment.ReadAt] and [Segment.WriteAt]
// are the safe path: they check bounds and turn such a fault into an error
// wrapping syscall.EFAULT (using runtime/debug.SetPanicOnFault for the
// duration of the copy), and they may run concurrently with Close. Direct
// access through Bytes, View and Slice is as fast as memory gets and is not
// protected. Treat whatever another process wrote as untrusted input.
//
// # Views
//
// [View] and [Slice] give typed access to structs and arrays in the segment.
// They check that the segment is open, that the range is in bounds (in
// overflow-safe arithmetic), that the offset suits the type's alignment, and
// that the type holds no Go pointers anywhere inside it: no pointers,
// slices, strings, maps, channels, funcs, interfaces or unsafe.Pointer. A
// pointer is an address in one process and means nothing in another; such
// types are refused with an error wrapping [ErrPointers] that names the
// field. A type is checked once; later calls do not allocate.
//
// Lay out shared structs with fixed-size types (int32, uint64, [16]byte, not
// int or uintptr, whose sizes differ between 32- and 64-bit peers), and
// remember that C and Python peers must agree on the same layout.
//
// # Synchronisation
//
// Shared memory has no locking of its own. [Mutex] and [Semaphore] are
// process-shared primitives meant to be placed inside a segment with [View],
// typically as fields of a header struct next to the data they guard. They
// hold no pointers and their zero values are ready to use (an unlocked
// mutex, a count of 0), so a newly created, zero-filled segment needs no
// initialisation. Uncontended operations are atomic instructions; waiters
// sleep in the kernel through [Wait] and [Wake], which are exported for
// building other primitives on 32-bit words in shared memory.
//
// A Mutex records the process that holds it by its token ([ProcessToken]).
// A waiting process has the kernel tell it when that process no longer maps
// the segment ([Segment.AfterPeer]); if it died without unlocking, the waiter
// takes the lock over and [Mutex.LockContext] reports [ErrOwnerDead] with the
// lock held: the data the lock guarded may be inconsistent and should be
// checked before unlocking. [Mutex.Lock] takes over silently. On Linux this
// holds across PID namespaces (see Peer liveness below). [Semaphore.Post]
// fails with [ErrSemaphoreOverflow] at a count of math.MaxInt32.
//
// # Peer liveness
//
// Shared words that name a process hold its token, and [Segment.PeerAlive]
// and [Segment.AfterPeer] say whether, and when no longer, that process maps
// the segment. On Linux the answer is a lock the kernel keeps: each writable
// mapping holds an open file description lock (fcntl F_OFD_SETLK) on a byte
// of the segment's file past its end, derived from the token, which the
// kernel drops only when the mapping's descriptor is closed or the whole
// process is gone, whatever its PID namespace and whichever of its threads
// exits first. A live process is never reported dead. Elsewhere the token
// is the PID and start time, which is valid within one PID namespace.
//
// # Message ring
//
// Package github.com/mindmeld-go/shm/ring builds a message ring on this
// package: one consumer, one or many producers, in separate processes.
// Messages are copied in and out with Send and Receive, or written and read
// in place with Claim/Commit and Read/Release. A busy ring makes no system
// calls; a waiting end spins, then sleeps with [Wait], and is woken with
// [Wake] only when it sleeps. Closing an end is seen by the other (io.EOF,
// ErrPeerClosed); a peer that dies is detected within a bounded time
// (ErrPeerDead). Everything read from the segment is validated
// (ErrCorrupt). The layout is documented for C and Python peers.
//
// # Platforms
//
// Linux uses files in /dev/shm directly, as glibc does; Wait is futex(2) in
// its shared form, and a peer's liveness is an OFD lock on the segment.
//
// macOS calls libSystem's shm_open, shm_unlink, mincore and
// __ulock_wait/__ulock_wake without cgo. There a segment can be sized only
// once, its size is rounded up to a page, names are limited to 31 bytes
// counting the slash, segments cannot be listed, and a new name exists,
// empty, until the creator has sized it ([OpenFile] with O_CREATE waits that
// out; a plain [Open] in that moment fails with fs.ErrInvalid).
//
// FreeBSD uses the shm_open2 system call and _umtx_op; a dead lock owner is
// detected by PID and start time on 64-bit systems only. As on macOS, a new name exists until it is
// sized.
//
// Anonymous segments are a memfd on Linux, a SHM_ANON object on FreeBSD and a
// name unlinked at once on macOS. Seals exist on Linux only. [Segment.Lock],
// [Segment.Prefault], [Segment.Advise] and [Segment.Resident] work on all
// three; the huge-page advice is Linux only.
//
// On every other system the package compiles: calls that create, open, map,
// pass or remove a segment return an error matching errors.ErrUnsupported,
// and [Wait] polls, so a [Mutex] or [Semaphore] works there but a dead owner
// is never detected.
package shm
