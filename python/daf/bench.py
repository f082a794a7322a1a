"""``python -m daf.bench [--quick] [--json]``: the Python package against the
tools a Python user would otherwise pick, measured in one run (used by
``daf bench python``).

* small-dataset ``get`` (a PropertySet) against the Gen3 butler's ``get`` of
  the same dict (``lsst-daf-butler``, StructuredDataDict): target >= 100x;
* a 4096 x 4096 float32 image ``get`` against ``astropy.io.fits.getdata`` of
  the same file: >= 1.0x, with zero copy (the array's base is the daf
  ``Image``) and peak memory <= 1.2x the image, measured in a fresh process.
  Both are followed by a sum of the pixels, since astropy's default read is
  a lazy memory map of the big-endian bytes; also against astropy's eager
  read (``memmap=False``);
* a query of 1,000 datasets (``query_metadata``) against the Gen3
  ``query_datasets``: >= 30x.

Each row is (name, value, unit, reference, reference name, target); the
ratio value / reference is judged against the target.

Method: each comparison is measured in interleaved pairs after a warm-up of
both sides: a round times a batch of daf calls and a batch of the peer's
calls (sized so each batch takes about as long, and in alternating order),
so a load change on a shared machine hits both sides of a pair alike. The
ratio reported is the median of the per-round ratios; ``value`` is daf's
median rate and ``reference`` is ``value`` divided by that ratio. Every
daf call builds the Python objects a user gets (a list of tuples for a
query, a PropertySet for a get, an ndarray for an image).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import daf


def _median(runs, f):
    f()
    ts = []
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]


def _batch(f, k):
    t = time.perf_counter()
    for _ in range(k):
        f()
    return (time.perf_counter() - t) / k


def _paired(ours, peer, rounds, peer_batch=1, max_batch=1000):
    """Interleaved pairs: (our median time per call, median of peer/ours ratios).

    Both are warmed up; our batch is sized to last about as long as a peer
    batch; odd rounds run the peer first."""
    ours()
    peer()
    t_peer = _batch(peer, peer_batch) * peer_batch
    t_ours = _batch(ours, 3)
    k = int(min(max_batch, max(1, round(t_peer / max(t_ours, 1e-9)))))
    mine, ratios = [], []
    for r in range(max(1, rounds)):
        if r % 2:
            tp = _batch(peer, peer_batch)
            to = _batch(ours, k)
        else:
            to = _batch(ours, k)
            tp = _batch(peer, peer_batch)
        mine.append(to)
        ratios.append(tp / to)
    mine.sort()
    ratios.sort()
    return mine[len(mine) // 2], ratios[len(ratios) // 2]


def _row(name, value, unit, reference, reference_name, kind, target):
    return {"name": name, "value": value, "unit": unit, "reference": reference,
            "reference_name": reference_name, "target_kind": kind, "target": target}


def _gen3(root, n):
    """A Gen3 repository with `n` small dict datasets; None without lsst-daf-butler."""
    try:
        from lsst.daf.butler import Butler, DatasetType
    except ImportError:
        return None
    Butler.makeRepo(root)
    b = Butler.from_config(root, writeable=True, run="bench")
    b.registry.insertDimensionData("instrument", {"name": "Cam", "detector_max": n + 1,
                                                  "visit_max": 10, "exposure_max": 10})
    b.registry.insertDimensionData("detector", *[{"instrument": "Cam", "id": i, "full_name": f"d{i}"}
                                                 for i in range(n)])
    b.registry.registerDatasetType(DatasetType("meta", ("instrument", "detector"), "StructuredDataDict",
                                               universe=b.dimensions))
    for i in range(n):
        b.put({"visit": i, "exptime": 15.0, "filter": "g"}, "meta", instrument="Cam", detector=i)
    return b


# NumPy is imported before the baseline: a user holding arrays has it loaded,
# and its import (~15 MiB) is not part of a read.
_PEAK = r"""
import sys, daf, numpy
def rss(k):
    for line in open("/proc/self/status"):
        if line.startswith(k):
            return int(line.split()[1]) * 1024
