"""64-byte message throughput, Python process to Python process: shm.Ring
against multiprocessing.Queue and multiprocessing.Pipe. Prints msgs/s and
the ratios;

    python bench/pybench.py [N [N_1MIB]]

then 1 MiB messages Python -> Go (internal/ringpeer, built with go build)
through the ring against a Unix socket.
"""
import multiprocessing as mp
import os
import sys
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


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    mp.set_start_method("fork")
    ring, queue, pipe = bench_ring(n), bench_queue(n), bench_pipe(n)
    print("64 B, %d messages, Python -> Python (msgs/s)" % n)
    print("ring  %12.0f" % ring)
    print("queue %12.0f  ring/queue %.1fx (target >= 10x)" % (queue, ring / queue))
    print("pipe  %12.0f  ring/pipe  %.1fx (target >= 3x)" % (pipe, ring / pipe))




def go_peer():
    """Builds internal/ringpeer with go build; returns its path."""
    import subprocess
    import tempfile

    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    exe = os.path.join(tempfile.mkdtemp(), "ringpeer")
    subprocess.check_call(["go", "build", "-o", exe, "./internal/ringpeer"], cwd=repo)
    return exe


def bench_go_1mib(exe, n):
    """Python -> Go, 1 MiB messages: ring (claim, fill, commit; Go reads in
    place) against a Unix socket (sendall; Go reads). Returns MiB/s each."""
    import socket
    import subprocess
    import tempfile

    payload = bytes(range(256)) * 4096
    name = "/pybench-go-%d" % os.getpid()
    r = shm.Ring.create(name, 4 << 20, 1 << 20)
    try:
        g = subprocess.Popen([exe, "bench-read", name], stdout=subprocess.PIPE, text=True)
        assert g.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        with r.producer() as p:
            for _ in range(n):
                mv = p.claim(len(payload))
                mv[:] = payload
                p.commit()
        out = g.stdout.readline().split()
        ring_dt = time.perf_counter() - t0
        g.wait()
        assert out == ["ok", str(n), str(n * len(payload))], out
    finally:
        r.close()
        shm.Segment.unlink(name)
    path = os.path.join(tempfile.mkdtemp(), "sock")
    g = subprocess.Popen([exe, "bench-sock", path], stdout=subprocess.PIPE, text=True)
    assert g.stdout.readline().strip() == "ready"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    t0 = time.perf_counter()
    for _ in range(n):
        s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    out = g.stdout.readline().split()
    sock_dt = time.perf_counter() - t0
    g.wait()
    s.close()
    os.rmdir(os.path.dirname(path))  # the Go listener removed the socket
    assert out == ["ok", str(n * len(payload))], out
    return n / ring_dt, n / sock_dt


def main_go():
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    import shutil

    exe = go_peer()
    try:
        ring, sock = bench_go_1mib(exe, n)
    finally:
        shutil.rmtree(os.path.dirname(exe))
    print("1 MiB, %d messages, Python -> Go (MiB/s)" % n)
    print("ring  %8.0f" % ring)
    print("unix  %8.0f  ring/socket %.1fx (target >= 5x)" % (sock, ring / sock))


if __name__ == "__main__":
    main()
    main_go()
