"""``python -m daf.bench [--quick] [--json]``: the Python package against the
tools a Python user would otherwise pick, measured in one run (used by
``daf bench python``).

* small-dataset ``get`` (a PropertySet) against the Gen3 butler's ``get`` of
  the same dict (``lsst-daf-butler``, StructuredDataDict): target >= 100x;
* a 4096 x 4096 float32 image ``get`` against ``astropy.io.fits.getdata`` of
  the same file: >= 1.0x, with zero copy (the array's base is the daf
  ``Image``) and peak memory <= 1.2x the image, measured in a fresh process;
* a query of 1,000 datasets (``query_metadata``) against the Gen3
  ``query_datasets``: >= 30x.

Each row is (name, value, unit, reference, reference name, target); the
ratio value / reference is judged against the target.
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
        k = 200 if quick else 2000
        t_daf = _median(runs, lambda: [b.get("meta", visit=i % n) for i in range(k)]) / k
        assert b.get("meta", visit=3)["visit"] == 3
        if g3 is not None:
            k3 = 20 if quick else 100
            t_g3 = _median(3, lambda: [g3.get("meta", instrument="Cam", detector=i % n) for i in range(k3)]) / k3
            assert g3.get("meta", instrument="Cam", detector=3)["visit"] == 3
            rows.append(_row("small get from Python (PropertySet)", 1 / t_daf, "gets/s", 1 / t_g3,
                             "Gen3 butler.get (dict)", "at_least", 100.0))
        else:
            rows.append(_row("small get from Python (PropertySet)", 1 / t_daf, "gets/s", None,
                             "Gen3 not installed (pip install lsst-daf-butler)", "none", None))

        # 2. 4096^2 float image get vs astropy getdata
        side = 4096
        pix = np.random.default_rng(0).random((side, side), dtype=np.float32)
        b.put(daf.Image(pix), "img", visit=0)
        path = str(b.get_uri("img", visit=0))
        mib = pix.nbytes / 2**20
        del pix
        r_img = 3 if quick else 7
        t_get = _median(r_img, lambda: b.get("img", visit=0).array.sum(dtype=np.float64))
        from astropy.io import fits
        t_ap = _median(r_img, lambda: fits.getdata(path).sum(dtype=np.float64))
        rows.append(_row("4096² float32 image get (+ sum)", mib / t_get, "MiB/s", mib / t_ap,
                         "astropy.io.fits.getdata (+ sum)", "at_least", 1.0))
        out = subprocess.run([sys.executable, "-c", _PEAK, root], capture_output=True, text=True, check=True)
        peak, zero_copy, nbytes = (int(x) for x in out.stdout.split())
        rows.append(_row("image array base is the daf Image", float(zero_copy), "bool", 1.0,
                         "zero copy", "at_least", 1.0))
        rows.append(_row("peak memory of one image get", peak / 2**20, "MiB", nbytes / 2**20,
                         "the image's bytes", "at_most", 1.2))

        # 3. query n datasets
        t_q = _median(runs, lambda: b.query_metadata("meta", ["visit"]))
        assert len(b.query_metadata("meta", ["visit"])) == n
        if g3 is not None:
            t_q3 = _median(3, lambda: g3.query_datasets("meta", limit=None))
            assert len(g3.query_datasets("meta", limit=None)) == n
            rows.append(_row(f"query {n} datasets", 1 / t_q, "queries/s", 1 / t_q3,
                             "Gen3 butler.query_datasets", "at_least", 30.0))
        else:
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
