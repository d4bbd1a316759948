"""Conformance peer for SPEC.md in Python, the twin of c/tests/peer.c.

Same roles, same test segment layout: Mutex at 0, uint64 counter at 8
(guarded by the Mutex), Semaphore at 16. Driven by interop_c_test.go and
test_shm.py; every role prints one result line.
"""
import signal
import struct
import sys

import shm


def counter_add(seg, n=1):
    mv = memoryview(seg)
    try:
        (v,) = struct.unpack_from("=Q", mv, 8)
        struct.pack_into("=Q", mv, 8, v + n)
    finally:
        mv.release()


def counter(seg):
    mv = memoryview(seg)
    try:
        return struct.unpack_from("=Q", mv, 8)[0]
    finally:
        mv.release()


def say(line):
    print(line, flush=True)


def main(argv):
    role, args = argv[1], argv[2:]
    if role == "token":
        say(str(shm.token()))
        return 0
    seg = shm.Segment.open(args[0])
    mu = shm.Mutex(seg, 0)
    sem = shm.Semaphore(seg, 16)
    if role == "count":
        for _ in range(int(args[1])):
            with mu:
                counter_add(seg)
        say("done")
    elif role == "hold":
        mu.acquire()
        say("locked %d" % shm.token())
        while True:
            signal.pause()
    elif role == "lockwait":
        say("waiting")
        try:
            got = mu.acquire(timeout=int(args[1]) / 1000.0)
            say("ok" if got else "timeout")
        except shm.OwnerDeadError:
            got = True
            say("ownerdead")
        if got:
            mu.release()
    elif role == "post":
        for _ in range(int(args[1])):
            sem.release()
        say("posted")
    elif role == "take":
        n = int(args[1])
        for i in range(n):
            if not sem.acquire(timeout=10):
                say("timed out at %d" % i)
                return 1
        if sem.acquire(blocking=False):
            say("took one more than was posted")
            return 1
        say("took %d" % n)
    elif role == "alive":
        say("alive %d" % seg.peer_alive(int(args[1])))
    else:
        print("peer.py: unknown role", role, file=sys.stderr)
        return 2
    del mu, sem
    seg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
