"""Images, masks, exposures and catalogs: NumPy views, round trips through
the butler, and files read back by astropy."""

import datetime

import numpy as np
import numpy.testing as npt
import pytest

import daf


def ramp(h, w, dtype=np.float32):
    y, x = np.mgrid[0:h, 0:w]
    return (x + 1000 * y).astype(dtype)


def test_image_is_a_numpy_view():
    a = ramp(30, 40)
    im = daf.Image(a, xy0=(10, 20))
    assert (im.width, im.height, im.shape, im.xy0) == (40, 30, (30, 40), (10, 20))
    assert im.dtype == "float32" and im.persistable_name == "ImageF"
    v = im.array
    assert v.base is im and v.flags.writeable and v.flags.c_contiguous
    npt.assert_array_equal(v, a)
    v[3, 4] = -1.0  # writes through to the image
    assert im.array[3, 4] == -1.0
    assert np.shares_memory(im.array, np.asarray(im))
    assert a[3, 4] != -1.0  # the constructor copied its input
    # any array: strided, other dtypes
    s = daf.Image(np.arange(100, dtype=np.int64).reshape(10, 10)[::2, ::3])
    npt.assert_array_equal(s.array, np.arange(100).reshape(10, 10)[::2, ::3])
    assert daf.Image(np.zeros((2, 2), bool)).dtype == "int16"
    for dt, name in [(np.uint8, "ImageB"), (np.int16, "ImageS"), (np.uint16, "ImageU"), (np.int32, "ImageI"),
                     (np.uint32, "ImageUI"), (np.int64, "ImageL"), (np.float64, "ImageD")]:
        assert daf.Image(np.zeros((2, 3), dt)).persistable_name == name
    with pytest.raises(ValueError, match="2-d"):
        daf.Image(np.zeros(5))
    with pytest.raises(TypeError):
        daf.Image(np.zeros((2, 2), np.complex64))
    # the view keeps the image alive
    v = daf.Image(a).array
    import gc
    gc.collect()
    npt.assert_array_equal(v, a)


@pytest.mark.parametrize("ds,dtype", [("image", np.float32), ("imageU", np.uint16), ("imageD", np.float64)])
def test_image_round_trip_and_astropy(repo, ds, dtype):
    fits = pytest.importorskip("astropy.io.fits")
    a = ramp(50, 70, dtype)
    repo.put(daf.Image(a, xy0=(5, 6)), ds, visit=1)
    back = repo.get(ds, visit=1)
    assert back.xy0 == (5, 6)
    npt.assert_array_equal(back.array, a)
    path = repo.get_uri(ds, visit=1)
    on_disk = fits.getdata(path)
    npt.assert_array_equal(on_disk, a)
    assert on_disk.dtype.name == np.dtype(dtype).name
    # astropy writes, daf reads
    b = ramp(20, 10, dtype)[::-1]
    out = repo.get_uri(ds, visit=2, write=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.ascontiguousarray(b)).writeto(out)
    repo.ingest([out], ds, transfer="direct", data_ids={out: {"visit": 2}})
    npt.assert_array_equal(repo.get(ds, visit=2).array, b)


def test_cutout_from_python(repo):
    a = ramp(60, 80)
    repo.put(daf.Image(a, xy0=(100, 200)), "image", visit=3)
    cut = repo.get("image", visit=3, bbox=(110, 220, 5, 4))
    npt.assert_array_equal(cut.array, a[20:24, 10:15])
    assert cut.xy0 == (110, 220)
    local = repo.get("image", visit=3, bbox=(10, 20, 5, 4), origin="LOCAL")
    npt.assert_array_equal(local.array, a[20:24, 10:15])


def test_mask_masked_image_exposure_round_trips(repo):
    fits = pytest.importorskip("astropy.io.fits")
    h, w = 25, 35
    mask = daf.Mask(np.zeros((h, w), np.int32))
    assert mask.planes["BAD"] == 0 and mask.plane_bitmask("SAT") == 2
    bit = mask.add_plane("STREAK")
    mask.array[2, 3] = 1 << bit
    repo.put(mask, "mask", visit=1)
    m = repo.get("mask", visit=1)
    assert m.planes == mask.planes
    npt.assert_array_equal(m.array, mask.array)
    hdr = fits.getheader(repo.get_uri("mask", visit=1), 0 if fits.getdata(repo.get_uri("mask", visit=1)) is not None else 1)
    assert hdr["MP_STREAK"] == bit

    var = np.full((h, w), 2.5, np.float32)
    mi = daf.MaskedImage(daf.Image(ramp(h, w), xy0=(1, 2)), mask, var)
    assert mi.mask is mask and mi.image.xy0 == (1, 2)
    repo.put(mi, "mimage", visit=1)
    back = repo.get("mimage", visit=1)
    npt.assert_array_equal(back.image.array, ramp(h, w))
    npt.assert_array_equal(back.mask.array, mask.array)
    npt.assert_array_equal(back.variance.array, var)
    assert back.xy0 == (1, 2)
    with fits.open(repo.get_uri("mimage", visit=1)) as hdul:
        imgs = [x.data for x in hdul if x.data is not None]
        npt.assert_array_equal(imgs[0], ramp(h, w))
        npt.assert_array_equal(imgs[1], mask.array)
        npt.assert_array_equal(imgs[2], var)

    t = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    md = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 10.0, "CRPIX2": 12.0, "CRVAL1": 150.0,
          "CRVAL2": 2.0, "CD1_1": -5e-5, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 5e-5, "OBSERVER": "me"}
    exp = daf.Exposure(mi, metadata=md, filter="r", exposure_time=30.0, obs_date=t)
    assert exp.wcs["CRVAL1"] == 150.0 and "OBSERVER" not in exp.wcs
    repo.put(exp, "calexp", visit=1, ccd=2)
    e = repo.get("calexp", visit=1, ccd=2)
    assert isinstance(e, daf.Exposure)
    assert (e.filter, e.exposure_time, e.obs_date, e.xy0) == ("r", 30.0, t, (1, 2))
    assert e.metadata["OBSERVER"] == "me"
    assert e.wcs["CTYPE1"].strip() == "RA---TAN" and e.wcs["CD2_2"] == 5e-5
    assert repo.get("calexp.wcs", visit=1, ccd=2)["CRPIX2"] == 12.0
    npt.assert_array_equal(e.image.array, ramp(h, w))
    npt.assert_array_equal(repo.get("calexp.variance", visit=1, ccd=2).array, var)
    assert repo.get("calexp.mask", visit=1, ccd=2).planes["STREAK"] == bit
    assert repo.get("calexp.metadata", visit=1, ccd=2)["OBSERVER"] == "me"
    # astropy reads the exposure's image HDU and its WCS
    wcs_mod = pytest.importorskip("astropy.wcs")
    with fits.open(repo.get_uri("calexp", visit=1, ccd=2)) as hdul:
        hdu = [x for x in hdul if x.data is not None][0]
        npt.assert_array_equal(hdu.data, ramp(h, w))
        ra, dec = wcs_mod.WCS(hdul[0].header if hdul[0].header.get("CTYPE1") else hdu.header).wcs_pix2world(9.0, 11.0, 0)
        npt.assert_allclose([ra, dec], [150.0, 2.0])

    dec = daf.DecoratedImage(ramp(h, w), {"EXPTIME": 15.0})
    repo.put(dec, "dimage", visit=1)
    d = repo.get("dimage", visit=1)
    assert d.metadata["EXPTIME"] == 15.0
    npt.assert_array_equal(d.image.array, ramp(h, w))


