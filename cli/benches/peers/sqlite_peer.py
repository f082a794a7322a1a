"""The Python sqlite3 peer of `daf bench db --peers`: one command per stdin
line, one answer per stdout line (`ok SECONDS` or `err MESSAGE`); timing
inside Python.

  make N        build N catalog rows as tuples (the values daf's bench uses), not timed
  load PATH     new table in a new database file (not timed), then
                executemany of every row in one transaction and commit (timed)
"""
import os
import sqlite3
import sys
import time

rows = []


def make(n):
    global rows
    rows = [
        (i, i // 10, (i * 0.000137) % 360.0, ((i * 0.000071) % 180.0) - 90.0,
         1000.0 + (i % 977) * 0.5, 1.0 + (i % 13) * 0.01, i % 7 == 0)
        for i in range(n)
    ]
    return 0.0


def load(path):
    if os.path.exists(path):
        os.remove(path)
    con = sqlite3.connect(path)
    con.execute(
        'CREATE TABLE "bench_src" (id INTEGER, parent INTEGER, ra DOUBLE PRECISION, '
        'decl DOUBLE PRECISION, flux REAL, flux_err REAL, flag BOOLEAN)'
    )
    con.commit()
    t = time.perf_counter()
    with con:
        con.executemany(
            'INSERT INTO "bench_src" (id, parent, ra, decl, flux, flux_err, flag) '
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    s = time.perf_counter() - t
    (n,) = con.execute('SELECT COUNT(*) FROM "bench_src"').fetchone()
    con.close()
    assert n == len(rows), n
    return s


for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "quit":
        break
    try:
        if cmd[0] == "make":
            s = make(int(cmd[1]))
        elif cmd[0] == "load":
            s = load(cmd[1])
        else:
            raise ValueError("unknown command " + cmd[0])
        print("ok %.9f" % s, flush=True)
    except Exception as e:  # reported to the Rust side, which fails
        print("err %s: %s" % (type(e).__name__, str(e).replace("\n", " ")), flush=True)
