"""64-byte message throughput, Python process to Python process: shm.Ring
against multiprocessing.Queue and multiprocessing.Pipe. Prints msgs/s and
the ratios. (The Python-Go 1 MiB comparison is not written yet.)

    python bench/pybench.py [N]
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


if __name__ == "__main__":
    main()
