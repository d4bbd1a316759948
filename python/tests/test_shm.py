"""Tests of the shm Python package, and conformance against the C peer
built from c/shm.h (c/tests/peer.c), in real processes."""
import errno
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from multiprocessing import shared_memory

import pytest

import shm

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
PEER_PY = os.path.join(HERE, "peer.py")

_seq = [0]


@pytest.fixture
def name():
    _seq[0] += 1
    n = "/pytest-shm-%d-%d" % (os.getpid(), _seq[0])
    yield n
    try:
        shm.Segment.unlink(n)
    except FileNotFoundError:
        pass


@pytest.fixture(scope="session")
def cpeer(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found")
    exe = str(tmp_path_factory.mktemp("peer") / "peer")
    subprocess.run(
        [gcc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=undefined", "-o", exe, os.path.join(REPO, "c", "tests", "peer.c")],
        check=True,
    )
    return [exe]


PYPEER = [sys.executable, PEER_PY]


class Proc:
    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def expect(self, prefix):
        line = self.p.stdout.readline().rstrip("\n")
        if not line.startswith(prefix):
            self.p.kill()
            out, err = self.p.communicate()
            raise AssertionError("%s: got %r, want %r...; stderr:\n%s" % (self.p.args, line, prefix, err))
        return line

    def wait(self):
        out, err = self.p.communicate(timeout=60)
        assert self.p.returncode == 0, "%s exited %d: %s %s" % (self.p.args, self.p.returncode, out, err)

    def kill(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.communicate()


def counter(seg):
    mv = memoryview(seg)
    try:
        return struct.unpack_from("=Q", mv, 8)[0]
    finally:
        mv.release()


def test_create_open_buffer(name):
    with shm.Segment.create(name, 4096) as s:
        assert s.name == name and s.size == 4096 and not s.readonly
        mv = memoryview(s)
        assert mv.nbytes == 4096 and not mv.readonly
        mv[0:5] = b"hello"
        with pytest.raises(BufferError):
            s.close()
        mv.release()
        r = shm.Segment.open(name, readonly=True)
        rv = memoryview(r)
        assert rv.readonly and bytes(rv[0:5]) == b"hello"
        rv.release()
        r.close()
        assert oct(os.stat("/dev/shm" + name).st_mode & 0o777) == oct(0o600)
    assert s.closed


def test_errors_name_errno(name):
    shm.Segment.create(name, 100).close()
    with pytest.raises(FileExistsError) as e:
        shm.Segment.create(name, 100)
    assert e.value.errno == errno.EEXIST
    with pytest.raises(FileNotFoundError):
        shm.Segment.open(name + "-missing")
    for bad in ["", "/", "..", "/a/b"]:
        with pytest.raises(OSError) as e:
            shm.Segment.open(bad)
        assert e.value.errno == errno.EINVAL
    link = name + "-link"
    os.symlink("/etc/passwd", "/dev/shm" + link)
    try:
        with pytest.raises(OSError) as e:
            shm.Segment.open(link)
        assert e.value.errno == errno.EINVAL
    finally:
        os.unlink("/dev/shm" + link)


def test_multiprocessing_shared_memory(name):
    with shm.Segment.create(name, 64) as s:
        mv = memoryview(s)
        mv[:3] = b"abc"
        mv.release()
        sm = shared_memory.SharedMemory(name=name.lstrip("/"))
        try:
            assert bytes(sm.buf[:3]) == b"abc"
        finally:
            sm.close()
    sm = shared_memory.SharedMemory(create=True, size=128)
    try:
        sm.buf[:3] = b"xyz"
        with shm.Segment.open("/" + sm.name) as s:
            mv = memoryview(s)
            assert bytes(mv[:3]) == b"xyz"
            mv.release()
    finally:
        sm.close()
        sm.unlink()


def test_mutex_local(name):
    with shm.Segment.create(name, 64) as s:
        mu = shm.Mutex(s, 0)
        assert mu.acquire(blocking=False)
        assert mu.locked()
        assert not mu.acquire(timeout=0.05)
        mu.release()
        with pytest.raises(RuntimeError):
            mu.release()
        with mu:
            assert mu.locked()
        assert not mu.locked()
        with pytest.raises(ValueError):
            shm.Mutex(s, 4)
        with pytest.raises(ValueError):
            shm.Mutex(s, 64)
        del mu


def test_semaphore_local_and_gil(name):
    with shm.Segment.create(name, 64) as s:
        sem = shm.Semaphore(s, 16)
        assert not sem.acquire(blocking=False)
        assert not sem.acquire(timeout=0.02)
        sem.release()
        assert sem.value == 1
        assert sem.acquire(blocking=False)
        got = []
        t = threading.Thread(target=lambda: got.append(sem.acquire(timeout=10)))
        t.start()
        # The waiter released the GIL: this thread runs and posts.
        time.sleep(0.1)
        sem.release()
        t.join(10)
        assert got == [True]
        del sem


@pytest.mark.parametrize("peers", ["py+py", "py+c"])
def test_mutex_count_across_processes(name, cpeer, peers):
    n = 5000
    with shm.Segment.create(name, 4096) as s:
        argvs = [PYPEER, PYPEER] if peers == "py+py" else [PYPEER, cpeer]
        ps = [Proc(a + ["count", name, str(n)]) for a in argvs]
        mu = shm.Mutex(s, 0)
        for _ in range(n):
            with mu:
                mv = memoryview(s)
                (v,) = struct.unpack_from("=Q", mv, 8)
                struct.pack_into("=Q", mv, 8, v + 1)
                mv.release()
        for p in ps:
            p.expect("done")
            p.wait()
        assert counter(s) == 3 * n
        del mu


@pytest.mark.parametrize("holder", ["c", "py"])
def test_owner_killed(name, cpeer, holder):
    with shm.Segment.create(name, 4096) as s:
        h = Proc((cpeer if holder == "c" else PYPEER) + ["hold", name])
        tok = int(h.expect("locked").split()[1])
        assert s.peer_alive(tok)
        mu = shm.Mutex(s, 0)
        assert not mu.acquire(timeout=0.3)
        # The other language waits; kill the holder.
        w = Proc((PYPEER if holder == "c" else cpeer) + ["lockwait", name, "20000"])
        w.expect("waiting")
        time.sleep(0.05)
        h.kill()
        w.expect("ownerdead")
        w.wait()
        assert not s.peer_alive(tok)
        assert mu.acquire(timeout=1)
        mu.release()
        del mu


def test_owner_killed_python_waiter(name, cpeer):
    with shm.Segment.create(name, 4096) as s:
        h = Proc(cpeer + ["hold", name])
        h.expect("locked")
        mu = shm.Mutex(s, 0)
        threading.Timer(0.1, h.kill).start()
        with pytest.raises(shm.OwnerDeadError):
            mu.acquire(timeout=20)
        mu.release()
        del mu


def _unshare_or_skip():
    un = shutil.which("unshare")
    if un is None:
        pytest.skip("unshare not found")
    argv = [un, "--pid", "--fork", "--kill-child", "--mount-proc"]
    if subprocess.run(argv + ["true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --pid not permitted here")
    return argv


@pytest.mark.parametrize("holder", ["c", "py"])
def test_holder_in_other_pid_namespace(name, cpeer, holder):
    un = _unshare_or_skip()
    with shm.Segment.create(name, 4096) as s:
        h = Proc(un + (cpeer if holder == "c" else PYPEER) + ["hold", name])
        tok = int(h.expect("locked").split()[1])
        assert s.peer_alive(tok)
        mu = shm.Mutex(s, 0)
        assert not mu.acquire(timeout=0.5), "a live holder in another PID namespace was taken for dead"
        w = Proc((PYPEER if holder == "c" else cpeer) + ["lockwait", name, "300"])
        w.expect("waiting")
        w.expect("timeout")
        w.wait()
        h.kill()
        assert s.wait_peer_gone(tok, timeout=10)
        try:
            assert mu.acquire(timeout=10)
        except shm.OwnerDeadError:
            pass
        mu.release()
        del mu


@pytest.mark.parametrize("poster", ["c", "py"])
def test_semaphore_across_languages(name, cpeer, poster):
    n = 5000
    with shm.Segment.create(name, 4096):
        post = Proc((cpeer if poster == "c" else PYPEER) + ["post", name, str(n)])
        take = Proc((PYPEER if poster == "c" else cpeer) + ["take", name, str(n)])
        take.expect("took %d" % n)
        post.expect("posted")
        post.wait()
        take.wait()
