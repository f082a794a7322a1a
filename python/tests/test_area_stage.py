"""pex_harness's simpleStageTest example (examples/python/area_stage.py) with
its upstream policy and dictionary, and the stage tester's SimpleStageTester
behaviour: slice id < 0 is the master, dicts become clipboards, other values
are a TypeError, stages chain with 1-based ids."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

import daf
from daf import harness
from conftest import ROOT

EXAMPLE = ROOT / "examples" / "python" / "area_stage.py"
UPSTREAM = ROOT / "tests" / "data" / "harness" / "upstream" / "simpleStageTest"


@pytest.fixture(scope="module")
def area():
    spec = importlib.util.spec_from_file_location("area_stage", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_upstream_policy_files_are_unchanged():
    assert (UPSTREAM / "AreaStagePolicy.paf").read_text() == "inputScale: -3\noutputScale: -2\n"
    d = (UPSTREAM / "AreaStagePolicy_dict.paf").read_text()
    assert d.startswith("#<?cfg paf dictionary ?>") and "target:  AreaStage" in d


def test_area_stage_master_and_worker(area):
    t = harness.StageTester(area.AreaStage(daf.Policy.load(area.POLICY)))
    # master (slice id < 0): preprocess then postprocess, rank -1
    m = t.run({"width": 1.0, "height": 2.0}, -1)
    assert m["area"] == pytest.approx(0.02)  # 1 mm x 2 mm = 0.02 cm^2
    assert m["areaUnit"] == "1e-4 m^2"
    assert t.stages[0].serial().rank == -1 and t.stages[0].serial().stage_id == 1
    # worker (slice id >= 0): process as that slice
    w = t.run({"width": 3.0, "height": 5.0}, 2)
    assert w["area"] == pytest.approx(0.15) and w["computedBy"] == 2
    assert "areaUnit" not in w
    # the policy: the file's values over the dictionary's defaults
    p = t.stages[0].parallel(2).policy
    assert (p["inputScale"], p["outputScale"]) == (-3, -2)


def test_area_stage_dictionary_defaults(area):
    # an empty stage policy: both scales default to 0 (area in input units^2)
    t = harness.StageTester(area.AreaStage())
    assert t.run({"width": 1.5, "height": 2.0}, 0)["area"] == 3.0
    assert t.run({"width": 1.5, "height": 2.0}, -1)["areaUnit"] == "1e0 m^2"
    # only one given: the other is the default
    t = harness.StageTester(area.AreaStage(daf.Policy({"inputScale": 3})))
    assert t.run({"width": 1.0, "height": 1.0}, 0)["area"] == 1e6  # km^2 in m^2
    # the dictionary validates: a string scale is a PolicyError
    t = harness.StageTester(area.AreaStage(daf.Policy({"inputScale": "big"})))
    with pytest.raises(daf.PolicyError, match="inputScale"):
        t.run({"width": 1.0, "height": 1.0}, 0)


def test_area_stage_script_prints_the_areas():
    r = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "master: area = 0.02 (1e-4 m^2)\nworker 0: area = 0.02\n"


class Record(harness.ParallelProcessing, harness.SerialProcessing):
    """Appends (stage id, name, rank, phase) to the clipboard's `trace`."""

    def _note(self, cb, phase):
        cb.put("trace", cb["trace"] + [[self.stage_id, self.name, self.rank, phase]])

    def preprocess(self, cb):
        self._note(cb, "pre")

    def postprocess(self, cb):
        self._note(cb, "post")

    def process(self, cb):
        self._note(cb, "process")


class RecordStage(harness.Stage):
    serialClass = Record
    parallelClass = Record


