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
from collections.abc import Mapping

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


class Stage:
    """A stage as a pair of classes (LSST's ``harnessStage.Stage``): set
    ``serial_class`` and/or ``parallel_class`` on a subclass and hand an
    instance, with its policy, to :class:`StageTester`::

        class AreaStage(Stage):
            serial_class = AreaStageSerial
            parallel_class = AreaStageParallel

        out = StageTester(AreaStage(policy)).run_worker({"width": 1.0})

    A pipeline policy names the two classes themselves.
    """

    serial_class = None
    parallel_class = None

    def __init__(self, policy=None):
        self.policy = policy


class StageTester:
    """Runs stages on one clipboard, as the master or as a slice (LSST's
    SimpleStageTester)::

        t = StageTester(MyStageSerial, MyStageParallel, policy={"gain": 2.0})
        out = t.run({"x": 1})          # preprocess, process, postprocess
        assert out["y"] == 2
        t.run({"x": 1}, slice_id=-1)   # the master: preprocess, postprocess
        t.run({"x": 1}, slice_id=3)    # slice 3: process, with rank 3

    The first argument may also be a :class:`Stage` instance. Classes may
    be classes or dotted paths. :meth:`add_stage` appends further stages;
    stage ids count from 1 in the order added, and each stage gets the
    clipboard the previous one left. A clipboard is given as a
    :class:`Clipboard`, a dict (or other mapping) or ``None``; anything else
    is a ``TypeError``. A stage's exception propagates as is.
    """

    def __init__(self, serial=None, parallel=None, policy=None, *, name=None, run_id="test",
                 universe_size=2):
        self.run_id = run_id
        self.universe_size = universe_size
        self.stages = []
        if serial is not None or parallel is not None:
            self.add_stage(serial, parallel, policy, name=name)

    def add_stage(self, serial=None, parallel=None, policy=None, *, name=None):
        """Appends a stage (classes, dotted paths or a :class:`Stage`
        instance as ``serial``); returns the tester, for chaining."""
        if isinstance(serial, Stage):
            if parallel is not None:
                raise TypeError("a Stage instance carries its own parallel class")
            stage = serial
            serial, parallel = stage.serial_class, stage.parallel_class
            policy = stage.policy if policy is None else policy
            name = name or type(stage).__name__
        stage_id = len(self.stages) + 1

        def build(c, rank):
            if c is None:
                return None
            cls = _import(c) if isinstance(c, str) else c
            return cls(policy, name=name, stage_id=stage_id, rank=rank, run_id=self.run_id,
                       universe_size=self.universe_size)

        self.stages.append((build(serial, -1), build(parallel, 0)))
        return self

    @property
    def serial(self):
        """The first stage's serial part (or ``None``)."""
        return self.stages[0][0] if self.stages else None

    @property
    def parallel(self):
        """The first stage's parallel part (or ``None``)."""
        return self.stages[0][1] if self.stages else None

    @staticmethod
    def _clipboard(items):
        if isinstance(items, Clipboard):
            return items
        if items is None:
            return Clipboard({})
        if isinstance(items, Mapping):
            return Clipboard(dict(items))
        raise TypeError(f"a clipboard is a Clipboard or a dict, not {type(items).__name__}")

    def run_master(self, items=None):
        """Each stage's preprocess then postprocess, stage by stage, on a
        clipboard (dict or Clipboard)."""
        cb = self._clipboard(items)
        for serial, _ in self.stages:
            if serial is not None:
                serial.preprocess(cb)
                serial.postprocess(cb)
        return cb

    def run_worker(self, items=None, slice_id=None):
        """Each stage's process on a clipboard (dict or Clipboard); with
        ``slice_id``, the parallel stages run with that rank."""
        cb = self._clipboard(items)
        for _, parallel in self.stages:
            if parallel is not None:
                if slice_id is not None:
                    parallel.rank = slice_id
                parallel.process(cb)
        return cb

    def run(self, items=None, slice_id=None):
        """Without ``slice_id``: preprocess, process, postprocess of each
        stage on one clipboard. ``slice_id < 0``: :meth:`run_master`;
        otherwise :meth:`run_worker` as that slice."""
        if slice_id is not None:
            if slice_id < 0:
                return self.run_master(items)
            return self.run_worker(items, slice_id)
        cb = self._clipboard(items)
        for serial, parallel in self.stages:
            if serial is not None:
                serial.preprocess(cb)
            if parallel is not None:
                parallel.process(cb)
            if serial is not None:
                serial.postprocess(cb)
        return cb