b = daf.Butler(sys.argv[1])
b.get("meta", visit=0)
base = rss("VmRSS:")
img = b.get("img", visit=0)
a = img.array
print(rss("VmHWM:") - base, int(a.base is img), a.nbytes)
"""


def run(quick=False):
    rows = []
    n = 200 if quick else 1000
    runs = 5 if quick else 11
    with tempfile.TemporaryDirectory(prefix="daf-bench-python-") as d:
        root = daf.Butler.create_repository(os.path.join(d, "daf"), {
            "meta": ("meta/v%(visit)d.boost", "PropertySet", "BoostStorage"),
            "img": ("img/v%(visit)d.fits", "ImageF", "FitsStorage"),
        })
        b = daf.Butler(root)
        for i in range(n):
            b.put({"visit": i, "exptime": 15.0, "filter": "g"}, "meta", visit=i)
        g3 = _gen3(os.path.join(d, "gen3"), n)

        # 1. small-dataset get
        keys = iter(range(10**9))
        assert b.get("meta", visit=3)["visit"] == 3

        def daf_get():
            return b.get("meta", visit=next(keys) % n)

        if g3 is not None:
            assert g3.get("meta", instrument="Cam", detector=3)["visit"] == 3

            def g3_get():
                return g3.get("meta", instrument="Cam", detector=next(keys) % n)

            t_daf, ratio = _paired(daf_get, g3_get, 7 if quick else 15, peer_batch=5 if quick else 20)
            rows.append(_row("small get from Python (PropertySet)", 1 / t_daf, "gets/s", 1 / t_daf / ratio,
                             "Gen3 butler.get (dict)", "at_least", 100.0))
        else:
            t_daf = _median(runs, lambda: [daf_get() for _ in range(200)]) / 200
            rows.append(_row("small get from Python (PropertySet)", 1 / t_daf, "gets/s", None,
                             "Gen3 not installed (pip install lsst-daf-butler)", "none", None))

        # 2. 4096^2 float image get vs astropy getdata
        side = 4096
        pix = np.random.default_rng(0).random((side, side), dtype=np.float32)
        b.put(daf.Image(pix), "img", visit=0)
        path = str(b.get_uri("img", visit=0))
        mib = pix.nbytes / 2**20
        del pix
        from astropy.io import fits
        t_get, ratio = _paired(lambda: b.get("img", visit=0).array.sum(dtype=np.float64),
                               lambda: fits.getdata(path).sum(dtype=np.float64), 5 if quick else 11)
        rows.append(_row("4096² float32 image get (+ sum)", mib / t_get, "MiB/s", mib / t_get / ratio,
                         "astropy.io.fits.getdata (+ sum)", "at_least", 1.0))
        # astropy's getdata maps the file and hands out its big-endian bytes
        # (`>f4`) without reading them: the sum then reads the page cache
        # directly. Its own eager read (memmap=False) is the like-for-like
        # peer of a read that gives native float32 pixels in memory.
        t_get, ratio = _paired(lambda: b.get("img", visit=0).array.sum(dtype=np.float64),
                               lambda: fits.getdata(path, memmap=False).sum(dtype=np.float64), 5 if quick else 11)
        rows.append(_row("4096² float32 image get (+ sum), eager peer", mib / t_get, "MiB/s", mib / t_get / ratio,
                         "astropy getdata(memmap=False) (+ sum)", "at_least", 1.0))
        out = subprocess.run([sys.executable, "-c", _PEAK, root], capture_output=True, text=True, check=True)
        peak, zero_copy, nbytes = (int(x) for x in out.stdout.split())
        rows.append(_row("image array base is the daf Image", float(zero_copy), "bool", 1.0,
                         "zero copy", "at_least", 1.0))
        rows.append(_row("peak memory of one image get", peak / 2**20, "MiB", nbytes / 2**20,
                         "the image's bytes", "at_most", 1.2))

        # 3. query n datasets
        assert sorted(b.query_metadata("meta", ["visit"])) == [(i,) for i in range(n)]
        if g3 is not None:
            assert len(g3.query_datasets("meta", limit=None)) == n
            t_q, ratio = _paired(lambda: b.query_metadata("meta", ["visit"]),
                                 lambda: g3.query_datasets("meta", limit=None), 7 if quick else 15)
            rows.append(_row(f"query {n} datasets", 1 / t_q, "queries/s", 1 / t_q / ratio,
                             "Gen3 butler.query_datasets", "at_least", 30.0))
        else:
            t_q = _median(runs, lambda: b.query_metadata("meta", ["visit"]))
            rows.append(_row(f"query {n} datasets", 1 / t_q, "queries/s", None,
                             "Gen3 not installed", "none", None))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m daf.bench")
    p.add_argument("--quick", action="store_true", help="fewer datasets and runs (noisier)")
    p.add_argument("--json", action="store_true", help="rows as JSON (for daf bench python)")
    a = p.parse_args(argv)
    rows = run(a.quick)
    if a.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            ratio = "" if r["reference"] is None else f"{r['value'] / r['reference']:.2f}x"
            print(f"{r['name']:<40} {r['value']:>12.3f} {r['unit']:<10} {ratio:>10}  vs {r['reference_name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