def test_exposure_detector(repo):
    """Exposure.detector: kept by a put/get round trip (DETNAME/DETSER cards), else from the data id."""
    fits = pytest.importorskip("astropy.io.fits")
    det = daf.Detector(0, "0", serial="0000011")
    assert (det.id, det.name, det.serial, det.type) == (0, "0", "0000011", "SCIENCE")
    with pytest.raises(ValueError, match="detector type"):
        daf.Detector(1, "x", type="BIG")
    exp = daf.Exposure(ramp(5, 4), filter="g", detector=det)
    assert exp.detector == det
    repo.put(exp, "calexp", visit=1, ccd=0)
    back = repo.get("calexp", visit=1, ccd=0)
    assert back.detector == det
    hdr = fits.getheader(repo.get_uri("calexp", visit=1, ccd=0), 0)
    assert (hdr["DETECTOR"], hdr["DETNAME"], hdr["DETSER"]) == (0, "0", "0000011")
    # an exposure without one: the data id's ccd gives it when read back
    plain = daf.Exposure(ramp(5, 4))
    assert plain.detector is None
    repo.put(plain, "calexp", visit=2, ccd=5)
    d = repo.get("calexp", visit=2, ccd=5).detector
    assert (d.id, d.name, d.serial) == (5, "5", "")
    back.detector = None
    assert back.detector is None


def catalog_array(n=50):
    rng = np.random.default_rng(3)
    arr = np.empty(n, dtype=[("id", "i8"), ("ra", "f8"), ("dec", "f8"), ("flux", "f4"), ("nchild", "i4"),
                             ("flag", "?"), ("name", "U12")])
    arr["id"] = np.arange(n) + 10**12
    arr["ra"] = rng.uniform(0, 360, n)
    arr["dec"] = rng.uniform(-90, 90, n)
    arr["flux"] = rng.normal(100, 10, n).astype(np.float32)
    arr["nchild"] = np.arange(n) % 3
    arr["flag"] = np.arange(n) % 2 == 0
    arr["name"] = [f"src{i}" for i in range(n)]
    return arr


def test_catalog_round_trip_and_astropy(repo):
    table_mod = pytest.importorskip("astropy.table")
    arr = catalog_array()
    cat = daf.SourceCatalog.from_array(arr, units={"ra": "deg", "dec": "deg", "flux": "count"},
                                       docs={"ra": "right ascension"}, metadata={"RUN": "r1"})
    assert len(cat) == 50 and cat.names == list(arr.dtype.names)
    assert cat.schema[1] == ("ra", "float64", "right ascension", "deg")
    npt.assert_array_equal(cat.to_array(), arr)
    npt.assert_array_equal(cat["flux"], arr["flux"])
    repo.put(cat, "src", visit=1)
    back = repo.get("src", visit=1)
    out = back.to_array()
    assert out.dtype.names == arr.dtype.names
    for n in arr.dtype.names:
        npt.assert_array_equal(out[n], arr[n])
    assert back.metadata["RUN"] == "r1"
    t = back.to_astropy()
    assert str(t["ra"].unit) == "deg" and t["ra"].description == "right ascension"
    # astropy's reading of the file daf wrote equals the catalog
    disk = table_mod.Table.read(repo.get_uri("src", visit=1), hdu=1)
    for n in arr.dtype.names:
        col = np.asarray(disk[n])
        if arr.dtype[n].kind == "U":
            col = np.array([c.decode() if isinstance(c, bytes) else c for c in col])
        npt.assert_array_equal(col, arr[n], err_msg=n)
    assert str(disk["ra"].unit) == "deg"
    # and a table astropy built converts back
    again = daf.SourceCatalog.from_array(t).to_array()
    for n in arr.dtype.names:
        npt.assert_array_equal(again[n], arr[n])
    with pytest.raises(TypeError, match="structured"):
        daf.SourceCatalog.from_array(np.zeros(3))
