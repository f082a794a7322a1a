"""pex_harness's ``simpleStageTest`` example on daf: a Python stage, tested
with the stage tester.

``AreaStage`` computes the area of a ``width`` × ``height`` rectangle from
the clipboard. Its stage policy (the upstream ``AreaStagePolicy.paf``) sets
the unit scales: ``inputScale`` is the power of ten of the length unit
(−3: mm), ``outputScale`` that of the area's unit (−2: cm²); the dictionary
``AreaStagePolicy_dict.paf`` gives both a default of 0 and validates them
(an ``int`` each, at most once). So a 1 mm × 2 mm rectangle has an area of
2 mm² = 0.02 cm²::

    area = width * height * 10 ** (2 * (inputScale - outputScale))

The stage is written the way LSST's "Creating a Stage" page writes one: a
serial class (run by the master: ``preprocess`` computes the area,
``postprocess`` adds its unit), a parallel class (run by every slice:
``process`` computes the area), ``setup()`` loading the defaults from the
dictionary, and a ``Stage`` class naming both, for the tester. Both policy
files are pex_harness's, unchanged, in
``tests/data/harness/upstream/simpleStageTest/``.

Run it (after ``pip install ./python``)::

    python examples/python/area_stage.py

It prints the master's and the worker's clipboards. In a pipeline, name the
classes in the policy (``serialClass: area_stage.AreaStageSerial``, with
this folder on ``PYTHONPATH``). ``python/tests/test_area_stage.py`` runs it.
"""

import pathlib
import sys

from daf import Policy
from daf import harness

UPSTREAM = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "harness" / "upstream" / "simpleStageTest"
POLICY = UPSTREAM / "AreaStagePolicy.paf"
DICTIONARY = UPSTREAM / "AreaStagePolicy_dict.paf"


class _AreaSetup:
    """What both halves share: the policy over the dictionary's defaults."""

    def setup(self):
        # The stage's defaults live with it, not in the pipeline policy: fill
        # in what the given policy lacks and validate (raises PolicyError).
        self.policy.merge_defaults(DICTIONARY)
        self.input_scale = self.policy["inputScale"]
        self.output_scale = self.policy["outputScale"]

    def area(self, clipboard):
        factor = 10.0 ** (2 * (self.input_scale - self.output_scale))
        return clipboard["width"] * clipboard["height"] * factor


class AreaStageSerial(_AreaSetup, harness.SerialProcessing):
    """The master's part: the area in preprocess, its unit in postprocess."""

    def preprocess(self, clipboard):
        clipboard.put("area", self.area(clipboard))

    def postprocess(self, clipboard):
        clipboard.put("areaUnit", f"1e{2 * self.output_scale} m^2")


class AreaStageParallel(_AreaSetup, harness.ParallelProcessing):
    """A slice's part: the area, and which slice computed it."""

    def process(self, clipboard):
        clipboard.put("area", self.area(clipboard))
        clipboard.put("computedBy", self.rank)


class AreaStage(harness.Stage):
    serialClass = AreaStageSerial
    parallelClass = AreaStageParallel


def main():
    tester = harness.StageTester(AreaStage(Policy.load(POLICY)))
    master = tester.run({"width": 1.0, "height": 2.0}, -1)
    print(f"master: area = {master['area']:g} ({master['areaUnit']})")
    worker = tester.run({"width": 1.0, "height": 2.0}, 0)
    print(f"worker 0: area = {worker['area']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
