"""64-byte message throughput, Python process to Python process: shm.Ring
against multiprocessing.Queue and multiprocessing.Pipe. Prints msgs/s and
the ratios;

    python bench/pybench.py [N [N_1MIB]] [--json] [--go-peer EXE]

then 1 MiB messages Python -> Go (internal/ringpeer, built with go build)
through the ring against a Unix socket, twice: each message filled in place
(in the claim; in the socket's send buffer) and a prebuilt payload copied
(see bench_go_1mib). cmd/xlangbench -python runs it with --json.
"""
import multiprocessing as mp
import os
import time

import shm

MSG = b"x" * 64


def ring_producer(name, n):
    with shm.Ring.open(name) as r, r.producer() as p:
        for _ in range(n):
            p.send(MSG)


def queue_producer(q, n):
    for _ in range(n):
        q.put(MSG)
    q.put(None)


def pipe_producer(c, n):
    for _ in range(n):
        c.send_bytes(MSG)
    c.close()


def bench_ring(n):
    name = "/pybench-%d" % os.getpid()
    r = shm.Ring.create(name, 1 << 20, 1024)
    try:
        c = r.consumer()
        pr = mp.Process(target=ring_producer, args=(name, n))
        t0 = time.perf_counter()
        pr.start()
        got = 0
        while True:
            try:
                c.receive()
            except shm.RingClosed:
                break
            got += 1
        dt = time.perf_counter() - t0
        pr.join()
        c.close()
        assert got == n
        return n / dt
    finally:
        r.close()
        shm.Segment.unlink(name)


def bench_queue(n):
    q = mp.Queue(10000)
    pr = mp.Process(target=queue_producer, args=(q, n))
    t0 = time.perf_counter()
    pr.start()
    while q.get() is not None:
        pass
    dt = time.perf_counter() - t0
    pr.join()
    return n / dt


def bench_pipe(n):
    a, b = mp.Pipe(duplex=False)
    pr = mp.Process(target=pipe_producer, args=(b, n))
    t0 = time.perf_counter()
    pr.start()
    b.close()
    got = 0
    try:
        while True:
            a.recv_bytes()
            got += 1
    except EOFError:
        pass
    dt = time.perf_counter() - t0
    pr.join()
    assert got == n
    return n / dt


def go_peer():
    """Builds internal/ringpeer with go build; returns its path."""
    import subprocess
    import tempfile

    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    exe = os.path.join(tempfile.mkdtemp(), "ringpeer")
    subprocess.check_call(["go", "build", "-o", exe, "./internal/ringpeer"], cwd=repo)
    return exe


try:
    import numpy as _np
except ImportError:  # the fill falls back on ctypes.memset
    _np = None


def fill(buf, value):
    """Writes value into every byte of the writable buffer buf, in place:
    the work a producer does that makes its data where it is sent from."""
    if _np is not None:
        _np.frombuffer(buf, dtype=_np.uint8).fill(value)  # the array dies here
        return
    import ctypes

    c = (ctypes.c_char * len(buf)).from_buffer(buf)
    ctypes.memset(c, value, len(buf))
    del c  # release the export before the claim is committed


