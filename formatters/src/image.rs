//! Image persistables: [`Image`], [`Mask`], [`MaskedImage`], [`Exposure`],
//! [`DecoratedImage`], with LSST's persistable names (`ImageF`, `ExposureU`,
//! `MaskedImageF`, `DecoratedImageU`, ...) and type aliases for each pixel type.
//!
//! Pixel types and suffixes: `u8` B, `i16` S, `u16` U, `i32` I, `u32` UI,
//! `i64` L, `f32` F, `f64` D. Images are row-major (x fastest), with an `xy0`
//! origin in the parent frame, as in `lsst::afw::image`.
//!
//! ```
//! use daf_formatters::image::{ImageF, Mask, MaskedImageF, ExposureF};
//! let mut im = ImageF::new(4, 3);
//! im.set(1, 2, 5.0);
//! im.set_xy0(100, 200);
//! assert_eq!(im.get(1, 2), 5.0);
//! assert_eq!(im.bbox().x1(), 103);
//! let mut mask = Mask::new(4, 3);
//! let sat = mask.plane_bitmask("SAT").unwrap();
//! mask.set(0, 0, sat);
//! let exp = ExposureF::new(MaskedImageF::from_parts(im, mask, None).unwrap());
//! use daf_formatters::Persistable;
//! assert_eq!(exp.persistable_name(), "ExposureF");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use daf_base::{DateTime, PropertySet};
pub use daf_base::{Detector, DetectorType};
pub use daf_storages::fits::Pixel;

use crate::error::FormatterError;
use crate::Result;

/// A pixel type with LSST persistable names for the image types built on it.
pub trait ImagePixel: Pixel {
    /// `"ImageF"`, `"ImageU"`, ...
    const IMAGE_NAME: &'static str;
    /// `"MaskedImageF"`, ...
    const MASKED_IMAGE_NAME: &'static str;
    /// `"ExposureF"`, ...
    const EXPOSURE_NAME: &'static str;
    /// `"DecoratedImageF"`, ...
    const DECORATED_IMAGE_NAME: &'static str;
}

macro_rules! image_pixel {
    ($t:ty, $s:literal) => {
        impl ImagePixel for $t {
            const IMAGE_NAME: &'static str = concat!("Image", $s);
            const MASKED_IMAGE_NAME: &'static str = concat!("MaskedImage", $s);
            const EXPOSURE_NAME: &'static str = concat!("Exposure", $s);
            const DECORATED_IMAGE_NAME: &'static str = concat!("DecoratedImage", $s);
        }
    };
}
image_pixel!(u8, "B");
image_pixel!(i16, "S");
image_pixel!(u16, "U");
image_pixel!(i32, "I");
image_pixel!(u32, "UI");
image_pixel!(i64, "L");
image_pixel!(f32, "F");
image_pixel!(f64, "D");

/// An integer box: origin `(x0, y0)` and size, as used for cut-outs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Box2I {
    /// Lower-left x.
    pub x0: i32,
    /// Lower-left y.
    pub y0: i32,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl Box2I {
    /// A box from its lower-left corner and size.
    pub fn new(x0: i32, y0: i32, width: usize, height: usize) -> Self {
        Box2I {
            x0,
            y0,
            width,
            height,
        }
    }
    /// Last column (inclusive).
    pub fn x1(&self) -> i32 {
        self.x0 + self.width as i32 - 1
    }
    /// Last row (inclusive).
    pub fn y1(&self) -> i32 {
        self.y0 + self.height as i32 - 1
    }
    /// True if `other` lies wholly inside this box.
    pub fn contains(&self, other: &Box2I) -> bool {
        other.x0 >= self.x0
            && other.y0 >= self.y0
            && other.x0 as i64 + other.width as i64 <= self.x0 as i64 + self.width as i64
            && other.y0 as i64 + other.height as i64 <= self.y0 as i64 + self.height as i64
    }
}

/// A 2-d image of pixels `T`, row-major, with an `xy0` origin.
#[derive(Clone, PartialEq)]
pub struct Image<T> {
    width: usize,
    height: usize,
    x0: i32,
    y0: i32,
    pixels: Vec<T>,
}

