//! FITS formatters for the image persistables and [`SourceCatalog`], through
//! [`FitsStorage`].
//!
//! Layouts (those of LSST afw):
//! * `Image*`, `Mask`: one image HDU (`u16`/`u32` with `BZERO`); a mask's
//!   planes are `MP_<NAME> = bit` cards.
//! * `DecoratedImage*`: the primary image with the metadata as its header.
//! * `MaskedImage*`, `Exposure*`: an empty primary (holding an exposure's
//!   metadata, `FILTER`, `EXPTIME`, `DATE-OBS`) and three image extensions
//!   with `EXTNAME` `IMAGE`, `MASK`, `VARIANCE`.
//!
//!   Reading also accepts DC3-era afw's three files: when the location
//!   `BASE` does not exist but `BASE_img.fits` does, the planes come from
//!   `BASE_img.fits`, `BASE_msk.fits` and `BASE_var.fits` (each a primary
//!   image; an exposure's metadata is `BASE_img.fits`'s header). The mask
//!   and variance files are required unless the additional data say
//!   `needAllHdus = false`; a missing one is [`FormatterError::Invalid`], a
//!   set with no `BASE_img.fits` is a storage `NotFound` naming the files
//!   there. Writes always produce the one multi-extension file at the
//!   location as given (extension or not): the three-file layout is read so
//!   that old data can come in, never written, as modern afw reads only the
//!   one-file layout.
//! * `SourceCatalog`: an empty primary with the metadata, then a `BINTABLE`.
//!
//! `xy0` is stored as `LTV1/LTV2 = -xy0`.
//!
//! Additional data understood when reading:
//! * `llcX`, `llcY`, `width`, `height` (all four, integers) and `imageOrigin`
//!   (`"PARENT"`, the default, or `"LOCAL"`): read only that box;
//! * `component` (`"image"`, `"mask"`, `"variance"`) for `Image*`/`Mask`:
//!   read that plane of a masked image or exposure file, without the rest;
//! * `hdu` (integer): the HDU to read when the location has no `[N]`.
//!
//! [`read_metadata`] reads a header alone (registered as `PropertyList`).

use daf_base::{DateTime, PropertySet, Timescale};
use daf_storages::fits::header::{cards_to_property_set, is_wcs_key, property_set_to_cards};
use daf_storages::fits::{Card, ColumnData, FitsStorage, HduKind, LegacySet, TableColumn, Value};
use daf_storages::{LogicalLocation, Storage};

use crate::catalog::{Column, Field, FieldType, SourceCatalog};
use crate::error::FormatterError;
use crate::formatter::{expect_object, unsupported, Formatter};
use crate::image::{
    DecoratedImage, Detector, DetectorType, Exposure, Image, ImagePixel, Mask, MaskedImage, Pixel,
};
use crate::persistable::Persistable;
use crate::registry::FormatterRegistry;
use crate::Result;

fn fits<'a>(f: &dyn Formatter, s: &'a mut dyn Storage) -> Result<&'a mut FitsStorage> {
    if s.as_any().is::<FitsStorage>() {
        Ok(s.as_any_mut()
            .downcast_mut::<FitsStorage>()
            .expect("checked"))
    } else {
        Err(unsupported(f, s))
    }
}

fn invalid(name: &str, message: impl Into<String>) -> FormatterError {
    FormatterError::Invalid {
        persistable: name.into(),
        message: message.into(),
    }
}

/// How objects of one type lie in a FITS file: the part each FITS formatter
/// says for itself. Every `FitsLayout` is a [`Formatter`] through one generic
/// impl, which checks that the storage is a [`FitsStorage`] and the object of
/// the layout's type before handing them over.
pub trait FitsLayout: Send + Sync {
    /// The type written and read.
    type Object: Persistable;
    /// The persistable name the formatter handles.
    fn name(&self) -> &str;
    /// Writes `obj` to `s`.
    fn write_fits(&self, obj: &Self::Object, s: &mut FitsStorage) -> Result<()>;
    /// Reads an object from `s`, honouring the additional data `ad`
    /// (cut-outs, `hdu`, `component`).
    fn read_fits(&self, s: &mut FitsStorage, ad: &PropertySet) -> Result<Self::Object>;
}

impl<L: FitsLayout> Formatter for L {
    fn persistable_name(&self) -> &str {
        self.name()
    }
    fn write(
        &self,
        obj: &dyn Persistable,
        storage: &mut dyn Storage,
        _: &PropertySet,
    ) -> Result<()> {
        let obj = expect_object::<L::Object>(self, obj)?;
        let s = fits(self, storage)?;
        self.write_fits(obj, s)
    }
    fn read(&self, storage: &mut dyn Storage, ad: &PropertySet) -> Result<Box<dyn Persistable>> {
        let s = fits(self, storage)?;
        Ok(Box::new(self.read_fits(s, ad)?))
    }
}

/// A requested cut-out, in the parent (`PARENT`) or local (`LOCAL`) frame.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CutOut {
    x: i64,
    y: i64,
    w: usize,
    h: usize,
    parent: bool,
}

