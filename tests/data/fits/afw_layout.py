"""Writes Exposure / MaskedImage files in the layouts LSST afw wrote over
the years, with astropy, and prints what astropy reads from them as JSON.

usage: afw_layout.py OUTDIR

Layouts (afw's ExposureFitsReader / MaskedImageFitsReader):
  v0  empty primary; IMAGE, MASK, VARIANCE by HDU order only (no EXTNAME,
      no EXTTYPE); xy0 as LTV1/LTV2 only.
  v1  planes marked by EXTTYPE only (no EXTNAME), INHERIT = T, xy0 as the
      'A' pixel WCS (CRVAL1A/2A, CRPIX1A/2A = 1, CTYPE1A/2A = LINEAR) beside
      LTV1/2, the sky WCS in every plane, EXPINFO_V = 1 and archive tables
      (EXTTYPE ARCHIVE_INDEX / ARCHIVE_DATA) after the planes.
  v2  as v1 plus EXTNAME on every plane.
  v3  as v2, EXPINFO_V = 3.
  reordered  planes marked by EXTNAME only, stored VARIANCE, MASK, IMAGE.
  hsc_like  v2 layout with a larger image and many mask pixels.
"""
import json
import os
import sys

import numpy as np
from astropy.io import fits

out = sys.argv[1]
W, H = 10, 8
X0, Y0 = 12, -3
yy, xx = np.mgrid[0:H, 0:W]
image = (xx * 0.5 - yy * 1.25 + 3.0).astype(np.float32)
mask = np.zeros((H, W), np.int32)
mask[2, 3] = 1 << 4  # one DETECTED pixel
variance = np.full((H, W), 100.0 / (W * H), np.float32)  # sums to 100
planes = {"MP_BAD": 0, "MP_SAT": 1, "MP_INTRP": 2, "MP_CR": 3, "MP_DETECTED": 4,
          "MP_EDGE": 5}
sky = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.1, "CRVAL2": 2.2,
       "CRPIX1": 5.0, "CRPIX2": 4.0, "CD1_1": -5.5e-5, "CD1_2": 0.0, "CD2_1": 0.0,
       "CD2_2": 5.5e-5, "RADESYS": "ICRS", "EQUINOX": 2000.0}


def xy0_cards(h, x0, y0, afw_a):
    h["LTV1"] = -x0
    h["LTV2"] = -y0
    if afw_a:
        h["CRVAL1A"] = x0
        h["CRVAL2A"] = y0
        h["CRPIX1A"] = 1
        h["CRPIX2A"] = 1
        h["CTYPE1A"] = "LINEAR"
        h["CTYPE2A"] = "LINEAR"
        h["CUNIT1A"] = "PIXEL"
        h["CUNIT2A"] = "PIXEL"


def plane(data, name, version, extname, exttype):
    hdu = fits.ImageHDU(data)
    h = hdu.header
    if exttype:
        h["EXTTYPE"] = name
    if extname:
        h["EXTNAME"] = name
    if version >= 1:
        h["INHERIT"] = True
    xy0_cards(h, X0, Y0, version >= 1)
    if version >= 1 or name == "IMAGE":
        for k, v in sky.items():
            h[k] = v
    if name == "MASK":
        for k, v in planes.items():
            h[k] = v
    return hdu


def archive():
    idx = fits.BinTableHDU.from_columns([
        fits.Column(name="id", format="J", array=np.array([1])),
        fits.Column(name="cat.archive", format="J", array=np.array([0])),
    ])
    idx.header["EXTTYPE"] = "ARCHIVE_INDEX"
    idx.header["EXTNAME"] = "ARCHIVE_INDEX"
    data = fits.BinTableHDU.from_columns([
        fits.Column(name="filter", format="8A", array=np.array(["HSC-I"])),
    ])
    data.header["EXTTYPE"] = "ARCHIVE_DATA"
    data.header["EXTNAME"] = "ARCHIVE_DATA"
    return [idx, data]


def write(name, version, extname, exttype, order=("IMAGE", "MASK", "VARIANCE"),
          im=image, mk=mask, var=variance):
    prim = fits.PrimaryHDU()
    prim.header["FILTER"] = "i"
    prim.header["EXPTIME"] = 30.0
    prim.header["OBSERVER"] = "afw-layout"
    if version >= 1:
        prim.header["EXPINFO_V"] = version
        prim.header["AR_HDU"] = 5
    data = {"IMAGE": im, "MASK": mk, "VARIANCE": var}
    hdus = [prim] + [plane(data[n], n, version, extname, exttype) for n in order]
    if version >= 1:
        hdus += archive()
    path = os.path.join(out, name)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


files = {
    "exposure-v0.fits": write("exposure-v0.fits", 0, False, False),
    "exposure-v1.fits": write("exposure-v1.fits", 1, False, True),
    "exposure-v2.fits": write("exposure-v2.fits", 2, True, True),
    "exposure-v3.fits": write("exposure-v3.fits", 3, True, True),
    "reordered.fits": write("reordered.fits", 2, True, False,
                            order=("VARIANCE", "MASK", "IMAGE")),
}
rng = np.random.default_rng(7)
big_mask = (rng.random((64, 96)) < 0.3).astype(np.int32) * 2
big_var = rng.random((64, 96)).astype(np.float32) * 1000
big_im = rng.normal(size=(64, 96)).astype(np.float32)
files["hsc-like.fits"] = write("hsc-like.fits", 2, False, True, im=big_im, mk=big_mask,
                               var=big_var)

report = {}
for n, p in files.items():
    with fits.open(p) as hl:
        by = {}
        for i, h in enumerate(hl):
            t = h.header.get("EXTTYPE", h.header.get("EXTNAME"))
            if t in ("IMAGE", "MASK", "VARIANCE") and t not in by:
                by[t] = h.data
        if "IMAGE" not in by:  # v0: HDU order
            by = {"IMAGE": hl[1].data, "MASK": hl[2].data, "VARIANCE": hl[3].data}
        report[n] = {
            "image_sum": float(by["IMAGE"].astype(np.float64).sum()),
            "mask_nonzero": int(np.count_nonzero(by["MASK"])),
            "mask_sum": int(by["MASK"].sum()),
            "variance_sum": float(by["VARIANCE"].astype(np.float64).sum()),
            "shape": list(by["IMAGE"].shape),
        }
print(json.dumps(report))