impl<T: Pixel> Image<T> {
    /// A zero-filled image.
    pub fn new(width: usize, height: usize) -> Self {
        Image {
            width,
            height,
            x0: 0,
            y0: 0,
            pixels: vec![T::default(); width * height],
        }
    }

    /// An image over `pixels` (row-major, `width * height` of them).
    pub fn from_vec(width: usize, height: usize, pixels: Vec<T>) -> Result<Self> {
        if width.checked_mul(height) != Some(pixels.len()) {
            return Err(FormatterError::Invalid {
                persistable: "Image".into(),
                message: format!(
                    "{} pixels do not make a {width}x{height} image",
                    pixels.len()
                ),
            });
        }
        Ok(Image {
            width,
            height,
            x0: 0,
            y0: 0,
            pixels,
        })
    }

    /// Width (columns).
    pub fn width(&self) -> usize {
        self.width
    }
    /// Height (rows).
    pub fn height(&self) -> usize {
        self.height
    }
    /// The origin in the parent frame.
    pub fn xy0(&self) -> (i32, i32) {
        (self.x0, self.y0)
    }
    /// Sets the origin.
    pub fn set_xy0(&mut self, x0: i32, y0: i32) {
        self.x0 = x0;
        self.y0 = y0;
    }
    /// The bounding box in the parent frame.
    pub fn bbox(&self) -> Box2I {
        Box2I::new(self.x0, self.y0, self.width, self.height)
    }
    /// All pixels, row-major.
    pub fn pixels(&self) -> &[T] {
        &self.pixels
    }
    /// All pixels, mutably.
    pub fn pixels_mut(&mut self) -> &mut [T] {
        &mut self.pixels
    }
    /// Consumes the image, returning its pixels.
    pub fn into_vec(self) -> Vec<T> {
        self.pixels
    }
    /// Row `y` (local coordinates).
    pub fn row(&self, y: usize) -> &[T] {
        &self.pixels[y * self.width..(y + 1) * self.width]
    }
    /// The pixel at local `(x, y)`. Panics when out of range, like slice indexing.
    pub fn get(&self, x: usize, y: usize) -> T {
        assert!(x < self.width && y < self.height, "pixel out of range");
        self.pixels[y * self.width + x]
    }
    /// Sets the pixel at local `(x, y)`. Panics when out of range.
    pub fn set(&mut self, x: usize, y: usize, v: T) {
        assert!(x < self.width && y < self.height, "pixel out of range");
        self.pixels[y * self.width + x] = v;
    }
    /// Min, max and mean of the pixels as `f64` (NaNs skipped); `None` if empty.
    pub fn stats(&self) -> Option<(f64, f64, f64)> {
        let mut n = 0usize;
        let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        for p in &self.pixels {
            let v = p.to_f64();
            if v.is_nan() {
                continue;
            }
            n += 1;
            lo = lo.min(v);
            hi = hi.max(v);
            sum += v;
        }
        (n > 0).then(|| (lo, hi, sum / n as f64))
    }
}

impl<T> fmt::Debug for Image<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Image<{}>({}x{} at ({}, {}))",
            std::any::type_name::<T>(),
            self.width,
            self.height,
            self.x0,
            self.y0
        )
    }
}

crate::impl_persistable!(impl<T: ImagePixel> Image<T>, T::IMAGE_NAME);

/// The mask planes every new [`Mask`] has, in bit order (LSST's defaults).
pub const DEFAULT_MASK_PLANES: [&str; 9] = [
    "BAD",
    "SAT",
    "INTRP",
    "CR",
    "EDGE",
    "DETECTED",
    "DETECTED_NEGATIVE",
    "SUSPECT",
    "NO_DATA",
];

/// A mask: `i32` pixels whose bits are named planes (stored in FITS as
/// `MP_<NAME> = bit` header cards, like LSST).
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// The mask bits.
    pub image: Image<i32>,
    planes: BTreeMap<String, u8>,
}

crate::impl_persistable!(Mask, "Mask");

