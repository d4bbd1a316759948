"""Ring peer for tests, with the CLI of c/tests/ringpeer.c and internal/ringpeer:

  create NAME CAP MAXMSG NSLOTS | unlink NAME
  produce NAME ID COUNT SEED MAXLEN [zerocopy]
  consume NAME NPROD COUNT SEED MAXLEN [zerocopy]   (prints "ok N")
  hold-consumer NAME | hold-producer NAME            (prints "ready", sleeps)
"""
import struct
import sys
import time

import shm

M64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def message(p, k, seed, maxlen):
    """Message k of producer p."""
    n = 16 + splitmix64(seed ^ (p << 40) ^ k) % (maxlen - 16 + 1)
    base = (k + 131 * p) & 0xFF
    body = bytes((base + i) & 0xFF for i in range(16, n))
    return struct.pack("<IIQ", p, n, k) + body


def main(argv):
    cmd, name = argv[0], argv[1]
    if cmd == "create":
        shm.Ring.create(name, int(argv[2]), int(argv[3]), int(argv[4])).close()
    elif cmd == "unlink":
        shm.Segment.unlink(name)
    elif cmd == "produce":
        pid, count, seed, maxlen = (int(a) for a in argv[2:6])
        zc = len(argv) > 6 and argv[6] == "zerocopy"
        with shm.Ring.open(name) as r, r.producer() as p:
            for k in range(count):
                m = message(pid, k, seed, maxlen)
                if zc:
                    mv = p.claim(len(m))
                    mv[:] = m
                    p.commit()
                else:
                    p.send(m)
    elif cmd == "consume":
        nprod, count, seed, maxlen = (int(a) for a in argv[2:6])
        zc = len(argv) > 6 and argv[6] == "zerocopy"
        nxt = [0] * nprod
        total = 0
        with shm.Ring.open(name) as r, r.consumer() as c:
            while True:
                try:
                    if zc:
                        m = bytes(c.read())
                        c.release()
                    else:
                        m = c.receive()
                except shm.RingClosed:
                    break
                except OSError as e:
                    if e.errno == 130:  # EOWNERDEAD: a producer died
                        print("peer-dead", flush=True)
                        continue
                    raise
                p, _, k = struct.unpack_from("<IIQ", m)
                if p >= nprod or k != nxt[p] or m != message(p, k, seed, maxlen):
                    sys.exit("bad message p=%d k=%d want k=%d" % (p, k, nxt[p] if p < nprod else -1))
                nxt[p] += 1
                total += 1
        if any(n != count for n in nxt):
            sys.exit("short: %r" % nxt)
        print("ok %d" % total, flush=True)
    elif cmd in ("hold-consumer", "hold-producer"):
        r = shm.Ring.open(name)
        end = r.consumer() if cmd == "hold-consumer" else r.producer()
        print("ready", flush=True)
        while True:
            time.sleep(1)
        del end
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