fn cut_out(ad: &PropertySet, name: &str) -> Result<Option<CutOut>> {
    let keys = ["llcX", "llcY", "width", "height"];
    let present = keys.iter().filter(|k| ad.exists(k)).count();
    if present == 0 {
        return Ok(None);
    }
    if present != 4 {
        return Err(invalid(
            name,
            "a cut-out needs all of llcX, llcY, width and height",
        ));
    }
    let w = ad.get_as_i64("width")?;
    let h = ad.get_as_i64("height")?;
    if w < 0 || h < 0 {
        return Err(invalid(name, format!("negative cut-out size {w}x{h}")));
    }
    let parent = match ad
        .get_or::<String>("imageOrigin", "PARENT".into())?
        .as_str()
    {
        "PARENT" => true,
        "LOCAL" => false,
        o => {
            return Err(invalid(
                name,
                format!("imageOrigin must be PARENT or LOCAL, not {o:?}"),
            ))
        }
    };
    Ok(Some(CutOut {
        x: ad.get_as_i64("llcX")?,
        y: ad.get_as_i64("llcY")?,
        w: w as usize,
        h: h as usize,
        parent,
    }))
}

/// The xy0 of an image HDU as afw reads it: the `A` pixel WCS
/// (`CRVAL1A/CRVAL2A` with `CTYPE1A/2A = LINEAR`, `CRPIX1A/2A = 1`) when
/// present, else `LTV1/LTV2 = -xy0` (IRAF, older files).
fn hdu_xy0(cards: &[Card]) -> (i32, i32) {
    let get = |k: &str| {
        cards
            .iter()
            .rev()
            .find(|c| c.key == k)
            .and_then(|c| c.value.as_ref())
    };
    let num = |k: &str| get(k).and_then(Value::as_f64);
    let linear = |k: &str| matches!(get(k), Some(Value::Str(s)) if s.trim() == "LINEAR");
    if linear("CTYPE1A") && linear("CTYPE2A") {
        if let (Some(x), Some(y)) = (num("CRVAL1A"), num("CRVAL2A")) {
            // Pixel 1 (FITS, 1-based) is local pixel 0.
            let px = num("CRPIX1A").unwrap_or(1.0) - 1.0;
            let py = num("CRPIX2A").unwrap_or(1.0) - 1.0;
            let (x, y) = (x - px, y - py);
            if x.is_finite() && y.is_finite() && x.abs() < 2e9 && y.abs() < 2e9 {
                return (x.round() as i32, y.round() as i32);
            }
        }
    }
    let ltv = |k: &str| {
        num(k)
            .filter(|v| v.is_finite() && v.abs() < 2e9)
            .map_or(0, |v| -(v.round() as i32))
    };
    (ltv("LTV1"), ltv("LTV2"))
}

/// Keys that carry an image plane's xy0 and kind (written by the storage or
/// the plane writer, never metadata).
fn is_plane_key(k: &str) -> bool {
    matches!(
        k,
        "EXTNAME"
            | "EXTTYPE"
            | "INHERIT"
            | "LTV1"
            | "LTV2"
            | "CRVAL1A"
            | "CRVAL2A"
            | "CRPIX1A"
            | "CRPIX2A"
            | "CTYPE1A"
            | "CTYPE2A"
            | "CUNIT1A"
            | "CUNIT2A"
    )
}

/// Reads one image HDU with an optional cut-out; returns the image with its xy0.
fn read_plane<T: Pixel>(
    s: &mut FitsStorage,
    hdu: usize,
    cut: Option<CutOut>,
    name: &str,
) -> Result<Image<T>> {
    // headers only: a remote object is then read for just these pixels
    let f = s.headers()?;
    let h = f.hdu(hdu)?;
    let (x0, y0) = hdu_xy0(&h.cards);
    let bbox = match cut {
        None => None,
        Some(c) => {
            let (lx, ly) = if c.parent {
                (c.x - x0 as i64, c.y - y0 as i64)
            } else {
                (c.x, c.y)
            };
            let (w, hgt) = h.image_dims().unwrap_or((0, 0));
            let fits = |l: i64, n: usize, size: usize| {
                l >= 0 && l.checked_add(n as i64).is_some_and(|e| e <= size as i64)
            };
            if !fits(lx, c.w, w) || !fits(ly, c.h, hgt) {
                let (bx, by) = if c.parent {
                    (c.x, c.y)
                } else {
                    (c.x + x0 as i64, c.y + y0 as i64)
                };
                return Err(invalid(
                    name,
                    format!(
                        "cut-out box ({bx}, {by})-({}, {}) ({}x{}, asked in the {} frame) is not inside the image bounds ({x0}, {y0})-({}, {}) of HDU {hdu} of {}",
                        bx + c.w as i64 - 1,
                        by + c.h as i64 - 1,
                        c.w,
                        c.h,
                        if c.parent { "PARENT" } else { "LOCAL" },
                        x0 as i64 + w as i64 - 1,
                        y0 as i64 + hgt as i64 - 1,
                        f.path().display()
                    ),
                ));
            }
            Some((lx as usize, ly as usize, c.w, c.h))
        }
    };
    let (w, hgt, px) = s.read_image::<T>(hdu, bbox)?;
    let mut img = Image::from_vec(w, hgt, px)?;
    match bbox {
        Some((lx, ly, _, _)) => img.set_xy0(x0 + lx as i32, y0 + ly as i32),
        None => img.set_xy0(x0, y0),
    }
    Ok(img)
}