impl Mask {
    /// A zero mask with the [`DEFAULT_MASK_PLANES`].
    pub fn new(width: usize, height: usize) -> Self {
        let planes = DEFAULT_MASK_PLANES
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i as u8))
            .collect();
        Mask {
            image: Image::new(width, height),
            planes,
        }
    }

    /// A mask over existing bits with an explicit plane dictionary.
    pub fn from_parts(image: Image<i32>, planes: BTreeMap<String, u8>) -> Result<Self> {
        if let Some((n, b)) = planes.iter().find(|(_, b)| **b >= 32) {
            return Err(FormatterError::Invalid {
                persistable: "Mask".into(),
                message: format!("mask plane {n} has bit {b}, beyond 31"),
            });
        }
        Ok(Mask { image, planes })
    }

    /// Plane name → bit number.
    pub fn planes(&self) -> &BTreeMap<String, u8> {
        &self.planes
    }

    /// The bit of plane `name`.
    pub fn plane_bit(&self, name: &str) -> Option<u8> {
        self.planes.get(name).copied()
    }

    /// The bit mask (`1 << bit`) of plane `name`.
    pub fn plane_bitmask(&self, name: &str) -> Option<i32> {
        self.plane_bit(name).map(|b| 1i32 << b)
    }

    /// Adds a plane (or returns its existing bit); error when all 32 bits are used.
    pub fn add_plane(&mut self, name: &str) -> Result<u8> {
        if let Some(b) = self.plane_bit(name) {
            return Ok(b);
        }
        let bit = (0..32u8)
            .find(|b| !self.planes.values().any(|x| x == b))
            .ok_or_else(|| FormatterError::Invalid {
                persistable: "Mask".into(),
                message: "all 32 mask planes are in use".into(),
            })?;
        self.planes.insert(name.to_string(), bit);
        Ok(bit)
    }

    /// Width.
    pub fn width(&self) -> usize {
        self.image.width()
    }
    /// Height.
    pub fn height(&self) -> usize {
        self.image.height()
    }
    /// The bits at local `(x, y)`.
    pub fn get(&self, x: usize, y: usize) -> i32 {
        self.image.get(x, y)
    }
    /// Sets the bits at local `(x, y)`.
    pub fn set(&mut self, x: usize, y: usize, v: i32) {
        self.image.set(x, y, v)
    }
}

/// Image, mask and variance planes of one size (variance is `f32`, as in afw).
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedImage<T> {
    /// The science pixels.
    pub image: Image<T>,
    /// The mask.
    pub mask: Mask,
    /// The variance.
    pub variance: Image<f32>,
}

impl<T: Pixel> MaskedImage<T> {
    /// A zero masked image.
    pub fn new(width: usize, height: usize) -> Self {
        MaskedImage {
            image: Image::new(width, height),
            mask: Mask::new(width, height),
            variance: Image::new(width, height),
        }
    }

    /// Builds a masked image from planes of equal size (variance zero if `None`).
    /// The mask and variance take the image's xy0.
    pub fn from_parts(
        image: Image<T>,
        mut mask: Mask,
        variance: Option<Image<f32>>,
    ) -> Result<Self> {
        let (w, h) = (image.width(), image.height());
        let mut variance = variance.unwrap_or_else(|| Image::new(w, h));
        if (mask.width(), mask.height()) != (w, h)
            || (variance.width(), variance.height()) != (w, h)
        {
            return Err(FormatterError::Invalid {
                persistable: "MaskedImage".into(),
                message: format!(
                    "plane sizes differ: image {w}x{h}, mask {}x{}, variance {}x{}",
                    mask.width(),
                    mask.height(),
                    variance.width(),
                    variance.height()
                ),
            });
        }
        let (x0, y0) = image.xy0();
        mask.image.set_xy0(x0, y0);
        variance.set_xy0(x0, y0);
        Ok(MaskedImage {
            image,
            mask,
            variance,
        })
    }

