"""The astropy peer of `daf bench fits --peers`: one command per stdin line,
one answer per stdout line (`ok SECONDS` or `err MESSAGE`); timing inside
Python so start-up and imports are not counted.

  make KIND SIDE            build the test image (f32 or u16), not timed
  write KIND PATH           PrimaryHDU(image).writeto (u16 gets BZERO 32768)
  read PATH MEMMAP          pixels in memory as an owned array (MEMMAP 0/1)
  cut PATH X Y W H          open + a W x H cut-out through .section
"""
import sys
import time

import numpy as np
from astropy.io import fits

images = {}


def make(kind, side):
    n = side * side
    v = ((np.arange(n, dtype=np.int64) * 7919) % 60000) * 0.5
    dtype = np.float32 if kind == "f32" else np.uint16
    images[kind] = v.astype(dtype).reshape(side, side)
    return 0.0


def write(kind, path):
    img = images[kind]
    t = time.perf_counter()
    fits.PrimaryHDU(img).writeto(path, overwrite=True)
    return time.perf_counter() - t


def read(path, memmap):
    t = time.perf_counter()
    with fits.open(path, memmap=memmap) as h:
        a = h[0].data
        if memmap and (isinstance(a, np.memmap) or not a.flags.owndata):
            a = np.array(a)
    s = time.perf_counter() - t
    assert a.size > 0
    return s


def cut(path, x, y, w, h):
    t = time.perf_counter()
    with fits.open(path, memmap=True) as f:
        c = np.array(f[0].section[y:y + h, x:x + w])
    s = time.perf_counter() - t
    assert c.shape == (h, w), c.shape
    return s


for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "quit":
        break
    try:
        if cmd[0] == "make":
            s = make(cmd[1], int(cmd[2]))
        elif cmd[0] == "write":
            s = write(cmd[1], cmd[2])
        elif cmd[0] == "read":
            s = read(cmd[1], cmd[2] == "1")
        elif cmd[0] == "cut":
            s = cut(cmd[1], *map(int, cmd[2:6]))
        else:
            raise ValueError("unknown command " + cmd[0])
        print("ok %.9f" % s, flush=True)
    except Exception as e:  # reported to the Rust side, which fails
        print("err %s: %s" % (type(e).__name__, str(e).replace("\n", " ")), flush=True)