/// The HDU for a single-image read: `[N]`, else additional data `hdu`, else
/// the HDU whose EXTNAME matches `component`, else the first with data.
fn image_hdu(s: &mut FitsStorage, ad: &PropertySet) -> Result<usize> {
    if s.requested_hdu().is_some() {
        return Ok(s.resolve_hdu()?);
    }
    if ad.exists("hdu") {
        let n = ad.get_as_i64("hdu")?;
        let f = s.headers()?;
        return Ok(f.hdu(usize::try_from(n).unwrap_or(usize::MAX))?.index);
    }
    if ad.exists("component") {
        let c = ad.get::<String>("component")?.to_ascii_uppercase();
        if !["IMAGE", "MASK", "VARIANCE"].contains(&c.as_str()) {
            return Err(invalid(
                "Image",
                format!("component must be image, mask or variance, not {c:?}"),
            ));
        }
        let planes = plane_hdus(s, "Image")?;
        let hdu = planes.get(&c);
        let f = s.file()?;
        return hdu.ok_or_else(|| planes.missing(f.path(), &c));
    }
    Ok(s.resolve_hdu()?)
}

/// Reads the metadata (non-structural cards) of the HDU the location names,
/// or of the primary HDU, without reading any pixels.
pub fn read_metadata(s: &mut FitsStorage) -> Result<PropertySet> {
    let hdu = s.requested_hdu().unwrap_or(0);
    let f = s.headers()?;
    Ok(cards_to_property_set(&f.hdu(hdu)?.cards, |_| false))
}

/// Reads FITS headers as `PropertyList` metadata.
#[derive(Debug, Default)]
pub struct FitsMetadataFormatter;

impl FitsLayout for FitsMetadataFormatter {
    type Object = PropertySet;
    fn name(&self) -> &str {
        "PropertyList"
    }
    fn write_fits(&self, ps: &PropertySet, s: &mut FitsStorage) -> Result<()> {
        s.write_empty(&property_set_to_cards(ps))?;
        Ok(())
    }
    fn read_fits(&self, s: &mut FitsStorage, _: &PropertySet) -> Result<Self::Object> {
        read_metadata(s)
    }
}

/// `Image<T>` ↔ one image HDU.
#[derive(Debug, Default)]
pub struct ImageFormatter<T>(std::marker::PhantomData<T>);

impl<T: ImagePixel> FitsLayout for ImageFormatter<T> {
    type Object = Image<T>;
    fn name(&self) -> &str {
        T::IMAGE_NAME
    }
    fn write_fits(&self, im: &Image<T>, s: &mut FitsStorage) -> Result<()> {
        s.write_image(&[], im.width(), im.height(), im.xy0(), im.pixels())?;
        Ok(())
    }
    fn read_fits(&self, s: &mut FitsStorage, ad: &PropertySet) -> Result<Self::Object> {
        let cut = cut_out(ad, T::IMAGE_NAME)?;
        let hdu = image_hdu(s, ad)?;
        read_plane::<T>(s, hdu, cut, T::IMAGE_NAME)
    }
}

fn mask_cards(m: &Mask) -> Vec<Card> {
    m.planes()
        .iter()
        .map(|(n, b)| Card::new(format!("MP_{n}"), Value::Int(*b as i64)))
        .collect()
}

fn mask_from(image: Image<i32>, cards: &[Card]) -> Result<Mask> {
    let mut planes = std::collections::BTreeMap::new();
    for c in cards {
        if let (Some(n), Some(Value::Int(b))) = (c.key.strip_prefix("MP_"), &c.value) {
            if (0..32).contains(b) {
                planes.insert(n.to_string(), *b as u8);
            }
        }
    }
    if planes.is_empty() {
        let mut m = Mask::new(0, 0);
        m.image = image;
        return Ok(m);
    }
    Mask::from_parts(image, planes)
}

/// `Mask` ↔ one `i32` image HDU with `MP_` cards.
#[derive(Debug, Default)]
pub struct MaskFormatter;

impl FitsLayout for MaskFormatter {
    type Object = Mask;
    fn name(&self) -> &str {
        "Mask"
    }
    fn write_fits(&self, m: &Mask, s: &mut FitsStorage) -> Result<()> {
        let mut cards = vec![Card::new("EXTNAME", Value::Str("MASK".into()))];
        cards.extend(mask_cards(m));
        s.write_image(
            &cards,
            m.width(),
            m.height(),
            m.image.xy0(),
            m.image.pixels(),
        )?;
        Ok(())
    }
    fn read_fits(&self, s: &mut FitsStorage, ad: &PropertySet) -> Result<Self::Object> {
        let cut = cut_out(ad, "Mask")?;
        let hdu = if s.requested_hdu().is_none() && !ad.exists("hdu") && !ad.exists("component") {
            let planes = plane_hdus(s, "Mask")?;
            match planes.mask {
                Some(h) => h,
                // A file of one image that is not marked as another plane.
                None if planes.found_by_order || planes.image_named => {
                    return Err(planes.missing(s.file()?.path(), "MASK"));
                }
                None => planes.image,
            }
        } else {
            image_hdu(s, ad)?
        };
        let img = read_plane::<i32>(s, hdu, cut, "Mask")?;
        let cards = s.file()?.hdu(hdu)?.cards.clone();
        mask_from(img, &cards)
    }
}

