"""Python peer of github.com/mindmeld-go/shm.

Shared-memory segments created and opened with the Go package's guards, and
the process-shared ``Mutex`` (layout 2) and ``Semaphore`` (layout 1) of the
wire specification (SPEC.md, spec 1), interoperable with Go and with C
programs using ``c/shm.h``. Built from that header as the C extension
``shm._shm``.

    seg = shm.Segment.create("/demo", 4096)
    mu = shm.Mutex(seg, 0)          # 8 bytes at offset 0
    with mu:
        memoryview(seg)[8] += 1     # the mapping, no copy

Errors from the system are ``OSError`` subclasses with ``errno`` set
(``FileExistsError``, ``FileNotFoundError``, ``PermissionError``...).
``OwnerDeadError`` means a Mutex was taken over, with the lock now held,
from a process that died holding it.

``Ring`` is the byte-message ring of SPEC.md section 9, shared with Go's
``ring`` package and C's ``shm_ring_*``::

    with shm.Ring.create("/q", 1 << 20, 4096) as r, r.producer() as p:
        p.send(b"hi")                  # or: mv = p.claim(n); fill mv; p.commit()

``consumer().receive()`` raises ``RingClosed`` (an ``OSError`` with errno
ENODATA and an ``EOFError``) once every producer closed and the ring is
drained; ``CorruptError`` (``OSError``, errno EBADMSG) for invalid ring
contents; ``OSError(EOWNERDEAD)`` once per producer that died.
"""

from ._shm import (  # noqa: F401
    MUTEX_LAYOUT,
    RING_VERSION,
    Consumer,
    CorruptError,
    Producer,
    Ring,
    RingClosed,
    SEMAPHORE_LAYOUT,
    SPEC_VERSION,
    Mutex,
    OwnerDeadError,
    Segment,
    Semaphore,
    token,
)

__all__ = [
    "Segment",
    "Ring",
    "Producer",
    "Consumer",
    "RingClosed",
    "CorruptError",
    "RING_VERSION",
    "Mutex",
    "Semaphore",
    "OwnerDeadError",
    "token",
    "SPEC_VERSION",
    "MUTEX_LAYOUT",
    "SEMAPHORE_LAYOUT",
]
