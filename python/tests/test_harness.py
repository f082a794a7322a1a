"""Python stages on the harness: thread slices, failure semantics with the
Python traceback, policies with dictionary defaults, the stage tester, and
`daf run` handing pipelines with Python stages to `python -m daf.run`."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import daf
from daf import harness
from conftest import ROOT

HERE = pathlib.Path(__file__).resolve().parent

PIPELINE = """
pipelineName: pystages
nSlices: 2
appStage:
  - name: scale
    serialClass: stagepkg.stages.ScaleSerial
    parallelClass: stagepkg.stages.ScaleParallel
    stagePolicy:
      factor: 3.0
      failVisit: 2
  - name: noop
    parallelClass: NoOpParallel
failureStage:
  name: failure
  parallelClass: stagepkg.stages.RecordFailure
  stagePolicy:
    log: {log}
"""


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    p = tmp_path / "pipeline.yaml"
    p.write_text(PIPELINE.replace("{log}", str(tmp_path / "failures.log")))
    return p


def events(n):
    return [{"jobIdentity": {"visit": v}} for v in range(1, n + 1)]


def test_python_stages_on_threads(pipeline):
    report = harness.run(pipeline, events(3), slices=3, run_id="r7")
    assert report["n_slices"] == 3 and len(report["visits"]) == 3
    v1 = report["visits"][0]
    assert v1["master"]["summary"]["factor"] == 3.0  # policy over the dictionary default
    assert v1["master"]["summary"]["label"] == "scaled-r7"  # default kept, run id seen
    for s in v1["slices"]:
        r = s["rank"]
        assert s["summary"]["rank"] == r
        assert s["summary"]["sum"] == 64 * (10 + r)  # side 8 from the defaults
        assert s["summary"]["image"] == {"object": "ImageF"}
        assert s["summary"]["py"] == {"object": "PyObject"}
    # the stage object lives across visits (setup once)
    assert report["visits"][2]["slices"][0]["summary"]["calls"] == 3
    # visit 2 failed on slice 1 only: LSST's failure semantics
    fails = harness.failures(report)
    assert [(v, r) for v, r, _ in fails] == [(1, 1)]
    f = fails[0][2]
    assert f["stage"] == "scale" and f["failure_type"] == "ValueError"
    assert "bad pixels in visit 2" in f["message"]
    assert "Traceback" in f["message"] and "stages.py" in f["message"]  # the Python traceback
    v2 = report["visits"][1]
    # the failure stage ran on the failed clipboard
    assert (pipeline.parent / "failures.log").read_text() == "1 scale ValueError\n"
    assert v2["slices"][1]["summary"] == {}  # the visit goes on with an empty clipboard
    assert v2["slices"][0]["failure"] is None and v2["slices"][2]["failure"] is None
    assert v2["slices"][0]["summary"]["sum"] == 64 * 20


def test_unknown_python_class_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    p = tmp_path / "p.yaml"
    p.write_text("appStage:\n  - name: x\n    parallelClass: stagepkg.stages.NoSuchStage\n")
    with pytest.raises(daf.DafError, match="NoSuchStage"):
        harness.run(p)
    with pytest.raises(daf.PolicyError):
        harness.run(tmp_path / "missing.yaml")


def test_stage_tester(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    from stagepkg.stages import ScaleParallel, ScaleSerial

    t = harness.StageTester(ScaleSerial, "stagepkg.stages.ScaleParallel", policy={"side": 4})
    cb = harness.Clipboard()
    cb.put_job_identity("jobIdentity", {"visit": 5})
    out = t.run(cb)
    assert out["factor"] == 10.0 and out["label"] == "scaled-test"
    assert out["sum"] == 16 * 50.0
    np.testing.assert_array_equal(out["image"].array, np.full((4, 4), 50.0, np.float32))
    assert out["py"] == {"a python": "object"}
    assert t.parallel.policy["side"] == 4 and t.parallel.policy["failVisit"] == -1
    w = harness.StageTester(parallel=ScaleParallel, policy={"failVisit": 1})
    w.parallel.rank = 1
    with pytest.raises(ValueError, match="bad pixels"):
        w.run_worker(_cb(1))


def _cb(visit):
    cb = harness.Clipboard()
    cb.put_job_identity("jobIdentity", {"visit": visit})
    return cb


def test_clipboard_values():
    cb = harness.Clipboard({"i": 1, "f": 2.5, "s": "x", "b": True, "ps": daf.PropertySet({"a": 1})})
    assert (cb["i"], cb["f"], cb["s"], cb["b"]) == (1, 2.5, "x", True)
    assert cb["ps"]["a"] == 1 and "ps" in cb and len(cb) == 5
    cb.put_datasets("inputDatasets", [{"type": "raw", "ids": {"visit": 1}}])
    assert cb["inputDatasets"] == [{"type": "raw", "ids": {"visit": 1}, "path": None, "valid": True}]
    cb.put("shared", 3, shared=True)
    assert cb.shared_keys() == ["shared"]
    with pytest.raises(KeyError):
        cb["nope"]


def daf_binary():
    for profile in ("debug", "release"):
        b = ROOT / "target" / profile / "daf"
        if b.exists():
            return b
    pytest.skip("the daf binary is not built (cargo build -p daf-cli --bin daf)")


def test_daf_run_hands_python_stages_to_python(pipeline, tmp_path):
    ev = tmp_path / "events.jsonl"
    ev.write_text("\n".join(json.dumps(e) for e in events(2)) + "\n")
    dump = tmp_path / "dump.json"
    env = dict(os.environ, DAF_PYTHON=sys.executable, PYTHONPATH=str(HERE))
    r = subprocess.run([str(daf_binary()), "run", str(pipeline), "--events", str(ev), "--slices", "2",
                        "--dump", str(dump)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 3, r.stdout + r.stderr  # visit 2 fails on slice 1, on purpose
    assert "2 visits on 2 slices" in r.stdout
    assert "slice 1: ValueError in scale (bad pixels in visit 2" in r.stdout
    d = json.loads(dump.read_text())
    assert d["visits"][0]["slices"][1]["summary"]["sum"] == 64 * 11


def test_python_m_daf_run_on_the_ci_pipeline(tmp_path):
    """The pipeline .ci/checks/45-python.sh runs under mpirun, here on threads."""
    data = HERE / "data"
    dump = tmp_path / "d.json"
    env = dict(os.environ, PYTHONPATH=str(HERE))
    r = subprocess.run([sys.executable, "-m", "daf.run", str(data / "py_pipeline.yaml"), "--events",
                        str(data / "py_events.jsonl"), "--transport", "threads", "--dump", str(dump)],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "3 visits on 2 slices" in r.stdout
    d = json.loads(dump.read_text())
    assert [v["slices"][1]["failure"] is not None for v in d["visits"]] == [False, True, False]
    assert d["visits"][2]["master"]["summary"]["factor"] == 9.0
    r = subprocess.run([sys.executable, "-m", "daf.run", str(data / "py_pipeline.yaml"), "--transport", "mpi"],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    if not harness.HAS_MPI:
        assert r.returncode == 1 and "mpi" in r.stderr


def _img_repo(root):
    return daf.Butler.create_repository(root, {"img": ("img/v%(visit)d-c%(ccd)d.fits", "ImageF", "FitsStorage")})


def test_butler_method_io_stages_in_a_python_run(tmp_path, monkeypatch):
    """Built-in IO stages with the butler method between Python stages, run
    from Python: the OutputStage puts each slice's daf.Image through the
    butler, the InputStage reads it back, and the files are the repository's."""
    monkeypatch.syspath_prepend(str(HERE))
    repo = _img_repo(tmp_path / "repo")
    report = harness.run(HERE / "data" / "py_butler_pipeline.yaml", events(2), locations={"repo": str(repo)})
    assert harness.failures(report) == []
    assert report["n_slices"] == 2
    for visit, v in enumerate(report["visits"], start=1):
        for s in v["slices"]:
            r = s["rank"]
            assert s["summary"]["back_sum"] == 64 * (visit * 10 + r)
            assert s["summary"]["back_dtype"] == "float32" and s["summary"]["back_shape"] == "8x8"
            assert s["summary"]["outputDatasets"][0]["ids"] == {"visit": visit, "ccd": r}
    b = daf.Butler(repo)
    assert sorted(b.query_metadata("img", ["visit", "ccd"])) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    np.testing.assert_array_equal(b.get("img", visit=2, ccd=1).array, np.full((8, 8), 21, np.float32))
    # and through `python -m daf.run` (what `daf run` hands such pipelines to)
    repo2 = _img_repo(tmp_path / "repo2")
    env = dict(os.environ, PYTHONPATH=str(HERE))
    r = subprocess.run([sys.executable, "-m", "daf.run", str(HERE / "data" / "py_butler_pipeline.yaml"),
                        "--events", str(HERE / "data" / "py_events.jsonl"), "--location", f"repo={repo2}",
                        "--transport", "threads"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 visits on 2 slices" in r.stdout and "0 failed" in r.stdout
    assert len(daf.Butler(repo2).query_metadata("img", ["visit", "ccd"])) == 6


def test_butler_method_with_the_callers_butler(tmp_path, monkeypatch):
    """A stage whose butler policy names no root uses the daf.Butler given to
    harness.run: here one that writes to an output chained to an input."""
    monkeypatch.syspath_prepend(str(HERE))
    text = (HERE / "data" / "py_butler_pipeline.yaml").read_text().replace('            root: "%(repo)"\n', "")
    text = text.replace("          mapperPolicy:\n", "          mapperName: SimpleMapper\n")
    p = tmp_path / "p.yaml"
    p.write_text(text)
    inp = _img_repo(tmp_path / "in")
    out = tmp_path / "out"
    b = daf.Butler(inputs=[inp], outputs=[out])
    report = harness.run(p, events(1), butler=b)
    assert harness.failures(report) == []
    assert [s["summary"]["back_sum"] for s in report["visits"][0]["slices"]] == [640.0, 704.0]
    assert (out / "img" / "v1-c1.fits").is_file() and not (inp / "img").exists()
    np.testing.assert_array_equal(b.get("img", visit=1, ccd=0).array, np.full((8, 8), 10, np.float32))
    # without a butler, such a stage says what is missing
    with pytest.raises(daf.DafError, match="mapperPolicy.root"):
        harness.run(p, events(1))
