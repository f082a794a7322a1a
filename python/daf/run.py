"""``python -m daf.run PIPELINE [options]``: ``daf run`` for pipelines with
Python stages (the ``daf`` binary hands such runs to this module).

Takes the options of ``daf run`` (--events, --slices, --run-id, --location,
--dump, --transport); prints the same summary and exits 3 when some visit
failed in some process.
"""

import argparse
import json
import os
import sys

from . import _daf
from .harness import run


def _launched_by_mpi():
    return any(k in os.environ for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"))


def main(argv=None):
    p = argparse.ArgumentParser(prog="daf run", description=__doc__)
    p.add_argument("pipeline")
    p.add_argument("--events")
    p.add_argument("--slices", type=int)
    p.add_argument("--run-id", default="run")
    p.add_argument("--location", action="append", default=[], metavar="KEY=PATH")
    p.add_argument("--dump")
    p.add_argument("--transport", choices=["auto", "threads", "mpi"], default="auto")
    a = p.parse_args(argv)
    locations = {}
    for loc in a.location:
        if "=" not in loc:
            p.error(f"--location {loc!r}: expected KEY=PATH")
        k, v = loc.split("=", 1)
        locations[k] = v
    transport = a.transport
    if transport == "auto":
        transport = "mpi" if _daf.HAS_MPI and _launched_by_mpi() else "threads"
    events = None
    if a.events == "-":
        events = [json.loads(line) for line in sys.stdin if line.strip()]
    elif a.events:
        events = a.events
    try:
        report = run(a.pipeline, events, slices=a.slices, run_id=a.run_id, locations=locations or None,
                     transport=transport)
    except _daf.DafError as e:
        print(f"daf: {e}", file=sys.stderr)
        return 1
    if report is None:  # an MPI slice rank
        return 0
    n_failed = 0
    lines = []
    for v in report["visits"]:
        fails = []
        m = v["master"].get("failure")
        if m:
            fails.append(f"master: {m['failure_type']} in {m['stage']} ({m['message'].splitlines()[0]})")
        for s in v["slices"]:
            f = s.get("failure")
            if f:
                fails.append(f"slice {s['rank']}: {f['failure_type']} in {f['stage']} ({f['message'].splitlines()[0]})")
        n_failed += len(fails)
        lines.append(f"  visit {v['visit']:>4}: {'ok' if not fails else '; '.join(fails)}")
    print(f"{len(report['visits'])} visits on {report['n_slices']} slices in {report['elapsed_s']:.3f} s; "
          f"{n_failed} failed (visit, process) pairs")
    print("\n".join(lines))
    if a.dump:
        tmp = a.dump + ".tmp"
        with open(tmp, "w") as f:
            json.dump({k: v for k, v in report.items() if k != "elapsed_s"}, f, indent=2)
            f.write("\n")
        os.replace(tmp, a.dump)
    if n_failed:
        print(f"daf: {n_failed} (visit, process) pairs failed", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
