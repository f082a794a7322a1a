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
the Python traceback). :class:`StageTester` (LSST's SimpleStageTester)
runs stages — a :class:`Stage` naming its serial and parallel classes, or
the classes themselves — on one clipboard in a test, as the master or as a
slice; ``examples/python/area_stage.py`` is pex_harness's simpleStageTest
written this way.
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
    "Stage",
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


class Stage:
    """A stage as one object, LSST's ``harnessStage.Stage``: a subclass names
    its parts in the class attributes ``serialClass`` and/or
    ``parallelClass`` (the other is a no-op), and an instance carries the
    stage policy. The harness itself only needs the two classes (the
    pipeline policy's ``serialClass``/``parallelClass``); this class is what
    :class:`StageTester` takes::

        class AreaStage(harness.Stage):
            serialClass = AreaStageSerial
            parallelClass = AreaStageParallel

        tester = harness.StageTester(AreaStage(policy))
    """

    serialClass = None
    parallelClass = None

    def __init__(self, policy=None, name=None):
        self.policy = policy
        self.name = name


class _TesterStage:
    """One stage of a :class:`StageTester`: its classes, policy, name and
    1-based stage id, and its processing objects (serial once, parallel per
    slice id), built when first needed."""

    def __init__(self, serial, parallel, policy, name, stage_id, tester):
        self.serial_cls = _import(serial) if isinstance(serial, str) else serial
        self.parallel_cls = _import(parallel) if isinstance(parallel, str) else parallel
        self.policy = policy
        self.name = name
        self.stage_id = stage_id
        self.tester = tester
        self._serial = None
        self._parallel = {}

    def _build(self, cls, rank):
        t = self.tester
        return cls(self.policy, name=self.name, stage_id=self.stage_id, rank=rank, run_id=t.run_id,
                   universe_size=t.universe_size, location_map=t.location_map)

    def serial(self):
        if self._serial is None and self.serial_cls is not None:
            self._serial = self._build(self.serial_cls, -1)
        return self._serial

    def parallel(self, rank=0):
        if rank not in self._parallel and self.parallel_cls is not None:
            self._parallel[rank] = self._build(self.parallel_cls, rank)
        return self._parallel.get(rank)


class StageTester:
    """Runs stages on one clipboard, as the master or as a slice (LSST's
    SimpleStageTester)::

        t = StageTester(MyStageSerial, MyStageParallel, policy={"gain": 2.0})
        out = t.run({"x": 1})          # preprocess, process, postprocess
        assert out["y"] == 2

        t = StageTester(AreaStage(policy))      # a Stage object
        t.add_stage(OtherStage(), name="other")  # chained after it
        master = t.run({"width": 1.0}, -1)      # slice id < 0: the master
        worker = t.run({"width": 1.0}, 0)       # slice id >= 0: that slice

    The first argument is a :class:`Stage` (object or class), or the serial
    class with ``parallel`` the parallel one; classes may be dotted paths.
    :meth:`add_stage` (alias ``addStage``) appends stages: they run in order
    on the same clipboard, with 1-based stage ids (``self.stage_id``) and
    names (default: the stage id as a string, as SimpleStageTester). The
    master path (``run_master``/``runMaster``) runs each stage's
    ``preprocess`` then its ``postprocess``, stage after stage; the worker
    path (``run_worker``/``runWorker``) each stage's ``process`` with
    ``self.rank`` the slice id. A clipboard is a :class:`Clipboard` or a
    dict (copied into a new one); anything else is a ``TypeError``. An
    exception in a stage propagates as is. ``run_id``, ``universe_size``
    and ``location_map`` are what the stages see.
    """

    def __init__(self, serial=None, parallel=None, policy=None, *, name=None, run_id="test", universe_size=2,
                 location_map=None):
        self.run_id = run_id
        self.universe_size = universe_size
        self.location_map = location_map if location_map is not None else PropertySet()
        self.stages = []
        if serial is not None or parallel is not None:
            if _is_stage(serial):
                if parallel is not None:
                    raise TypeError("StageTester: a Stage object already names its parallel class")
                self.add_stage(serial, name=name)
            else:
                self._append(serial, parallel, policy, name)

    def _append(self, serial, parallel, policy, name):
        n = len(self.stages) + 1
        self.stages.append(_TesterStage(serial, parallel, policy, name or str(n), n, self))

    def add_stage(self, stage, name=None):
        """Appends a :class:`Stage` (object, or class built with no policy);
        returns the tester, so calls chain."""
        if not _is_stage(stage):
            raise TypeError(f"add_stage: expected a harness.Stage, got {type(stage).__name__}")
        if isinstance(stage, type):
            stage = stage()
        self._append(stage.serialClass, stage.parallelClass, stage.policy, name or stage.name)
        return self

    addStage = add_stage

    @property
    def serial(self):
        """The first stage's serial object (None without one)."""
        return self.stages[0].serial() if self.stages else None

    @property
    def parallel(self):
        """The first stage's parallel object for slice 0 (None without one)."""
        return self.stages[0].parallel(0) if self.stages else None

    @staticmethod
    def _clipboard(items):
        if isinstance(items, Clipboard):
            return items
        if items is None:
            return Clipboard()
        if isinstance(items, dict):
            return Clipboard(dict(items))
        raise TypeError(f"a clipboard must be a Clipboard or a dict, not {type(items).__name__}")

    def run_master(self, items=None):
        """Each stage's preprocess then postprocess on a clipboard (dict or
        Clipboard); returns the clipboard."""
        cb = self._clipboard(items)
        for st in self.stages:
            s = st.serial()
            if s is not None:
                s.preprocess(cb)
                s.postprocess(cb)
        return cb

    def run_worker(self, items=None, slice_id=0):
        """Each stage's process, as slice ``slice_id``, on a clipboard (dict
        or Clipboard); returns the clipboard."""
        cb = self._clipboard(items)
        for st in self.stages:
            p = st.parallel(slice_id)
            if p is not None:
                p.process(cb)
        return cb

    runMaster = run_master
    runWorker = run_worker

    def run(self, items=None, slice_id=None):
        """With ``slice_id``: the master path when it is negative, else the
        worker path as that slice (SimpleStageTester's ``run``). Without:
        each stage's preprocess, process (slice 0) and postprocess in turn on
        one clipboard."""
        if slice_id is not None:
            if slice_id < 0:
                return self.run_master(items)
            return self.run_worker(items, slice_id)
        cb = self._clipboard(items)
        for st in self.stages:
            s, p = st.serial(), st.parallel(0)
            if s is not None:
                s.preprocess(cb)
            if p is not None:
                p.process(cb)
            if s is not None:
                s.postprocess(cb)
        return cb


def _is_stage(x):
    return isinstance(x, Stage) or (isinstance(x, type) and issubclass(x, Stage))