/// Writes the three planes as `IMAGE`, `MASK`, `VARIANCE` extensions, as
/// afw does: each with `EXTNAME` and `EXTTYPE`, `INHERIT = T`, the xy0 (the
/// storage writes it as `LTV1/2` and the `A` pixel WCS) and `plane_cards`
/// (an exposure's WCS) in every plane.
fn write_planes<T: Pixel>(
    s: &mut FitsStorage,
    mi: &MaskedImage<T>,
    plane_cards: &[Card],
) -> Result<()> {
    let head = |n: &str| {
        let mut c = vec![
            Card::new("EXTNAME", Value::Str(n.into())),
            Card::with_comment("EXTTYPE", Value::Str(n.into()), "afw plane type"),
            Card::with_comment(
                "INHERIT",
                Value::Logical(true),
                "inherit the primary header",
            ),
        ];
        c.extend_from_slice(plane_cards);
        c
    };
    s.write_image(
        &head("IMAGE"),
        mi.width(),
        mi.height(),
        mi.image.xy0(),
        mi.image.pixels(),
    )?;
    let mut c = head("MASK");
    c.extend(mask_cards(&mi.mask));
    s.write_image(
        &c,
        mi.width(),
        mi.height(),
        mi.image.xy0(),
        mi.mask.image.pixels(),
    )?;
    s.write_image(
        &head("VARIANCE"),
        mi.width(),
        mi.height(),
        mi.image.xy0(),
        mi.variance.pixels(),
    )?;
    Ok(())
}

/// Where the planes of a masked image lie in a file.
#[derive(Debug)]
struct Planes {
    image: usize,
    mask: Option<usize>,
    variance: Option<usize>,
    /// Mask or variance found by afw's HDU order (unnamed HDUs after the image).
    found_by_order: bool,
    /// The image HDU is marked as a plane (EXTNAME or EXTTYPE IMAGE).
    image_named: bool,
    /// The file holds this one image and no other data (a raw): it has no
    /// mask or variance to find.
    lone_image: bool,
}

impl Planes {
    fn get(&self, name: &str) -> Option<usize> {
        match name {
            "IMAGE" => Some(self.image),
            "MASK" => self.mask,
            _ => self.variance,
        }
    }
    fn missing(&self, path: &std::path::Path, plane: &str) -> FormatterError {
        invalid(
            "MaskedImage",
            format!(
                "{} has no {plane} plane: no HDU with EXTNAME or EXTTYPE {plane}, and HDU {} is not an unnamed image after the image plane (HDU {}); pass needAllHdus = false to read a plain image with a zero mask and variance",
                path.display(),
                self.image + if plane == "MASK" { 1 } else { 2 },
                self.image
            ),
        )
    }
}

/// Finds the planes of a masked image: by `EXTNAME`, then by `EXTTYPE`, then
/// by afw's HDU order (the image at the `[N]` HDU, additional data `hdu`, or
/// the first HDU with data; the mask and variance the next two HDUs, when
/// they are unnamed images of the same size). A plane found nowhere is
/// `None` here and an error for the caller.
fn plane_hdus(s: &mut FitsStorage, name: &str) -> Result<Planes> {
    let explicit = if s.requested_hdu().is_some() {
        Some(s.resolve_hdu()?)
    } else {
        None
    };
    let f = s.file()?;
    let image = match explicit {
        Some(i) => i,
        None => f
            .find_plane("IMAGE", 0)
            .unwrap_or_else(|| f.first_data_hdu()),
    };
    let ih = f.hdu(image)?;
    let is_named = |h: &daf_storages::fits::Hdu, n: &str| {
        h.extname().map(str::trim) == Some(n) || h.exttype().map(str::trim) == Some(n)
    };
    let image_named = is_named(ih, "IMAGE");
    if !ih.is_image_with_data() && explicit.is_some() {
        return Err(invalid(
            name,
            format!(
                "HDU {image} of {} is not an image with pixels",
                f.path().display()
            ),
        ));
    }
    let unnamed_image_at = |i: usize| {
        f.hdus().get(i).is_some_and(|h| {
            matches!(h.kind, HduKind::Image)
                && h.extname().is_none()
                && h.exttype().is_none()
                && h.image_dims().is_some()
                && h.image_dims() == ih.image_dims()
        })
    };
    let mut found_by_order = false;
    let mut find = |plane: &str, offset: usize| {
        f.find_plane(plane, image + 1)
            // Only when the image plane itself was marked does a name
            // anywhere in the file belong to it; beside an explicit [N] the
            // planes must follow it.
            .filter(|&h| explicit.is_none() || h > image)
            .or_else(|| {
                (unnamed_image_at(image + 1) && unnamed_image_at(image + 2)).then(|| {
                    found_by_order = true;
                    image + offset
                })
            })
    };
    let mask = find("MASK", 1);
    let variance = find("VARIANCE", 2);
    let lone_image = !image_named && f.hdus().iter().all(|h| h.index == image || h.data_len == 0);
    Ok(Planes {
        image,
        mask,
        variance,
        found_by_order,
        image_named,
        lone_image,
    })
}

