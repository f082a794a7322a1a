"""Lazy reads: Butler.get_deferred resolves a dataset now and reads it later
(Gen3's DeferredDatasetHandle), whole, as components and as cut-outs."""

import os

import numpy as np
import numpy.testing as npt
import pytest

import daf


def ramp(h, w):
    return (np.arange(h)[:, None] * 1000 + np.arange(w)[None, :]).astype(np.float32)


@pytest.fixture
def calexp(repo):
    h, w = 30, 40
    mask = daf.Mask(np.zeros((h, w), np.int32), {"BAD": 0})
    mask.array[4, 3] = 1
    mi = daf.MaskedImage(daf.Image(ramp(h, w), xy0=(10, 20)), mask, np.full((h, w), 2.5, np.float32))
    md = {"CTYPE1": "RA---TAN", "CRPIX1": 10.0, "CRVAL1": 150.0, "OBSERVER": "me"}
    repo.put(daf.Exposure(mi, metadata=md, filter="r", exposure_time=30.0), "calexp", visit=1, ccd=2)
    return repo


def test_a_handle_reads_the_whole_and_its_parts_later(calexp):
    h = calexp.get_deferred("calexp", visit=1, ccd=2)
    assert isinstance(h, daf.DeferredDatasetHandle)
    assert h.dataset_type == "calexp" and h.data_id == {"visit": 1, "ccd": 2}
    assert os.fspath(h.path) == os.fspath(calexp.get_uri("calexp", visit=1, ccd=2))
    assert h.run == "" and "calexp" in repr(h)

    e = h.get()
    assert isinstance(e, daf.Exposure) and (e.filter, e.exposure_time, e.xy0) == ("r", 30.0, (10, 20))
    npt.assert_array_equal(e.image.array, ramp(30, 40))
    assert h.get(component="metadata")["OBSERVER"] == "me"
    assert h.get("wcs")["CRVAL1"] == 150.0 and "OBSERVER" not in h.get("wcs")
    m = h.get(component="mask")
    assert isinstance(m, daf.Mask) and m.array[4, 3] == 1 and m.planes["BAD"] == 0
    npt.assert_array_equal(h.get(component="variance").array, np.full((30, 40), 2.5, np.float32))
    img = h.get(component="image", bbox=(12, 25, 5, 3))  # PARENT frame
    assert isinstance(img, daf.Image) and img.xy0 == (12, 25)
    npt.assert_array_equal(img.array, ramp(30, 40)[5:8, 2:7])
    cut = h.get(bbox=(2, 5, 4, 4), origin="LOCAL")
    assert isinstance(cut, daf.Exposure) and cut.xy0 == (12, 25)
    npt.assert_array_equal(cut.image.array, ramp(30, 40)[5:9, 2:6])

    # a box given when the handle is made applies to every read; one given to get() replaces it
    hb = calexp.get_deferred("calexp", {"visit": 1}, ccd=2, bbox=(10, 20, 2, 2))
    npt.assert_array_equal(hb.get(component="image").array, ramp(30, 40)[:2, :2])
    assert hb.get(component="variance").array.shape == (2, 2)
    assert hb.get(component="image", bbox=(11, 21, 3, 1)).array.shape == (1, 3)

    # handles made for a component
    assert calexp.get_deferred("calexp.metadata", visit=1, ccd=2).get()["OBSERVER"] == "me"
    assert calexp.get_deferred("calexp.wcs", visit=1, ccd=2).get()["CTYPE1"].strip() == "RA---TAN"
    with pytest.raises(daf.BadDataId, match="metadata"):
        calexp.get_deferred("calexp.metadata", visit=1, ccd=2).get(component="mask")
    with pytest.raises(daf.DafError, match="no component"):
        h.get(component="psf")


def test_errors_now_for_a_missing_dataset_later_for_a_vanished_one(calexp):
    with pytest.raises(daf.NoResults):
        calexp.get_deferred("calexp", visit=9, ccd=2)
    h = calexp.get_deferred("calexp", visit=1, ccd=2)
    path = h.path
    saved = open(path, "rb").read()
    os.remove(path)
    with pytest.raises(daf.DatasetVanished, match="removed") as e:
        h.get(component="metadata")
    assert isinstance(e.value, daf.NoResults)  # a kind of "no such dataset"
    with open(path, "wb") as f:
        f.write(saved)
    assert h.get(component="metadata")["OBSERVER"] == "me"
    # replaced by a later put: the handle refuses, a new handle reads the new data
    calexp.put(daf.Exposure(daf.MaskedImage(np.ones((3, 3), np.float32))), "calexp", visit=1, ccd=2, clobber=True)
    with pytest.raises(daf.DatasetVanished, match="replaced"):
        h.get()
    assert calexp.get_deferred("calexp", visit=1, ccd=2).get().image.array.shape == (3, 3)


def test_a_handle_is_resolved_once_and_read_from_threads(repo):
    """Handles made in one thread are read from several (the GIL is
    released while reading)."""
    from concurrent.futures import ThreadPoolExecutor

    for v in range(8):
        repo.put({"visit": v, "exptime": 15.0}, "meta", visit=v, ccd=0)
    handles = [repo.get_deferred("meta", visit=v, ccd=0) for v in range(8)]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda h: h.get()["visit"], handles))
    assert got == list(range(8))
