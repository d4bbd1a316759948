"""Ring peer for tests, with the CLI of c/tests/ringpeer.c and internal/ringpeer:

  create NAME CAP MAXMSG NSLOTS | unlink NAME
  produce NAME ID COUNT SEED MAXLEN [MODE] [pause-after K]
  consume NAME NPROD COUNT SEED MAXLEN [MODE] [pause-after K] [from K]
  hold-consumer NAME | hold-producer NAME            (prints "ready", sleeps)
  check NAME                  (opens, attaches a consumer, reads one message)
  garbage NAME KIND           (writes a bad record at T and publishes it)

MODE, pause-after, from, the output lines and the garbage kinds are those of
internal/ringpeer (see its doc comment). Errors print the exception's class
and errno name ("ringpeer: CorruptError EBADMSG: ..."), exit status 1.
"""
import errno
import struct
import sys
import time

import shm

M64 = (1 << 64) - 1
_CYCLE = bytes(range(256)) * 2


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def message(p, k, seed, maxlen):
    """Message k of producer p: byte i (i >= 16) is (k + i + 131 p) mod 256."""
    n = 16 + splitmix64(seed ^ (p << 40) ^ k) % (maxlen - 16 + 1)
    start = (k + 131 * p + 16) & 0xFF
    body = bytearray()
    left = n - 16
    while left > 0:  # whole cycles of 256 from start
        chunk = _CYCLE[start:start + min(left, 256)]
        body += chunk
        left -= len(chunk)
    return struct.pack("<IIQ", p, n, k) + bytes(body)


def fail(e):
    name = errno.errorcode.get(getattr(e, "errno", None) or 0, "-")
    sys.stderr.write("ringpeer: %s %s: %s\n" % (type(e).__name__, name, e))
    sys.exit(1)


def parse_opts(args):
    mode, pause, start = "copy", 0, 0
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("copy", "zerocopy", "mixed"):
            mode = a
        elif a in ("pause-after", "from") and i + 1 < len(args):
            if a == "from":
                start = int(args[i + 1])
            else:
                pause = int(args[i + 1])
            i += 1
        else:
            sys.exit("unknown argument " + a)
        i += 1
    return mode, pause, start


def in_place(mode, k):
    return mode == "zerocopy" or (mode == "mixed" and k % 2 == 1)


def pause_at(pause, k):
    if pause and k == pause:
        print("paused %d" % k, flush=True)
        while True:
            time.sleep(1)


def produce(name, pid, count, seed, maxlen, mode, pause):
    with shm.Ring.open(name) as r, r.producer() as p:
        for k in range(count):
            pause_at(pause, k)
            m = message(pid, k, seed, maxlen)
            if in_place(mode, k):
                mv = p.claim(len(m))
                mv[:] = m
                p.commit()
            else:
                p.send(m)


def consume(name, nprod, count, seed, maxlen, mode, pause, start):
    nxt = [start] * nprod
    total = deaths = 0
    with shm.Ring.open(name) as r, r.consumer() as c:
        while True:
            pause_at(pause, total)
            try:
                if in_place(mode, total):
                    m = bytes(c.read())
                    c.release()
                else:
                    m = c.receive()
            except shm.RingClosed:
                break
            except OSError as e:
                if e.errno == errno.EOWNERDEAD:  # a producer died
                    print("peer-dead %d" % total, flush=True)
                    deaths += 1
                    continue
                raise
            if len(m) < 16:
                sys.exit("short message of %d bytes" % len(m))
            p, _, k = struct.unpack_from("<IIQ", m)
            if p >= nprod or k != nxt[p] or m != message(p, k, seed, maxlen):
                sys.exit("bad message p=%d k=%d want k=%d" % (p, k, nxt[p] if p < nprod else -1))
            nxt[p] += 1
            total += 1
    got = " ".join(str(n - start) for n in nxt)
    if all(n == count for n in nxt):
        print("ok %d" % total, flush=True)
    elif deaths:
        print("ended " + got, flush=True)
    else:
        sys.exit("ringpeer: short: messages per producer %s, want %d each" % (got, count - start))


def check(name):
    try:
        with shm.Ring.open(name) as r, r.consumer() as c:
            try:
                m = c.read(timeout=1)
            except TimeoutError:
                print("empty", flush=True)
                return
            print("ok %d" % len(m), flush=True)
            m.release()
            c.release()
    except OSError as e:
        fail(e)


def garbage(name, kind):
    """One bad record at T, written through the segment's bytes, and T moved past it."""
    r = shm.Ring.open(name)
    cap, maxmsg, multi = r.capacity, r.max_message, r.multi_producer
    r.close()
    if multi:
        sys.exit("ringpeer: garbage: not a single-producer ring")
    length, typ, step = {
        "long": (maxmsg + 16, 1, (maxmsg + 16 + 7) & ~7),
        "past": (1000, 1, 16),
        "short": (4, 1, 16),
        "type": (16, 7, 16),
        "negative": (-16, 1, 16),
    }[kind]
    with shm.Segment.open(name) as seg:
        mv = memoryview(seg)
        d, = struct.unpack_from("=Q", mv, 40)
        t, = struct.unpack_from("=Q", mv, 64)
        if cap - t % cap < step:
            sys.exit("ringpeer: garbage: no room before the end of the data area")
        struct.pack_into("=iI", mv, d + t % cap, length, typ)
        struct.pack_into("=Q", mv, 64, t + step)  # no consumer attached yet
        mv.release()
    print("ok", flush=True)


def main(argv):
    cmd, name = argv[0], argv[1]
    if cmd == "create":
        shm.Ring.create(name, int(argv[2]), int(argv[3]), int(argv[4])).close()
    elif cmd == "unlink":
        shm.Segment.unlink(name)
    elif cmd in ("produce", "consume"):
        a, b, seed, maxlen = (int(x) for x in argv[2:6])
        mode, pause, start = parse_opts(argv[6:])
        if cmd == "produce":
            produce(name, a, b, seed, maxlen, mode, pause)
        else:
            consume(name, a, b, seed, maxlen, mode, pause, start)
    elif cmd in ("hold-consumer", "hold-producer"):
        r = shm.Ring.open(name)
        end = r.consumer() if cmd == "hold-consumer" else r.producer()
        print("ready", flush=True)
        while True:
            time.sleep(1)
        del end
    elif cmd == "check":
        check(name)
    elif cmd == "garbage":
        garbage(name, argv[2])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