/// Reads the three planes. A missing mask or variance is an error unless the
/// additional data say `needAllHdus = false` (afw's parameter), when it is
/// zero; a file that holds one image and no other data (a raw camera file)
/// has no planes to miss and reads with a zero mask and variance, as in afw. Returns the masked image and the HDU of the image plane.
fn read_planes<T: Pixel>(
    s: &mut FitsStorage,
    ad: &PropertySet,
    name: &str,
) -> Result<(MaskedImage<T>, usize)> {
    if let Some(set) = s.legacy_set().cloned() {
        return read_legacy_planes(s, &set, ad, name);
    }
    let cut = cut_out(ad, name)?;
    let planes = plane_hdus(s, name)?;
    let need_all = if ad.exists("needAllHdus") {
        ad.get::<bool>("needAllHdus")?
    } else {
        !planes.lone_image
    };
    if need_all {
        for (p, h) in [("MASK", planes.mask), ("VARIANCE", planes.variance)] {
            if h.is_none() {
                let e = planes.missing(s.file()?.path(), p);
                return Err(invalid(name, e.to_string()));
            }
        }
    }
    let img_hdu = planes.image;
    let image = read_plane::<T>(s, img_hdu, cut, name)?;
    let (w, h) = (image.width(), image.height());
    let mask = match planes.mask {
        Some(m) => {
            let img = read_plane::<i32>(s, m, cut, name)?;
            let cards = s.file()?.hdu(m)?.cards.clone();
            mask_from(img, &cards)?
        }
        None => Mask::new(w, h),
    };
    let variance = match planes.variance {
        Some(v) => Some(read_plane::<f32>(s, v, cut, name)?),
        None => None,
    };
    let (x0, y0) = image.xy0();
    let mut mi = MaskedImage::from_parts(image, mask, variance)?;
    mi.set_xy0(x0, y0);
    Ok((mi, img_hdu))
}

/// Reads a DC3-era three-file masked image (`BASE_img.fits`,
/// `BASE_msk.fits`, `BASE_var.fits`; the storage reads the first). The mask
/// and variance files are required, as afw required them, unless the
/// additional data say `needAllHdus = false`, when a missing one is zero;
/// planes whose sizes differ are an error. Returns HDU 0 as the image plane.
fn read_legacy_planes<T: Pixel>(
    s: &mut FitsStorage,
    set: &LegacySet,
    ad: &PropertySet,
    name: &str,
) -> Result<(MaskedImage<T>, usize)> {
    let cut = cut_out(ad, name)?;
    let need_all = if ad.exists("needAllHdus") {
        ad.get::<bool>("needAllHdus")?
    } else {
        true
    };
    let exists = |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file());
    if need_all {
        for (plane, p) in [("mask", &set.mask), ("variance", &set.variance)] {
            if !exists(p) {
                return Err(invalid(
                    name,
                    format!(
                        "legacy three-file masked image {}: its {plane} file {} is missing ({} exists); pass needAllHdus = false to read the image with a zero {plane}",
                        set.base.display(),
                        p.display(),
                        set.image.display()
                    ),
                ));
            }
        }
    }
    let hdu = s.resolve_hdu()?;
    let image = read_plane::<T>(s, hdu, cut, name)?;
    let (w, h) = (image.width(), image.height());
    let open = |p: &std::path::Path| -> Result<Option<FitsStorage>> {
        if !exists(p) {
            return Ok(None);
        }
        let mut o = FitsStorage::new();
        o.set_retrieve_location(&LogicalLocation::literal(p.to_string_lossy()))?;
        Ok(Some(o))
    };
    let mask = match open(&set.mask)? {
        Some(mut o) => {
            let hdu = o.resolve_hdu()?;
            let img = read_plane::<i32>(&mut o, hdu, cut, name)?;
            let cards = o.file()?.hdu(hdu)?.cards.clone();
            mask_from(img, &cards)?
        }
        None => Mask::new(w, h),
    };
    let variance = match open(&set.variance)? {
        Some(mut o) => {
            let hdu = o.resolve_hdu()?;
            Some(read_plane::<f32>(&mut o, hdu, cut, name)?)
        }
        None => None,
    };
    let (x0, y0) = image.xy0();
    let mut mi = MaskedImage::from_parts(image, mask, variance).map_err(|e| {
        invalid(
            name,
            format!("legacy three-file masked image {}: {e}", set.base.display()),
        )
    })?;
    mi.set_xy0(x0, y0);
    Ok((mi, hdu))
}

/// `MaskedImage<T>` ↔ empty primary + IMAGE, MASK, VARIANCE.
#[derive(Debug, Default)]
pub struct MaskedImageFormatter<T>(std::marker::PhantomData<T>);

impl<T: ImagePixel> FitsLayout for MaskedImageFormatter<T> {
    type Object = MaskedImage<T>;
    fn name(&self) -> &str {
        T::MASKED_IMAGE_NAME
    }
    fn write_fits(&self, mi: &MaskedImage<T>, s: &mut FitsStorage) -> Result<()> {
        s.write_empty(&[])?;
        write_planes(s, mi, &[])
    }
    fn read_fits(&self, s: &mut FitsStorage, ad: &PropertySet) -> Result<Self::Object> {
        Ok(read_planes::<T>(s, ad, T::MASKED_IMAGE_NAME)?.0)
    }
}

