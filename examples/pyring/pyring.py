"""Python half of examples/pyring: view Go's array in the ring with numpy,
write twice it straight into a claim on the other ring."""
import sys

import numpy as np

import shm

with shm.Ring.open(sys.argv[1]) as rin, shm.Ring.open(sys.argv[2]) as rout:
    with rin.consumer() as c, rout.producer() as p:
        m = c.read()  # read-only memoryview in the ring
        a = np.frombuffer(m, dtype="<f8")
        out = np.frombuffer(p.claim(a.nbytes), dtype="<f8")  # writable, in the ring
        np.multiply(a, 2, out=out)
        del a, out  # drop the arrays before the views are released
        p.commit()
        c.release()
