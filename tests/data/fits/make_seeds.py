"""Writes the seed files of the FITS fuzz campaign (tests/fits_fuzz.rs) into
tests/data/fits/seeds with astropy. Re-run only to change the seeds:
    $DAF_PYTHON tests/data/fits/make_seeds.py tests/data/fits/seeds
Small images (32 x 24) so that 10,000 mutants read in seconds."""
import gzip
import os
import sys
import warnings

import numpy as np
from astropy.io import fits

warnings.simplefilter("ignore")
out = sys.argv[1]
W, H = 32, 24
yy, xx = np.mgrid[0:H, 0:W]
f32 = (np.sin(xx / 3.0) * 100 + yy * 2.5).astype(np.float32)
i16 = (xx * 37 - yy * 11).astype(np.int16)
i32 = (xx * 100000 - yy * 7).astype(np.int32)


def w(name, hdus):
    fits.HDUList(hdus).writeto(os.path.join(out, name), overwrite=True, checksum=False)


prim = fits.PrimaryHDU()
prim.header["FILTER"] = "r"
w("image_f32.fits", [fits.PrimaryHDU(f32)])
planes = []
for n, d in (("IMAGE", f32), ("MASK", (xx % 5 == 0).astype(np.int32)),
             ("VARIANCE", np.abs(f32) + 1)):
    h = fits.ImageHDU(d, name=n)
    h.header["EXTTYPE"] = n
    h.header["INHERIT"] = True
    h.header["LTV1"] = -5
    h.header["CRVAL1A"] = 5
    h.header["CTYPE1A"] = "LINEAR"
    planes.append(h)
w("exposure.fits", [prim] + planes)
cat = fits.BinTableHDU.from_columns([
    fits.Column(name="id", format="K", array=np.arange(20)),
    fits.Column(name="ra", format="D", unit="deg", array=np.linspace(0, 1, 20)),
    fits.Column(name="flux", format="E", array=np.arange(20) * 0.5),
    fits.Column(name="ok", format="L", array=np.arange(20) % 2 == 0),
    fits.Column(name="name", format="6A", array=np.array(["s%d" % i for i in range(20)])),
], name="CATALOG")
w("catalog.fits", [fits.PrimaryHDU(), cat])
asc = fits.TableHDU.from_columns([fits.Column(name="a", format="I5", array=np.arange(5))])
w("ascii_table.fits", [fits.PrimaryHDU(), asc])
nan = f32.copy()
nan[3, 4] = np.nan
nan[10, 20] = np.nan
w("rice_f32_nan.fits.fz", [fits.PrimaryHDU(), fits.CompImageHDU(nan, compression_type="RICE_1")])
w("rice_i16.fits.fz", [fits.PrimaryHDU(), fits.CompImageHDU(i16, compression_type="RICE_1",
                                                             tile_shape=(8, 16))])
w("rice_u16.fits.fz", [fits.PrimaryHDU(), fits.CompImageHDU((i16.astype(np.int32) + 30000).astype(np.uint16),
                                                             compression_type="RICE_1")])
w("gzip1_i32.fits.fz", [fits.PrimaryHDU(), fits.CompImageHDU(i32, compression_type="GZIP_1")])
w("gzip2_f32.fits.fz", [fits.PrimaryHDU(), fits.CompImageHDU(f32, compression_type="GZIP_2",
                                                              quantize_level=0.0)])
w("gzip2_f32_dither2.fits.fz", [fits.PrimaryHDU(), fits.CompImageHDU(
    nan, compression_type="GZIP_2", quantize_method=2)])
w("plio_i16.fits.fz", [fits.PrimaryHDU(), fits.CompImageHDU(np.abs(i16) % 1000,
                                                             compression_type="PLIO_1")])
w("hcompress_i16.fits.fz", [fits.PrimaryHDU(), fits.CompImageHDU(i16, compression_type="HCOMPRESS_1")])
with open(os.path.join(out, "image_f32.fits"), "rb") as f:
    raw = f.read()
with gzip.open(os.path.join(out, "image_f32.fits.gz"), "wb") as g:
    g.write(raw)
with open(os.path.join(out, "exposure.fits"), "rb") as f:
    raw = f.read()
with gzip.open(os.path.join(out, "exposure.fits.gz"), "wb") as g:
    g.write(raw)
# Random groups (GROUPS = T, NAXIS1 = 0): 3 groups of 2 parameters + 4x2 data.
gd = fits.GroupData(np.arange(24, dtype=np.float32).reshape(3, 4, 2),
                    parnames=["u", "v"], pardata=[np.arange(3.0), np.arange(3.0) * 2],
                    bitpix=-32)
fits.GroupsHDU(gd).writeto(os.path.join(out, "random_groups.fits"), overwrite=True)
# Random groups followed by an image extension.
fits.HDUList([fits.GroupsHDU(gd), fits.ImageHDU(f32)]).writeto(
    os.path.join(out, "random_groups_ext.fits"), overwrite=True)