/// The primary-header cards of an exposure and the WCS cards that go with
/// its image plane.
fn exposure_cards<T>(e: &Exposure<T>) -> (Vec<Card>, Vec<Card>) {
    let mut md = e.metadata.clone();
    for k in ["FILTER", "EXPTIME", "DATE-OBS"] {
        md.remove(k);
    }
    if e.detector.is_some() {
        for k in DETECTOR_CARDS {
            md.remove(k);
        }
    }
    for k in md.param_names() {
        if is_plane_key(&k) {
            md.remove(&k);
        }
    }
    let (wcs, mut cards): (Vec<Card>, Vec<Card>) = property_set_to_cards(&md)
        .into_iter()
        .partition(|c| is_wcs_key(&c.key));
    if let Some(f) = &e.filter {
        cards.push(Card::new("FILTER", Value::Str(f.clone())));
    }
    if let Some(t) = e.exposure_time {
        cards.push(Card::with_comment(
            "EXPTIME",
            Value::Float(t),
            "exposure time (s)",
        ));
    }
    if let Some(d) = &e.detector {
        cards.push(Card::with_comment(
            "DETECTOR",
            Value::Int(d.id),
            "detector id",
        ));
        cards.push(Card::with_comment(
            "DETNAME",
            Value::Str(d.name.clone()),
            "detector name",
        ));
        if !d.serial.is_empty() {
            cards.push(Card::with_comment(
                "DETSER",
                Value::Str(d.serial.clone()),
                "detector serial number",
            ));
        }
        cards.push(Card::with_comment(
            "DETTYPE",
            Value::Str(d.kind.as_str().to_string()),
            "detector type",
        ));
    }
    if let Some(d) = &e.obs_date {
        // DATE-OBS is UTC unless the header says otherwise (FITS 4.0
        // sec. 9.2.1): no TIMESYS card is added.
        let scale = match md.get::<String>("TIMESYS").ok().as_deref().map(str::trim) {
            Some("TAI") => Timescale::Tai,
            _ => Timescale::Utc,
        };
        let iso = d.to_iso(scale);
        cards.push(Card::new(
            "DATE-OBS",
            Value::Str(iso.trim_end_matches('Z').to_string()),
        ));
    }
    (cards, wcs)
}

/// The header cards of an exposure's [`Detector`].
pub const DETECTOR_CARDS: [&str; 4] = ["DETECTOR", "DETNAME", "DETSER", "DETTYPE"];