    /// Width.
    pub fn width(&self) -> usize {
        self.image.width()
    }
    /// Height.
    pub fn height(&self) -> usize {
        self.image.height()
    }
    /// Sets the origin of all three planes.
    pub fn set_xy0(&mut self, x0: i32, y0: i32) {
        self.image.set_xy0(x0, y0);
        self.mask.image.set_xy0(x0, y0);
        self.variance.set_xy0(x0, y0);
    }
}

crate::impl_persistable!(impl<T: ImagePixel> MaskedImage<T>, T::MASKED_IMAGE_NAME);

/// A masked image with metadata: the header cards (WCS and everything else)
/// plus the filter, exposure time and observation date as typed fields.
///
/// In FITS the fields are the `FILTER`, `EXPTIME` and `DATE-OBS` cards (on
/// reading, `MJD-OBS` (TAI) is used when `DATE-OBS` is absent) and, for the
/// [`Detector`], `DETECTOR` (id), `DETNAME`, `DETSER` and `DETTYPE`; they
/// are taken out of `metadata` when read and written from the fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure<T> {
    /// The pixels.
    pub masked_image: MaskedImage<T>,
    /// Every other header card (WCS, provenance ...).
    pub metadata: PropertySet,
    /// The filter name.
    pub filter: Option<String>,
    /// Exposure time in seconds.
    pub exposure_time: Option<f64>,
    /// Start of the observation.
    pub obs_date: Option<DateTime>,
    /// The detector the pixels came from (for a raw read as an exposure:
    /// from its header, else from the mapper's camera description or the
    /// data id).
    pub detector: Option<Detector>,
}

impl<T: Pixel> Exposure<T> {
    /// An exposure with empty metadata.
    pub fn new(masked_image: MaskedImage<T>) -> Self {
        Exposure {
            masked_image,
            metadata: PropertySet::new(),
            filter: None,
            exposure_time: None,
            obs_date: None,
            detector: None,
        }
    }
    /// Width.
    pub fn width(&self) -> usize {
        self.masked_image.width()
    }
    /// Height.
    pub fn height(&self) -> usize {
        self.masked_image.height()
    }
}

crate::impl_persistable!(impl<T: ImagePixel> Exposure<T>, T::EXPOSURE_NAME);

/// An image plus its header metadata (how raw camera files are read).
#[derive(Debug, Clone, PartialEq)]
pub struct DecoratedImage<T> {
    /// The pixels.
    pub image: Image<T>,
    /// The non-structural header cards.
    pub metadata: PropertySet,
}

impl<T: Pixel> DecoratedImage<T> {
    /// An image with empty metadata.
    pub fn new(image: Image<T>) -> Self {
        DecoratedImage {
            image,
            metadata: PropertySet::new(),
        }
    }
}

crate::impl_persistable!(impl<T: ImagePixel> DecoratedImage<T>, T::DECORATED_IMAGE_NAME);

macro_rules! aliases {
    ($($t:ty => $img:ident, $mi:ident, $exp:ident, $dec:ident;)*) => {$(
        #[doc = concat!("`Image<", stringify!($t), ">`")]
        pub type $img = Image<$t>;
        #[doc = concat!("`MaskedImage<", stringify!($t), ">`")]
        pub type $mi = MaskedImage<$t>;
        #[doc = concat!("`Exposure<", stringify!($t), ">`")]
        pub type $exp = Exposure<$t>;
        #[doc = concat!("`DecoratedImage<", stringify!($t), ">`")]
        pub type $dec = DecoratedImage<$t>;
    )*};
}

aliases! {
    u8 => ImageB, MaskedImageB, ExposureB, DecoratedImageB;
    i16 => ImageS, MaskedImageS, ExposureS, DecoratedImageS;
    u16 => ImageU, MaskedImageU, ExposureU, DecoratedImageU;
    i32 => ImageI, MaskedImageI, ExposureI, DecoratedImageI;
    u32 => ImageUI, MaskedImageUI, ExposureUI, DecoratedImageUI;
    i64 => ImageL, MaskedImageL, ExposureL, DecoratedImageL;
    f32 => ImageF, MaskedImageF, ExposureF, DecoratedImageF;
    f64 => ImageD, MaskedImageD, ExposureD, DecoratedImageD;
}