def test_stage_tester_chains_stages_with_one_based_ids():
    t = harness.StageTester(RecordStage()).add_stage(RecordStage(), name="second").addStage(RecordStage)
    assert [s.stage_id for s in t.stages] == [1, 2, 3]
    m = t.runMaster({"trace": []})
    assert m["trace"] == [[1, "1", -1, "pre"], [1, "1", -1, "post"], [2, "second", -1, "pre"],
                          [2, "second", -1, "post"], [3, "3", -1, "pre"], [3, "3", -1, "post"]]
    w = t.run({"trace": []}, 4)
    assert w["trace"] == [[1, "1", 4, "process"], [2, "second", 4, "process"], [3, "3", 4, "process"]]
    # a Clipboard is used as is; the output is the same clipboard
    cb = harness.Clipboard({"trace": []})
    assert t.runWorker(cb) is cb
    # without a slice id: pre, process, post per stage
    assert [x[3] for x in t.run({"trace": []})["trace"][:3]] == ["pre", "process", "post"]


def test_stage_tester_rejects_what_is_not_a_clipboard():
    t = harness.StageTester(RecordStage())
    for bad in (["trace"], "trace", 3):
        with pytest.raises(TypeError, match="Clipboard or a dict"):
            t.run(bad, 0)
    with pytest.raises(TypeError, match="expected a harness.Stage"):
        t.add_stage(Record)
    with pytest.raises(TypeError, match="already names"):
        harness.StageTester(RecordStage(), Record)


def _area_pipeline(tmp_path):
    p = tmp_path / "area_pipeline.paf"
    p.write_text(
        "nSlices: 2\n"
        "appStage: {\n"
        '    name: "AreaStage"\n'
        '    serialClass: "area_stage.AreaStageSerial"\n'
        '    parallelClass: "area_stage.AreaStageParallel"\n'
        f"    stagePolicy: @{UPSTREAM / 'AreaStagePolicy.paf'}\n"
        "}\n"
    )
    return p


def test_area_stage_in_a_pipeline(tmp_path, monkeypatch):
    """The same classes named in a PAF pipeline policy whose stagePolicy is
    the upstream file, run by the harness on two thread slices; the width
    and height come with the event."""
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    p = _area_pipeline(tmp_path)
    report = harness.run(p, [{"clipboard": {"width": 1.0, "height": 2.0}}])
    assert harness.failures(report) == []
    v = report["visits"][0]
    assert v["master"]["summary"]["area"] == pytest.approx(0.02)
    assert v["master"]["summary"]["areaUnit"] == "1e-4 m^2"
    assert [s["summary"]["computedBy"] for s in v["slices"]] == [0, 1]
    assert all(s["summary"]["area"] == pytest.approx(0.02) for s in v["slices"])


def test_daf_run_runs_area_stage_from_a_paf_pipeline(tmp_path):
    """`daf run` (the binary) hands the pipeline naming Python classes to
    Python: the same areas as under the tester."""
    from test_harness import daf_binary

    p = tmp_path / "area_pipeline.paf"
    p.write_text(
        "nSlices: 2\nappStage: {\n"
        '    name: "AreaStage"\n'
        '    serialClass: "area_stage.AreaStageSerial"\n'
        '    parallelClass: "area_stage.AreaStageParallel"\n'
        f"    stagePolicy: @{UPSTREAM / 'AreaStagePolicy.paf'}\n"
        "}\n"
    )
    ev = tmp_path / "ev.jsonl"
    ev.write_text(json.dumps({"clipboard": {"width": 10.0, "height": 20.0}}) + "\n")
    dump = tmp_path / "dump.json"
    env = dict(os.environ, DAF_PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([str(EXAMPLE.parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([str(daf_binary()), "run", str(p), "--events", str(ev), "--dump", str(dump)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 visits on 2 slices" in r.stdout
    d = json.loads(dump.read_text())
    # 10 mm x 20 mm = 2 cm^2
    assert [s["summary"]["area"] for s in d["visits"][0]["slices"]] == [pytest.approx(2.0)] * 2
    assert d["visits"][0]["master"]["summary"]["areaUnit"] == "1e-4 m^2"