/// The detector a header describes, taken out of `md`: the id from
/// `DETECTOR` (an integer), the name from `DETNAME` (else `CCDNAME`, else
/// a text `DETECTOR`, else the id as text), the serial from `DETSER`, the
/// type from `DETTYPE`. A header with a name but no integer id (nor a name
/// that is one) gives none, and its cards stay in `md`.
pub fn detector_from_header(md: &mut PropertySet) -> Option<Detector> {
    let text = |md: &PropertySet, k: &str| -> Option<String> {
        md.get::<String>(k)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let int_id = md.get_as_i64("DETECTOR").ok();
    let name = text(md, "DETNAME")
        .or_else(|| text(md, "CCDNAME"))
        .or_else(|| text(md, "DETECTOR"));
    let id = int_id.or_else(|| name.as_deref().and_then(|n| n.parse().ok()))?;
    let name = name.unwrap_or_else(|| id.to_string());
    let serial = text(md, "DETSER").unwrap_or_default();
    let kind = text(md, "DETTYPE")
        .and_then(|t| DetectorType::parse(&t))
        .unwrap_or_default();
    for k in DETECTOR_CARDS {
        md.remove(k);
    }
    Some(Detector {
        id,
        name,
        serial,
        kind,
    })
}

/// Takes `FILTER`, `EXPTIME` and `DATE-OBS` (or TAI `MJD-OBS`) out of `md`.
fn exposure_fields(md: &mut PropertySet) -> (Option<String>, Option<f64>, Option<DateTime>) {
    let filter = md
        .get::<String>("FILTER")
        .ok()
        .map(|s| s.trim().to_string());
    if filter.is_some() {
        md.remove("FILTER");
    }
    let exptime = md.get_as_f64("EXPTIME").ok();
    if exptime.is_some() {
        md.remove("EXPTIME");
    }
    let scale = match md.get::<String>("TIMESYS").ok().as_deref() {
        Some("TAI") => Timescale::Tai,
        _ => Timescale::Utc,
    };
    let mut date = None;
    if let Ok(text) = md.get::<String>("DATE-OBS") {
        if let Ok(d) = DateTime::parse_iso(text.trim(), scale) {
            date = Some(d);
            md.remove("DATE-OBS");
        }
    }
    if date.is_none() {
        if let Ok(mjd) = md.get_as_f64("MJD-OBS") {
            if mjd.is_finite() && mjd.abs() < 1e7 {
                // LSST raw headers give MJD-OBS in TAI.
                let ns = ((mjd - 40_587.0) * 86_400e9).round() as i64;
                date = Some(DateTime::from_nsecs(ns, Timescale::Tai));
            }
        }
    }
    (filter, exptime, date)
}

/// An exposure made from a raw image and its header, as Gen2's `std_raw`
/// made one (afw's `exposureFromImage`): the pixels, an empty mask, zero
/// variance, the header as metadata, and the exposure's filter (`FILTER`),
/// exposure time (`EXPTIME`), start (`DATE-OBS`, else `MJD-OBS` read as
/// TAI) and detector ([`detector_from_header`]) taken from it.
pub fn exposure_from_decorated<T: ImagePixel>(d: DecoratedImage<T>) -> Result<Exposure<T>> {
    let (w, h) = (d.image.width(), d.image.height());
    let mi = MaskedImage::from_parts(d.image, Mask::new(w, h), None)?;
    let mut md = d.metadata;
    let (filter, exposure_time, obs_date) = exposure_fields(&mut md);
    let detector = detector_from_header(&mut md);
    Ok(Exposure {
        masked_image: mi,
        metadata: md,
        filter,
        exposure_time,
        obs_date,
        detector,
    })
}

/// A read object as an exposure when it is a `DecoratedImage*` (see
/// [`exposure_from_decorated`]); any other object is handed back.
pub fn standardize_exposure(
    obj: Box<dyn Persistable>,
) -> std::result::Result<Result<Box<dyn Persistable>>, Box<dyn Persistable>> {
    macro_rules! try_pixel {
        ($($t:ty),*) => {$(
            if obj.as_any().is::<DecoratedImage<$t>>() {
                let d = *obj
                    .into_any()
                    .downcast::<DecoratedImage<$t>>()
                    .expect("type checked");
                return Ok(exposure_from_decorated(d).map(|e| Box::new(e) as Box<dyn Persistable>));
            }
        )*};
    }
    try_pixel!(u8, i16, u16, i32, u32, i64, f32, f64);
    Err(obj)
}

/// The detector slot of an exposure of any pixel type; `None` when `obj`
/// is not an `Exposure*`.
pub fn exposure_detector_mut(obj: &mut dyn Persistable) -> Option<&mut Option<Detector>> {
    macro_rules! try_pixel {
        ($($t:ty),*) => {$(
            if obj.as_any().is::<Exposure<$t>>() {
                return obj
                    .as_any_mut()
                    .downcast_mut::<Exposure<$t>>()
                    .map(|e| &mut e.detector);
            }
        )*};
    }
    try_pixel!(u8, i16, u16, i32, u32, i64, f32, f64);
    None
}

/// `Exposure<T>` ↔ primary with metadata + IMAGE, MASK, VARIANCE.
#[derive(Debug, Default)]
pub struct ExposureFormatter<T>(std::marker::PhantomData<T>);

impl<T: ImagePixel> FitsLayout for ExposureFormatter<T> {
    type Object = Exposure<T>;
    fn name(&self) -> &str {
        T::EXPOSURE_NAME
    }
    fn write_fits(&self, e: &Exposure<T>, s: &mut FitsStorage) -> Result<()> {
        let (primary, wcs) = exposure_cards(e);
        s.write_empty(&primary)?;
        write_planes(s, &e.masked_image, &wcs)
    }
    fn read_fits(&self, s: &mut FitsStorage, ad: &PropertySet) -> Result<Self::Object> {
        let (mi, img_hdu) = read_planes::<T>(s, ad, T::EXPOSURE_NAME)?;
        let f = s.file()?;
        let skip = is_plane_key;
        let mut md = cards_to_property_set(&f.hdu(0)?.cards, skip);
        if img_hdu != 0 {
            // WCS and other cards of the image plane (LSST writes the WCS there).
            let extra =
                cards_to_property_set(&f.hdu(img_hdu)?.cards, |k| skip(k) || k.starts_with("MP_"));
            for name in extra.param_names() {
                if !md.exists(&name) {
                    if let Some(v) = extra.values(&name) {
                        md.set(&name, v.clone())?;
                    }
                }
            }
        }
        let (filter, exposure_time, obs_date) = exposure_fields(&mut md);
        let detector = detector_from_header(&mut md);
        Ok(Exposure {
            masked_image: mi,
            metadata: md,
            filter,
            exposure_time,
            obs_date,
            detector,
        })
    }
}

/// `DecoratedImage<T>` ↔ primary image with the metadata as its header.
#[derive(Debug, Default)]
pub struct DecoratedImageFormatter<T>(std::marker::PhantomData<T>);

impl<T: ImagePixel> FitsLayout for DecoratedImageFormatter<T> {
    type Object = DecoratedImage<T>;
    fn name(&self) -> &str {
        T::DECORATED_IMAGE_NAME
    }
    fn write_fits(&self, d: &DecoratedImage<T>, s: &mut FitsStorage) -> Result<()> {
        let cards = property_set_to_cards(&d.metadata);
        s.write_image(
            &cards,
            d.image.width(),
            d.image.height(),
            d.image.xy0(),
            d.image.pixels(),
        )?;
        Ok(())
    }
    fn read_fits(&self, s: &mut FitsStorage, ad: &PropertySet) -> Result<Self::Object> {
        let cut = cut_out(ad, T::DECORATED_IMAGE_NAME)?;
        let hdu = image_hdu(s, ad)?;
        let image = read_plane::<T>(s, hdu, cut, T::DECORATED_IMAGE_NAME)?;
        let metadata = cards_to_property_set(&s.file()?.hdu(hdu)?.cards, |k| {
            k != "EXTNAME" && k != "EXTTYPE" && k != "INHERIT" && is_plane_key(k)
        });
        Ok(DecoratedImage { image, metadata })
    }
}

/// `SourceCatalog` ↔ empty primary (metadata) + `BINTABLE`.
#[derive(Debug, Default)]
pub struct SourceCatalogFitsFormatter;

impl FitsLayout for SourceCatalogFitsFormatter {
    type Object = SourceCatalog;
    fn name(&self) -> &str {
        "SourceCatalog"
    }
    fn write_fits(&self, cat: &SourceCatalog, s: &mut FitsStorage) -> Result<()> {
        s.write_empty(&property_set_to_cards(&cat.metadata))?;
        let cols: Vec<TableColumn> = cat
            .fields()
            .iter()
            .zip(cat.columns())
            .map(|(f, c)| TableColumn {
                name: f.name.clone(),
                unit: f.unit.clone(),
                doc: f.doc.clone(),
                data: match c {
                    Column::I64(v) => ColumnData::I64(v.clone()),
                    Column::I32(v) => ColumnData::I32(v.clone()),
                    Column::F64(v) => ColumnData::F64(v.clone()),
                    Column::F32(v) => ColumnData::F32(v.clone()),
                    Column::Flag(v) => ColumnData::Bool(v.clone()),
                    Column::String(v) => ColumnData::Str(v.clone()),
                },
            })
            .collect();
        s.write_table(&[Card::new("EXTNAME", Value::Str("CATALOG".into()))], &cols)?;
        Ok(())
    }
    fn read_fits(&self, s: &mut FitsStorage, _: &PropertySet) -> Result<Self::Object> {
        let want = s.requested_hdu();
        let f = s.file()?;
        let hdu = match want {
            Some(n) => f.hdu(n)?.index,
            None => f
                .hdus()
                .iter()
                .position(|h| h.kind == HduKind::BinTable)
                .ok_or_else(|| {
                    invalid(
                        "SourceCatalog",
                        format!("{} has no binary table", f.path().display()),
                    )
                })?,
        };
        let cols = f.read_table(hdu)?;
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for c in cols {
            let (t, col) = match c.data {
                ColumnData::Bool(v) => (FieldType::Flag, Column::Flag(v)),
                ColumnData::U8(v) => (
                    FieldType::I32,
                    Column::I32(v.into_iter().map(i32::from).collect()),
                ),
                ColumnData::I16(v) => (
                    FieldType::I32,
                    Column::I32(v.into_iter().map(i32::from).collect()),
                ),
                ColumnData::I32(v) => (FieldType::I32, Column::I32(v)),
                ColumnData::I64(v) => (FieldType::I64, Column::I64(v)),
                ColumnData::F32(v) => (FieldType::F32, Column::F32(v)),
                ColumnData::F64(v) => (FieldType::F64, Column::F64(v)),
                ColumnData::Str(v) => (FieldType::String, Column::String(v)),
                // no catalog field type holds complex numbers or arrays
                ColumnData::C64(_) | ColumnData::C128(_) | ColumnData::Var(_) => continue,
            };
            fields.push(Field {
                name: c.name,
                field_type: t,
                doc: c.doc,
                unit: c.unit,
            });
            columns.push(col);
        }
        let mut cat = SourceCatalog::from_columns(fields, columns)?;
        let mut md = cards_to_property_set(&f.hdu(0)?.cards, |_| false);
        if hdu != 0 {
            let extra = cards_to_property_set(&f.hdu(hdu)?.cards, |k| k == "EXTNAME");
            for name in extra.param_names() {
                if !md.exists(&name) {
                    if let Some(v) = extra.values(&name) {
                        md.set(&name, v.clone())?;
                    }
                }
            }
        }
        cat.metadata = md;
        Ok(cat)
    }
}

macro_rules! register_pixel {
    ($reg:expr, $($t:ty),*) => {$(
        $reg.register::<Image<$t>>(<$t as ImagePixel>::IMAGE_NAME, |_| Box::new(ImageFormatter::<$t>::default()))?;
        $reg.register::<MaskedImage<$t>>(<$t as ImagePixel>::MASKED_IMAGE_NAME, |_| Box::new(MaskedImageFormatter::<$t>::default()))?;
        $reg.register::<Exposure<$t>>(<$t as ImagePixel>::EXPOSURE_NAME, |_| Box::new(ExposureFormatter::<$t>::default()))?;
        $reg.register::<DecoratedImage<$t>>(<$t as ImagePixel>::DECORATED_IMAGE_NAME, |_| Box::new(DecoratedImageFormatter::<$t>::default()))?;
    )*};
}

/// Registers every FITS formatter: `Image*`, `MaskedImage*`, `Exposure*`,
/// `DecoratedImage*` for all pixel types, `Mask`, `SourceCatalog` and
/// `PropertyList` (FITS header metadata).
pub fn register_fits_formatters(reg: &mut FormatterRegistry) -> Result<()> {
    register_pixel!(reg, u8, i16, u16, i32, u32, i64, f32, f64);
    reg.register::<Mask>("Mask", |_| Box::new(MaskFormatter))?;
    reg.register::<SourceCatalog>("SourceCatalog", |p| {
        Box::new(crate::db_formatters::SourceCatalogFormatter::new(p))
    })?;
    reg.register_name("PropertyList", |_| Box::new(FitsMetadataFormatter))?;
    // afw's BaseCatalog (Gen2 `FitsCatalogStorage`, e.g. obs_test `defects`)
    // reads and writes as a SourceCatalog: columns plus metadata.
    // pex_config files (Gen2 `ConfigStorage`, the `*_config` datasets) read
    // and write as PropertySets.
    reg.register_name("Config", |p| {
        Box::new(crate::property_set_formatter::PropertySetFormatter::from_policy(p))
    })?;
    reg.register_name("BaseCatalog", |p| {
        Box::new(crate::db_formatters::SourceCatalogFormatter::new(p))
    })?;
    Ok(())
}
