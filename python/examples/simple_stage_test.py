"""pex_harness's ``examples/simpleStageTest`` on daf: an application stage
written the way LSST's "Creating a Stage" page writes one, configured by the
upstream ``AreaStagePolicy.paf`` with the defaults of its dictionary
``AreaStagePolicy_dict.paf`` (both in
``tests/data/harness/upstream/simpleStageTest``, unchanged), and tested with
daf's :class:`daf.harness.StageTester` (LSST's SimpleStageTester).

``AreaStage`` computes the area of a ``width`` x ``height`` rectangle found
on the clipboard. The lengths are in units of ``10**inputScale`` m and the
area is given in units of ``10**(2 * outputScale)`` m^2 (both scales default
to 0: metres). The upstream policy says ``inputScale: -3`` (mm) and
``outputScale: -2`` (cm), so width 10 and height 20 give ``area`` 2.0
(200 mm^2 = 2 cm^2).

Run it as a script (from anywhere)::

    python python/examples/simple_stage_test.py

It runs the stage on the worker path (``process``, as slice 0) and on the
master path (``preprocess`` then ``postprocess``), prints the clipboards and
exits 0 when the areas are right. A pipeline policy names the classes
``simple_stage_test.AreaStageSerial`` / ``simple_stage_test.AreaStageParallel``
(with ``python/examples`` on ``PYTHONPATH``) to run them under ``daf run``.
"""

import pathlib
import sys

from daf import Policy
from daf.harness import ParallelProcessing, SerialProcessing, Stage, StageTester

UPSTREAM = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "harness" / "upstream" / "simpleStageTest"
POLICY = UPSTREAM / "AreaStagePolicy.paf"
DICTIONARY = UPSTREAM / "AreaStagePolicy_dict.paf"


def area_of(width, height, input_scale, output_scale):
    """The area of width x height (units 10**input_scale) in units of
    10**(2 * output_scale)."""
    return width * height * 10.0 ** (2 * (input_scale - output_scale))


class _AreaMixin:
    # The stage's dictionary: validates the policy and fills its defaults.
    dictionary = DICTIONARY

    def setup(self):
        self.input_scale = self.policy["inputScale"]
        self.output_scale = self.policy["outputScale"]

    def compute(self, clipboard):
        area = area_of(clipboard["width"], clipboard["height"], self.input_scale, self.output_scale)
        clipboard.put("area", area)
        return area


class AreaStageSerial(_AreaMixin, SerialProcessing):
    """The master's part: computes ``area`` in preprocess; postprocess
    labels it with its unit (``areaUnit``)."""

    def preprocess(self, clipboard):
        self.compute(clipboard)

    def postprocess(self, clipboard):
        clipboard.put("areaUnit", f"1e{2 * self.output_scale} m^2")


class AreaStageParallel(_AreaMixin, ParallelProcessing):
    """The slices' part: computes ``area`` in process and notes the rank."""

    def process(self, clipboard):
        self.compute(clipboard)
        clipboard.put("areaRank", self.rank)


class AreaStage(Stage):
    """Both parts, for the tester (as the seed's ``SampleStage``)."""

    serial_class = AreaStageSerial
    parallel_class = AreaStageParallel


def main():
    policy = Policy.load(POLICY)  # the dictionary's defaults come in at setup
    tester = StageTester(AreaStage(policy))
    worker = tester.run({"width": 10.0, "height": 20.0}, 0)  # sliceID >= 0: the worker
    master = tester.run({"width": 10.0, "height": 20.0}, -1)  # sliceID < 0: the master
    print(f"worker: area={worker['area']} rank={worker['areaRank']}")
    print(f"master: area={master['area']} unit={master['areaUnit']}")
    ok = abs(worker["area"] - 2.0) < 1e-12 and abs(master["area"] - 2.0) < 1e-12
    ok = ok and master["areaUnit"] == "1e-4 m^2" and "areaUnit" not in worker
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
