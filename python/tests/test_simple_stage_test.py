"""pex_harness's simpleStageTest example (python/examples/simple_stage_test.py):
AreaStage with the upstream policy and dictionary, through the stage tester
on the worker and master paths, and through the harness from a pipeline
policy; and the SimpleStageTester behaviours of daf.harness.StageTester."""

import json
import os
import subprocess
import sys

import pytest

import daf
from daf import harness
from conftest import ROOT

EXAMPLES = ROOT / "python" / "examples"
UPSTREAM = ROOT / "tests" / "data" / "harness" / "upstream" / "simpleStageTest"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import simple_stage_test

    return simple_stage_test


def test_the_example_script_runs_and_checks_its_areas():
    env = dict(os.environ)
    r = subprocess.run([sys.executable, str(EXAMPLES / "simple_stage_test.py")], capture_output=True,
                       text=True, env=env, timeout=120, cwd=ROOT / "python")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["worker: area=2.0 rank=0", "master: area=2.0 unit=1e-4 m^2"]


def test_area_stage_on_worker_and_master_with_the_upstream_policy(example):
    policy = daf.Policy.load(UPSTREAM / "AreaStagePolicy.paf")
    t = harness.StageTester(example.AreaStage(policy))
    # inputScale -3 (mm), outputScale -2 (cm): 10 mm x 20 mm = 2 cm^2
    out = t.run({"width": 10, "height": 20}, 0)
    assert out["area"] == pytest.approx(2.0) and out["areaRank"] == 0
    assert "areaUnit" not in out  # the worker path runs process only
    out = t.run({"width": 10, "height": 20}, -1)
    assert out["area"] == pytest.approx(2.0) and out["areaUnit"] == "1e-4 m^2"
    assert "areaRank" not in out  # the master path runs pre- and postprocess only
    out = t.run({"width": 3, "height": 4}, 5)
    assert out["area"] == pytest.approx(0.12) and out["areaRank"] == 5  # rank = sliceID
    assert t.parallel.policy["inputScale"] == -3 and t.parallel.policy["outputScale"] == -2


def test_area_stage_dictionary_defaults_and_validation(example):
    # No policy: the dictionary's defaults (0, 0): metres in, square metres out.
    t = harness.StageTester(example.AreaStage())
    assert t.run({"width": 10, "height": 20}, 0)["area"] == 200.0
    # One scale given, the other from the dictionary.
    t = harness.StageTester(example.AreaStage({"inputScale": 3}))
    assert t.run({"width": 1, "height": 2}, -1)["area"] == pytest.approx(2e6)
    with pytest.raises(daf.PolicyError, match="WRONG_TYPE inputScale"):
        example.AreaStageParallel({"inputScale": "x"})
    with pytest.raises(daf.PolicyError, match="UNKNOWN_NAME nope"):
        example.AreaStageSerial({"nope": 1})
    assert example.area_of(10, 20, -3, -2) == pytest.approx(2.0)


class _Record(harness.ParallelProcessing):
    def process(self, clipboard):
        seen = clipboard["seen"] if "seen" in clipboard else ""
        clipboard.put("seen", f"{seen}{self.name}:{self.stage_id}:{self.rank};")


class _RecordSerial(harness.SerialProcessing):
    def preprocess(self, clipboard):
        clipboard.put("pre", f"{self.name}:{self.stage_id}:{self.rank}")


def test_stage_tester_behaves_as_simple_stage_tester():
    t = harness.StageTester(_RecordSerial, _Record, name="first")
    assert t.add_stage(parallel=_Record, name="second") is t  # chaining
    out = t.run({"x": 1}, 2)
    assert out["seen"] == "first:1:2;second:2:2;"  # stage ids from 1, rank = sliceID
    assert "pre" not in out
    out = t.run(harness.Clipboard({"x": 1}), -1)
    assert out["pre"] == "first:1:-1" and "seen" not in out  # master: rank -1
    assert t.run_worker(None)["seen"] == "first:1:2;second:2:2;"
    for bad in ([("x", 1)], "x=1", 3):
        with pytest.raises(TypeError, match="a clipboard is a Clipboard or a dict"):
            t.run(bad, 0)
    with pytest.raises(TypeError, match="its own parallel class"):
        harness.StageTester().add_stage(harness.Stage(), _Record)
    assert harness.StageTester().run({"a": 1})["a"] == 1  # no stages: passes through


PIPELINE = """nSlices: 2
appStage: {
    name: "AreaStage"
    serialClass: "simple_stage_test.AreaStageSerial"
    parallelClass: "simple_stage_test.AreaStageParallel"
    stagePolicy: @%s
}
"""


def test_area_stage_runs_from_a_pipeline_policy(example, tmp_path):
    p = tmp_path / "area_pipeline.paf"
    p.write_text(PIPELINE % (UPSTREAM / "AreaStagePolicy.paf"))
    events = [{"clipboard": {"width": 10.0, "height": 20.0}}, {"clipboard": {"width": 1.0, "height": 1.0}}]
    report = harness.run(p, events)
    assert harness.failures(report) == []
    v1, v2 = report["visits"]
    assert v1["master"]["summary"]["area"] == pytest.approx(2.0)
    assert v1["master"]["summary"]["areaUnit"] == "1e-4 m^2"
    assert [s["summary"]["areaRank"] for s in v1["slices"]] == [0, 1]
    assert [s["summary"]["area"] for s in v2["slices"]] == [pytest.approx(0.01)] * 2
    # and through `python -m daf.run`, what `daf run` hands Python pipelines to
    ev = tmp_path / "ev.jsonl"
    ev.write_text("".join(json.dumps(e) + "\n" for e in events))
    dump = tmp_path / "dump.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "daf.run", str(p), "--events", str(ev), "--transport", "threads",
                        "--dump", str(dump)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 visits on 2 slices" in r.stdout
    d = json.loads(dump.read_text())
    assert d["visits"][0]["slices"][1]["summary"]["area"] == pytest.approx(2.0)


def test_daf_run_runs_area_stage_from_a_paf_pipeline(tmp_path):
    from test_harness import daf_binary

    p = tmp_path / "area_pipeline.paf"
    p.write_text(PIPELINE % (UPSTREAM / "AreaStagePolicy.paf"))
    ev = tmp_path / "ev.jsonl"
    ev.write_text(json.dumps({"clipboard": {"width": 10.0, "height": 20.0}}) + "\n")
    dump = tmp_path / "dump.json"
    env = dict(os.environ, DAF_PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([str(daf_binary()), "run", str(p), "--events", str(ev), "--dump", str(dump)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 visits on 2 slices" in r.stdout
    d = json.loads(dump.read_text())
    assert [s["summary"]["area"] for s in d["visits"][0]["slices"]] == [pytest.approx(2.0)] * 2
    assert d["visits"][0]["master"]["summary"]["areaUnit"] == "1e-4 m^2"
