"""Python stages for the daf pipeline harness.

Write a stage the way LSST's "Creating a Stage" page does: a subclass of
:class:`SerialProcessing` (``preprocess`` / ``postprocess``, run by the master)
and/or of :class:`ParallelProcessing` (``process``, run by every slice), each
method taking the :class:`Clipboard`. Name the classes by dotted path in the
pipeline policy::

    appStage:
      - name: calibrate
        serialClass: mypkg.stages.CalibrateSerial
        parallelClass: mypkg.stages.CalibrateParallel
        stagePolicy: {gain: 2.0}

and run it with ``daf run pipeline.yaml`` or :func:`run`, next to the built-in
Rust IO stages. ``self.policy`` is the stage policy (a :class:`daf.Policy`)
with the class's ``defaults`` dictionary filled in underneath; ``self.rank``,
``self.stage_id``, ``self.run_id``, ``self.universe_size`` and ``self.name``
say where the stage runs; ``setup()`` runs once after construction. An
exception raised by a stage fails that visit in that process only (LSST's
failure semantics): the failure stage, if any, sees ``failedInStage``,
``failureType`` (the exception class) and ``failureMessage`` (its message and
the Python traceback). :class:`StageTester` runs a stage on one clipboard in
a test.
"""

import importlib
import json
import os

from . import _daf
from ._daf import Policy, PropertySet

Clipboard = _daf.Clipboard
HAS_MPI = _daf.HAS_MPI

__all__ = [
    "Clipboard",
    "StageProcessing",
    "SerialProcessing",
    "ParallelProcessing",
    "StageTester",
    "run",
    "HAS_MPI",
]


def _merge_defaults(policy, defaults):
    """A Policy: ``policy`` (a Policy, dict or None) over ``defaults`` (a dict
    of default values, nested dicts for sub-policies)."""
    base = dict(defaults or {})
    given = policy.to_dict() if isinstance(policy, (Policy, PropertySet)) else dict(policy or {})

    def merge(d, over):
        out = dict(d)
        for k, v in over.items():
            if isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = merge(out[k], v)
            else:
                out[k] = v
        return out

    return Policy(merge(base, given))


class StageProcessing:
    """Base of application stage classes.

    ``defaults`` (a class attribute) is the stage's policy dictionary: the
    default of every setting, applied under the stage policy the pipeline
    gives. ``dictionary`` may instead name a dictionary policy file
    (``definitions: {name: {type, default}}``), which also validates.
    """

    defaults = {}
    dictionary = None

    def __init__(self, policy=None, *, name=None, stage_id=1, rank=-1, run_id="test",
                 universe_size=1, location_map=None):
        self.policy = _merge_defaults(policy, self.defaults)
        if self.dictionary is not None:
            self.policy.merge_defaults(self.dictionary)
        self.name = name or type(self).__name__
        self.stage_id = stage_id
        self.rank = rank
        self.run_id = run_id
        self.universe_size = universe_size
        self.location_map = location_map if location_map is not None else PropertySet()
        self.setup()

    def setup(self):
        """Called once after construction, before the first visit."""


class SerialProcessing(StageProcessing):
    """The serial part of a stage, run by the master Pipeline."""

    def preprocess(self, clipboard):
        """Runs before the slices' ``process``."""

    def postprocess(self, clipboard):
        """Runs after every slice finished ``process``."""


class ParallelProcessing(StageProcessing):
    """The parallel part of a stage, run by every Slice."""

    def process(self, clipboard):
        """Processes one visit's clipboard."""


def _import(path):
    module, _, cls = path.rpartition(".")
    if not module:
        raise ImportError(f"stage class {path!r} is not a dotted path (package.module.Class)")
    return getattr(importlib.import_module(module), cls)


def _make_stage(path, policy, **context):
    """Called by the harness: builds the stage class at ``path``."""
    cls = _import(path)
    return cls(policy, **context)


def run(pipeline, events=None, *, slices=None, run_id="run", locations=None, transport="threads", butler=None):
    """Runs a pipeline policy (YAML or PAF) with Rust and Python stages.

    ``events``: a list of event dicts (``{"jobIdentity": {...},
    "inputDatasets": [...], "payload": {...}}``), or the path of a JSON-lines
    file; without it one visit runs with an empty event. ``slices`` overrides
    the policy's ``nSlices`` (thread slices). ``locations`` adds entries to
    the location map. ``transport="mpi"`` runs on MPI ranks (under
    ``mpirun``, when the package was built with the ``mpi`` feature).

    Built-in IO stages that use the butler method (``parameters.butler``)
    work as under ``daf run``: a stage whose ``mapperPolicy.root`` names a
    repository (``"%(repo)"`` filled from the location map) opens it; a stage
    naming no root uses ``butler`` (a :class:`daf.Butler`, e.g. one chaining
    inputs and outputs), the same object the caller reads its results with.

    Returns the run report as a dict: ``visits`` (each with the ``master``
    and every slice's ``summary`` and ``failure``), ``n_slices`` and
    ``elapsed_s``; ``None`` on MPI slice ranks. The GIL is released while the
    harness runs, so Python stages on several slices take turns.
    """
    kw = dict(slices=slices, run_id=run_id, locations=locations, transport=transport, butler=butler)
    if events is None:
        text = _daf.run_pipeline(os.fspath(pipeline), **kw)
    elif isinstance(events, (str, os.PathLike)):
        text = _daf.run_pipeline(os.fspath(pipeline), events_file=os.fspath(events), **kw)
    else:
        text = _daf.run_pipeline(os.fspath(pipeline), events=[json.dumps(e) for e in events], **kw)
    return json.loads(text)


def failures(report):
    """The failed (visit, rank, failure) triples of a run report (rank -1 = master)."""
    out = []
    for v in report["visits"]:
        for p in [v["master"], *v["slices"]]:
            if p.get("failure"):
                out.append((v["visit"], p["rank"], p["failure"]))
    return out


class StageTester:
    """Runs one stage on one clipboard, as the master or as a slice (LSST's
    SimpleStageTester)::

        t = StageTester(MyStageSerial, MyStageParallel, policy={"gain": 2.0})
        out = t.run({"x": 1})          # preprocess, process, postprocess
        assert out["y"] == 2

    Classes may be classes or dotted paths; an exception propagates as is.
    """

    def __init__(self, serial=None, parallel=None, policy=None, *, run_id="test", universe_size=2):
        def build(c, rank):
            if c is None:
                return None
            cls = _import(c) if isinstance(c, str) else c
            return cls(policy, rank=rank, run_id=run_id, universe_size=universe_size)

        self.serial = build(serial, -1)
        self.parallel = build(parallel, 0)

    @staticmethod
    def _clipboard(items):
        if isinstance(items, Clipboard):
            return items
        return Clipboard(dict(items or {}))

    def run_master(self, items=None):
        """preprocess then postprocess on a clipboard (dict or Clipboard)."""
        cb = self._clipboard(items)
        if self.serial is not None:
            self.serial.preprocess(cb)
            self.serial.postprocess(cb)
        return cb

    def run_worker(self, items=None):
        """process on a clipboard (dict or Clipboard)."""
        cb = self._clipboard(items)
        if self.parallel is not None:
            self.parallel.process(cb)
        return cb

    def run(self, items=None):
        """preprocess, process, postprocess on one clipboard."""
        cb = self._clipboard(items)
        if self.serial is not None:
            self.serial.preprocess(cb)
        if self.parallel is not None:
            self.parallel.process(cb)
        if self.serial is not None:
            self.serial.postprocess(cb)
        return cb