def bench_go_1mib(exe, n, mode="fill"):
    """Python -> Go, 1 MiB messages, through the ring (Go reads each message
    in place, internal/ringpeer bench-read) against a Unix stream socket (Go
    reads into a 1 MiB buffer, bench-sock). Returns messages/s each,
    which for 1 MiB messages is MiB/s.

    mode "fill": the producer makes each message where it is sent from:
    fill(claim(), k) then commit() on the ring; fill(buf, k) then
    sendall(buf) on the socket. Each side writes 1 MiB per message once;
    the socket then copies it into the kernel and out again.
    mode "copy": the payload exists before the send: claim(), mv[:] =
    payload, commit() on the ring (one copy); sendall(payload) on the socket.
    """
    import socket
    import subprocess
    import tempfile

    size = 1 << 20
    payload = bytes(range(256)) * 4096
    buf = bytearray(size)
    name = "/pybench-go-%d" % os.getpid()
    r = shm.Ring.create(name, 4 << 20, size)
    try:
        g = subprocess.Popen([exe, "bench-read", name], stdout=subprocess.PIPE, text=True)
        try:
            assert g.stdout.readline().strip() == "ready"
            t0 = time.perf_counter()
            with r.producer() as p:
                if mode == "fill":
                    for k in range(n):
                        fill(p.claim(size), k & 0xFF)
                        p.commit()
                else:
                    for _ in range(n):
                        mv = p.claim(size)
                        mv[:] = payload
                        p.commit()
            out = g.stdout.readline().split()
            ring_dt = time.perf_counter() - t0
        finally:
            if g.poll() is None and g.wait(30) is None:
                g.kill()
        assert out == ["ok", str(n), str(n * size)], out
    finally:
        r.close()
        shm.Segment.unlink(name)
    d = tempfile.mkdtemp()
    path = os.path.join(d, "sock")
    g = subprocess.Popen([exe, "bench-sock", path], stdout=subprocess.PIPE, text=True)
    try:
        assert g.stdout.readline().strip() == "ready"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        t0 = time.perf_counter()
        if mode == "fill":
            for k in range(n):
                fill(buf, k & 0xFF)
                s.sendall(buf)
        else:
            for _ in range(n):
                s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = g.stdout.readline().split()
        sock_dt = time.perf_counter() - t0
        g.wait(30)
        s.close()
    finally:
        if g.poll() is None:
            g.kill()
            g.wait()
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(d)
    assert out == ["ok", str(n * size)], out
    return n / ring_dt, n / sock_dt


def main_go(n, exe=None):
    import shutil

    built = exe is None
    if built:
        exe = go_peer()
    try:
        res = {}
        for mode in ("fill", "copy"):
            res[mode] = bench_go_1mib(exe, n, mode)
    finally:
        if built:
            shutil.rmtree(os.path.dirname(exe))
    return res


def parse_args():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", nargs="?", type=int, default=1000000, help="64 B messages per transport")
    ap.add_argument("n_1mib", nargs="?", type=int, default=2000, help="1 MiB messages per transport and mode")
    ap.add_argument("--json", action="store_true", help="print one JSON object of messages/s")
    ap.add_argument("--go-peer", help="internal/ringpeer, built (default: go build into a temporary directory)")
    return ap.parse_args()


def main_all():
    a = parse_args()
    mp.set_start_method("fork")
    ring, queue, pipe = bench_ring(a.n), bench_queue(a.n), bench_pipe(a.n)
    go = main_go(a.n_1mib, a.go_peer)
    if a.json:
        import json

        print(json.dumps({
            "n": a.n, "n_1mib": a.n_1mib, "filler": "numpy" if _np is not None else "ctypes",
            "ring": ring, "queue": queue, "pipe": pipe,
            "ring_1mib_fill": go["fill"][0], "sock_1mib_fill": go["fill"][1],
            "ring_1mib_copy": go["copy"][0], "sock_1mib_copy": go["copy"][1],
        }))
        return
    print("64 B, %d messages, Python -> Python (msgs/s)" % a.n)
    print("ring  %12.0f" % ring)
    print("queue %12.0f  ring/queue %.1fx (target >= 10x)" % (queue, ring / queue))
    print("pipe  %12.0f  ring/pipe  %.1fx (target >= 3x)" % (pipe, ring / pipe))
    print("1 MiB, %d messages, Python -> Go (MiB/s)" % a.n_1mib)
    for mode, what in (("fill", "filled in place"), ("copy", "prebuilt payload copied")):
        ring1, sock1 = go[mode]
        print("%s (%s)" % (mode, what))
        print("  ring  %8.0f" % ring1)
        print("  unix  %8.0f  ring/socket %.1fx (target >= 5x)" % (sock1, ring1 / sock1))


if __name__ == "__main__":
    main_all()
