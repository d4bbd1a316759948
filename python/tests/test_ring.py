"""Tests of shm.Ring: API, errors, timeouts, views, numpy, and real peer
processes (tests/ringpeer.py)."""
import errno
import os
import signal
import struct
import subprocess
import sys
import time
from multiprocessing import shared_memory

import pytest

import shm

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "ringpeer.py")
_seq = [0]


@pytest.fixture
def name():
    _seq[0] += 1
    n = "/pytest-ring-%d-%d" % (os.getpid(), _seq[0])
    yield n
    try:
        shm.Segment.unlink(n)
    except FileNotFoundError:
        pass


def peer(*args, **kw):
    return subprocess.Popen([sys.executable, PEER] + [str(a) for a in args], stdout=subprocess.PIPE, text=True, **kw)


def test_send_receive(name):
    with shm.Ring.create(name, 4096, 256) as r:
        assert r.capacity == 4096 and r.max_message == 256 and not r.multi_producer and r.name == name
        with r.producer() as p, r.consumer() as c:
            for i in range(100):
                p.send(b"m%d" % i)
                assert c.receive() == b"m%d" % i
            p.send(bytearray(b"x" * 256))
            p.send(memoryview(b""))
            assert c.receive() == b"x" * 256
            assert c.receive() == b""
    assert r.closed


def test_errors(name):
    with shm.Ring.create(name, 4096, 256) as r:
        with pytest.raises(FileExistsError):
            shm.Ring.create(name, 4096, 256)
        with r.producer() as p, r.consumer() as c:
            with pytest.raises(OSError) as ei:
                p.send(b"x" * 257)
            assert ei.value.errno == errno.EMSGSIZE and ei.value.filename == name
            with pytest.raises(BlockingIOError):
                c.receive(timeout=0)
            t0 = time.monotonic()
            with pytest.raises(TimeoutError):
                c.read(timeout=0.05)
            assert time.monotonic() - t0 >= 0.04
            with pytest.raises(OSError) as ei:
                r.consumer()
            assert ei.value.errno == errno.EBUSY
            while True:
                try:
                    p.send(b"y" * 200, timeout=0)
                except BlockingIOError:
                    break
            with pytest.raises(TimeoutError):
                p.send(b"y", timeout=0.02)
            with pytest.raises(BufferError):
                r.close()
        # consumer closed: producers get BrokenPipeError
        with r.producer() as p:
            with pytest.raises(BrokenPipeError):
                p.send(b"z")
    with pytest.raises(FileNotFoundError):
        shm.Ring.open(name + "-none")


def test_not_a_ring(name):
    shm.Segment.create(name, 8192).close()
    with pytest.raises(OSError) as ei:
        shm.Ring.open(name)
    assert ei.value.errno == errno.EPROTO


def test_eof(name):
    with shm.Ring.create(name, 4096, 256, producers=4) as r:
        assert r.multi_producer
        c = r.consumer()
        with r.producer() as p:
            p.send(b"last")
        assert c.receive() == b"last"
        with pytest.raises(shm.RingClosed) as ei:
            c.receive()
        assert isinstance(ei.value, EOFError) and ei.value.errno == errno.ENODATA
        c.close()


def test_views_invalidated(name):
    with shm.Ring.create(name, 4096, 256) as r, r.producer() as p, r.consumer() as c:
        mv = p.claim(8)
        assert not mv.readonly and len(mv) == 8
        mv[:] = b"abcdefgh"
        with pytest.raises(RuntimeError):
            p.claim(1)
        p.commit(4)
        with pytest.raises(ValueError):
            mv[0]
        m = c.read()
        assert m.readonly and bytes(m) == b"abcd"
        with pytest.raises(RuntimeError):
            c.receive()
        c.release()
        with pytest.raises(ValueError):
            bytes(m)
        with pytest.raises(RuntimeError):
            c.release()
        mv = p.claim(3)
        p.close()  # abandons the claim, releases the view
        with pytest.raises(ValueError):
            mv[0]


def test_numpy_zero_copy(name):
    np = pytest.importorskip("numpy")
    with shm.Ring.create(name, 1 << 16, 8192) as r:
        p, c = r.producer(), r.consumer()
        mv = p.claim(8 * 1000)
        a = np.frombuffer(mv, dtype=np.float64)
        a[:] = np.arange(1000)
        del a
        p.commit()
        m = c.read()
        b = np.frombuffer(m, dtype=np.float64)
        assert (b == np.arange(1000)).all() and not b.flags.writeable
        c.release()
        # b still exports the ring's memory: the ring refuses to unmap
        p.close()
        c.close()
        with pytest.raises(BufferError):
            r.close()
        del b
        r.close()


def test_shared_memory_interop(name):
    with shm.Ring.create(name, 4096, 256) as r:
        sm = shared_memory.SharedMemory(name=name.lstrip("/"))
        try:
            assert struct.unpack_from("<Q", sm.buf, 0)[0] == 0x00474E49524D4853
            assert sm.size >= shm.Ring.size(4096)
        finally:
            sm.close()
        assert r.capacity == 4096


@pytest.mark.parametrize("zerocopy", [False, True])
def test_python_peers(name, zerocopy):
    shm.Ring.create(name, 1 << 14, 1024, producers=3).close()
    extra = ["zerocopy"] if zerocopy else []
    # Producers first: 6000 messages of up to 1 KiB fill the 16 KiB ring at
    # once, so all three are attached (blocked, full) before the consumer
    # starts. A consumer started first could see the first producer finish
    # and close before the next one attached, and take that for the end.
    prods = [peer("produce", name, i, 2000, 7, 1024, *extra) for i in range(3)]
    time.sleep(0.5)
    cons = peer("consume", name, 3, 2000, 7, 1024, *extra)
    for p in prods:
        assert p.wait(60) == 0
    out, _ = cons.communicate(timeout=60)
    assert cons.returncode == 0 and out.split() == ["ok", "6000"]


def test_in_process_against_peer(name):
    with shm.Ring.create(name, 4096, 64) as r, r.consumer() as c:
        pr = peer("produce", name, 0, 500, 3, 64)
        sys.path.insert(0, HERE)
        import ringpeer

        for k in range(500):
            assert c.receive(timeout=30) == ringpeer.message(0, k, 3, 64)
        assert pr.wait(30) == 0
        with pytest.raises(shm.RingClosed):
            c.receive()


def test_peer_death(name):
    with shm.Ring.create(name, 4096, 64, producers=2) as r, r.consumer() as c:
        h = peer("hold-producer", name)
        assert h.stdout.readline().strip() == "ready"
        h.send_signal(signal.SIGKILL)
        h.wait()
        with pytest.raises(OSError) as ei:
            c.receive(timeout=10)
        assert ei.value.errno == errno.EOWNERDEAD
        with pytest.raises(shm.RingClosed):
            c.receive(timeout=10)


CHILD = """
import sys, shm
r = shm.Ring.open(sys.argv[1])
c = r.consumer()
print("ready", flush=True)
try:
    c.receive()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_interrupts_receive(name):
    with shm.Ring.create(name, 4096, 64) as r, r.producer():
        ch = subprocess.Popen([sys.executable, "-c", CHILD, name], stdout=subprocess.PIPE, text=True)
        assert ch.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        ch.send_signal(signal.SIGINT)
        out, _ = ch.communicate(timeout=10)
        assert out.strip() == "interrupted"
