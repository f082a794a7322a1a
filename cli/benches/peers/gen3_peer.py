"""The Gen3 butler (lsst-daf-butler) peer of `daf bench butler --peers`: one
command per stdin line, one answer per stdout line (`ok SECONDS [COUNT]` or
`err MESSAGE`); timing inside Python, so start-up and imports are not
counted.

The datasets are small dicts (StructuredDataDict, YAML) with the same ~21
entries as daf's small PropertySet, keyed by instrument + detector, in the
default file datastore with an SQLite registry.

  setup ROOT N IDS   new repository, IDS detectors, datasets 0..N-1 put (not timed)
  put I              put one dataset with detector I
  putmany I K        put datasets I..I+K-1 (Gen3 has no batch put: a loop)
  get I              get the dataset with detector I
  getloop I K        K gets of the dataset with detector I, each timed: the median
  query              query_datasets of every dataset of the type
"""
import sys
import time

from lsst.daf.butler import Butler, DatasetType

INSTRUMENT = "DafBench"
butler = None
obj = {}
for i in range(10):
    obj["stage%d.runtime" % i] = 1.5 * i
    obj["stage%d.name" % i] = "task%d" % i
obj["visit"] = 85471048


def setup(root, n, ids):
    global butler
    Butler.makeRepo(root)
    butler = Butler.from_config(root, writeable=True, run="bench")
    butler.registry.insertDimensionData(
        "instrument",
        {"name": INSTRUMENT, "detector_max": ids, "visit_max": 1, "exposure_max": 1,
         "visit_system": 0, "class_name": "none"},
    )
    butler.registry.insertDimensionData(
        "detector",
        *[{"instrument": INSTRUMENT, "id": i, "full_name": "d%d" % i} for i in range(ids)],
    )
    butler.registry.registerDatasetType(
        DatasetType("meta", ("instrument", "detector"), "StructuredDataDict",
                    universe=butler.dimensions)
    )
    for i in range(n):
        butler.put(obj, "meta", instrument=INSTRUMENT, detector=i)
    return 0.0


def put(i):
    t = time.perf_counter()
    butler.put(obj, "meta", instrument=INSTRUMENT, detector=i)
    return time.perf_counter() - t


def putmany(i, k):
    t = time.perf_counter()
    for j in range(i, i + k):
        butler.put(obj, "meta", instrument=INSTRUMENT, detector=j)
    return time.perf_counter() - t


def get(i):
    t = time.perf_counter()
    d = butler.get("meta", instrument=INSTRUMENT, detector=i)
    s = time.perf_counter() - t
    assert d["visit"] == 85471048
    return s


def getloop(i, k):
    times = []
    for _ in range(k):
        times.append(get(i))
    times.sort()
    return times[len(times) // 2]


def query():
    t = time.perf_counter()
    refs = butler.query_datasets("meta", collections="bench", limit=None)
    return time.perf_counter() - t, len(refs)


for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "quit":
        break
    try:
        if cmd[0] == "setup":
            out = "%.9f" % setup(cmd[1], int(cmd[2]), int(cmd[3]))
        elif cmd[0] == "put":
            out = "%.9f" % put(int(cmd[1]))
        elif cmd[0] == "putmany":
            out = "%.9f" % putmany(int(cmd[1]), int(cmd[2]))
        elif cmd[0] == "get":
            out = "%.9f" % get(int(cmd[1]))
        elif cmd[0] == "getloop":
            out = "%.9f" % getloop(int(cmd[1]), int(cmd[2]))
        elif cmd[0] == "query":
            s, n = query()
            out = "%.9f %d" % (s, n)
        else:
            raise ValueError("unknown command " + cmd[0])
        print("ok " + out, flush=True)
    except Exception as e:  # reported to the Rust side, which fails
        print("err %s: %s" % (type(e).__name__, str(e).replace("\n", " ")), flush=True)
