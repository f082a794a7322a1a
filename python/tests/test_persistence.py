"""Persistence, LogicalLocation, storages by name and Boost archives written by
real C++ Boost (the goldens in tests/data/boost)."""

import pathlib

import numpy as np
import numpy.testing as npt
import pytest

import daf
from conftest import ROOT

GOLDEN = ROOT / "tests" / "data" / "boost"


def test_logical_location():
    assert daf.LogicalLocation("out/v%04d(visit).fits", {"visit": 3}).location == "out/v0003.fits"
    assert str(daf.LogicalLocation("%(input)/raw/%(ccd)", {"ccd": "c1"}, {"input": "/data"})) == "/data/raw/c1"
    with pytest.raises(daf.StorageError, match="nope"):
        daf.LogicalLocation("%(nope)")


def test_persistence_by_storage_name(tmp_path):
    p = daf.Persistence()
    assert {"BoostStorage", "XmlStorage", "FitsStorage"} <= set(p.storages())
    ps = daf.PropertySet({"a": 1, "b": [1.5, 2.5], "s": "x"})
    for storage, name in [("BoostStorage", "a.boost"), ("XmlStorage", "a.xml")]:
        loc = daf.LogicalLocation(str(tmp_path / name))
        p.persist(ps, storage, loc)
        assert p.retrieve("PropertySet", storage, loc) == ps
    img = daf.Image(np.arange(12, dtype=np.float32).reshape(3, 4))
    p.persist(img, "FitsStorage", tmp_path / "i.fits")
    npt.assert_array_equal(p.retrieve("ImageF", "FitsStorage", tmp_path / "i.fits").array, img.array)
    with pytest.raises(daf.StorageError):
        p.retrieve("PropertySet", "BoostStorage", tmp_path / "missing.boost")
    with pytest.raises(daf.DafError, match="NoSuchStorage"):
        p.persist(ps, "NoSuchStorage", tmp_path / "x")


@pytest.mark.parametrize("version", ["1.74", "1.81"])
@pytest.mark.parametrize("kind,ext", [("binary", "bin"), ("text", "txt"), ("xml", "xml")])
def test_boost_archives_match_cpp(tmp_path, version, kind, ext):
    golden = GOLDEN / f"boost-{version}" / "persistable-tracked" / f"propertyset_lsst.{ext}"
    ps, info = daf.boost.read(golden, info=True)
    assert info == {"kind": kind, "library_version": 18 if version == "1.74" else 19}
    assert ps.names()[:5] == ["name", "num", "ra", "flags", "big"]
    out = tmp_path / f"out.{ext}"
    daf.boost.write(ps, out, kind=kind, boost_version=version)
    assert out.read_bytes() == golden.read_bytes()  # byte-identical to C++ Boost
    # every kind of both versions holds the same values
    other = daf.boost.read(GOLDEN / "boost-1.74" / "persistable-tracked" / "propertyset_lsst.txt")
    assert other == ps


def test_boost_errors(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x16\x00\x00\x00\x00\x00\x00\x00serialization::archive" + b"\xff" * 5)
    with pytest.raises(daf.StorageError, match="not a readable PropertySet archive"):
        daf.boost.read(bad)
    with pytest.raises(ValueError, match="1.74"):
        daf.boost.write({"a": 1}, tmp_path / "x", boost_version="1.60")
    with pytest.raises(ValueError):
        daf.boost.write({"a": 1}, tmp_path / "x", kind="json")
    assert not (tmp_path / "x").exists()
