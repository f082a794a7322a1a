//! Images, masks, exposures and catalogs as NumPy users expect them, and the
//! conversion of daf's persistable objects to and from Python.
//!
//! An `Image` owns its pixels (a Rust `Vec`); `image.array` is a NumPy view
//! of that memory whose `base` is the `Image` (no copy). Nothing ever resizes
//! the pixel buffer of a live `Image`, so the view stays valid while the
//! array lives (it keeps the `Image` alive).

use std::collections::BTreeMap;
use std::sync::Arc;

use daf_base::PropertySet as RsPropertySet;
use daf_formatters::catalog::{Column, Field, FieldType};
use daf_formatters::image::{
    DecoratedImage as RsDecorated, Exposure as RsExposure, Image as RsImage, ImagePixel,
    Mask as RsMask, MaskedImage as RsMaskedImage,
};
use daf_formatters::{Persistable, SourceCatalog as RsCatalog};
use numpy::ndarray::ArrayView2;
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::base::{datetime_from_py, datetime_to_py, property_set_from_py, PropertySet};
use crate::errors::formatter_err;

/// Pixel buffers of every pixel type daf stores.
#[derive(Clone)]
pub enum AnyImage {
    B(RsImage<u8>),
    S(RsImage<i16>),
    U(RsImage<u16>),
    I(RsImage<i32>),
    UI(RsImage<u32>),
    L(RsImage<i64>),
    F(RsImage<f32>),
    D(RsImage<f64>),
}

macro_rules! each {
    ($v:expr, $i:ident => $body:expr) => {
        match $v {
            AnyImage::B($i) => $body,
            AnyImage::S($i) => $body,
            AnyImage::U($i) => $body,
            AnyImage::I($i) => $body,
            AnyImage::UI($i) => $body,
            AnyImage::L($i) => $body,
            AnyImage::F($i) => $body,
            AnyImage::D($i) => $body,
        }
    };
}

/// Conversions between `RsImage<T>` and `AnyImage`.
pub trait Px: ImagePixel + numpy::Element + Copy {
    /// Wraps an image.
    fn wrap(i: RsImage<Self>) -> AnyImage;
    /// Unwraps an image of this pixel type.
    fn unwrap(a: AnyImage) -> Option<RsImage<Self>>;
    /// The NumPy dtype name.
    const DTYPE: &'static str;
}

macro_rules! px {
    ($t:ty, $v:ident, $d:literal) => {
        impl Px for $t {
            fn wrap(i: RsImage<Self>) -> AnyImage {
                AnyImage::$v(i)
            }
            fn unwrap(a: AnyImage) -> Option<RsImage<Self>> {
                match a {
                    AnyImage::$v(i) => Some(i),
                    _ => None,
                }
            }
            const DTYPE: &'static str = $d;
        }
    };
}
px!(u8, B, "uint8");
px!(i16, S, "int16");
px!(u16, U, "uint16");
px!(i32, I, "int32");
px!(u32, UI, "uint32");
px!(i64, L, "int64");
px!(f32, F, "float32");
px!(f64, D, "float64");

impl AnyImage {
    fn dtype(&self) -> &'static str {
        fn d<T: Px>(_: &RsImage<T>) -> &'static str {
            T::DTYPE
        }
        each!(self, i => d(i))
    }
    fn width(&self) -> usize {
        each!(self, i => i.width())
    }
    fn height(&self) -> usize {
        each!(self, i => i.height())
    }
    fn xy0(&self) -> (i32, i32) {
        each!(self, i => i.xy0())
    }
    fn set_xy0(&mut self, x: i32, y: i32) {
        each!(self, i => i.set_xy0(x, y))
    }
    fn persistable(&self) -> &'static str {
        fn n<T: Px>(_: &RsImage<T>) -> &'static str {
            T::IMAGE_NAME
        }
        each!(self, i => n(i))
    }
    /// Copies `arr` (any 2-d array; converted to `dtype` if given) into a new image.
    fn from_array(arr: &Bound<'_, PyAny>, dtype: Option<&str>) -> PyResult<AnyImage> {
        let py = arr.py();
        let np = py.import("numpy")?;
        let kw = PyDict::new(py);
        if let Some(d) = dtype {
            kw.set_item("dtype", d)?;
        }
        let a = np.call_method("ascontiguousarray", (arr,), Some(&kw))?;
        let ndim: usize = a.getattr("ndim")?.extract()?;
        if ndim != 2 {
            return Err(PyValueError::new_err(format!(
                "an image needs a 2-d array (rows, cols), got {ndim} dimensions"
            )));
        }
        let name: String = a.getattr("dtype")?.getattr("name")?.extract()?;
        fn mk<T: Px>(a: &Bound<'_, PyAny>) -> PyResult<AnyImage> {
            let arr = a.cast::<PyArray2<T>>()?;
            let ro = arr.readonly();
            let view = ro.as_array();
            let (h, w) = view.dim();
            let v: Vec<T> = view.iter().copied().collect();
            RsImage::from_vec(w, h, v)
                .map(T::wrap)
                .map_err(formatter_err)
        }
        match name.as_str() {
            "uint8" => mk::<u8>(&a),
            "int16" => mk::<i16>(&a),
            "uint16" => mk::<u16>(&a),
            "int32" => mk::<i32>(&a),
            "uint32" => mk::<u32>(&a),
            "int64" => mk::<i64>(&a),
            "float32" => mk::<f32>(&a),
            "float64" => mk::<f64>(&a),
            "bool" | "int8" => {
                let a = np.call_method1("ascontiguousarray", (a, "int16"))?;
                mk::<i16>(&a)
            }
            "float16" => {
                let a = np.call_method1("ascontiguousarray", (a, "float32"))?;
                mk::<f32>(&a)
            }
            other => Err(PyTypeError::new_err(format!("no daf image type holds {other} pixels (uint8, int16, uint16, int32, uint32, int64, float32, float64)"))),
        }
    }
}

fn zero_copy_view<'py, T: Px>(
    img: &RsImage<T>,
    owner: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let view = ArrayView2::from_shape((img.height(), img.width()), img.pixels())
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    // SAFETY: `owner` is the Python object that owns `img` (an `Image`); the
    // array keeps it alive through its base, and an `Image`'s pixel buffer
    // is never reallocated (no method resizes it).
    Ok(unsafe { PyArray2::<T>::borrow_from_array(&view, owner) }.into_any())
}

/// A 2-d image (`lsst.afw.image.Image`): pixels of one type, row-major, with
/// an origin `xy0` in the parent frame.
///
/// `Image(array, xy0=(0, 0), dtype=None)` copies any 2-d array (rows, cols);
/// `image.array` is a writable NumPy view of the pixels without a copy
/// (its `base` is this object); `numpy.asarray(image)` gives the same view.
#[pyclass(module = "daf")]
pub struct Image {
    pub inner: AnyImage,
}

impl Image {
    pub fn new_any(inner: AnyImage) -> Self {
        Image { inner }
    }
}

#[pymethods]
impl Image {
    #[new]
    #[pyo3(signature = (array, xy0 = (0, 0), dtype = None))]
    fn py_new(array: &Bound<'_, PyAny>, xy0: (i32, i32), dtype: Option<&str>) -> PyResult<Self> {
        let mut inner = AnyImage::from_array(array, dtype)?;
        inner.set_xy0(xy0.0, xy0.1);
        Ok(Image { inner })
    }
    /// A zero image of `width` × `height` pixels of `dtype`.
    #[staticmethod]
    #[pyo3(signature = (width, height, dtype = "float32"))]
    fn zeros(py: Python<'_>, width: usize, height: usize, dtype: &str) -> PyResult<Self> {
        let np = py.import("numpy")?;
        let a = np.call_method1("zeros", ((height, width), dtype))?;
        Self::py_new(&a, (0, 0), None)
    }
    /// The pixels as a NumPy array of shape (height, width), no copy.
    #[getter]
    fn array<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let owner = slf.clone().into_any();
        let me = slf.borrow();
        each!(&me.inner, i => zero_copy_view(i, owner))
    }
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        slf: Bound<'py, Self>,
        dtype: Option<Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = Self::array(slf)?;
        match (dtype, copy) {
            (None, Some(true)) => a.call_method0("copy"),
            (Some(d), c) => a.call_method1("astype", (d, c.unwrap_or(false))),
            _ => Ok(a),
        }
    }
    /// The NumPy dtype name of the pixels.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.inner.dtype()
    }
    /// Width in pixels (columns).
    #[getter]
    fn width(&self) -> usize {
        self.inner.width()
    }
    /// Height in pixels (rows).
    #[getter]
    fn height(&self) -> usize {
        self.inner.height()
    }
    /// (rows, cols), as NumPy has it.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.inner.height(), self.inner.width())
    }
    /// The origin (x0, y0) in the parent frame.
    #[getter]
    fn get_xy0(&self) -> (i32, i32) {
        self.inner.xy0()
    }
    #[setter]
    fn set_xy0(&mut self, xy0: (i32, i32)) {
        self.inner.set_xy0(xy0.0, xy0.1)
    }
    /// (x0, y0, width, height).
    #[getter]
    fn bbox(&self) -> (i32, i32, usize, usize) {
        let (x, y) = self.inner.xy0();
        (x, y, self.inner.width(), self.inner.height())
    }
    /// The LSST persistable name (`ImageF`, `ImageU`, ...).
    #[getter]
    fn persistable_name(&self) -> &'static str {
        self.inner.persistable()
    }
    /// A deep copy.
    fn copy(&self) -> Self {
        Image {
            inner: self.inner.clone(),
        }
    }
    fn __repr__(&self) -> String {
        let (x, y) = self.inner.xy0();
        format!(
            "<daf.Image {} {}x{} xy0=({x}, {y})>",
            self.inner.dtype(),
            self.inner.width(),
            self.inner.height()
        )
    }
}

/// A mask (`lsst.afw.image.Mask`): int32 pixels whose bits are named planes.
///
/// `Mask(array, planes=None, xy0=(0, 0))`; `planes` maps names to bit
/// numbers (default: LSST's BAD, SAT, INTRP, CR, EDGE, ...). `mask.array` is
/// a no-copy view; `mask.planes` a dict; `mask.plane_bitmask("SAT")`.
#[pyclass(module = "daf")]
pub struct Mask {
    pub image: Py<Image>,
    pub planes: BTreeMap<String, u8>,
}

impl Mask {
    pub fn from_rs(py: Python<'_>, m: RsMask) -> PyResult<Self> {
        let planes = m.planes().clone();
        Ok(Mask {
            image: Py::new(
                py,
                Image {
                    inner: AnyImage::I(m.image),
                },
            )?,
            planes,
        })
    }
    pub fn to_rs(&self, py: Python<'_>) -> PyResult<RsMask> {
        let img = match &self.image.borrow(py).inner {
            AnyImage::I(i) => i.clone(),
            _ => return Err(PyTypeError::new_err("a mask's pixels are int32")),
        };
        RsMask::from_parts(img, self.planes.clone()).map_err(formatter_err)
    }
}

#[pymethods]
impl Mask {
    #[new]
    #[pyo3(signature = (array, planes = None, xy0 = (0, 0)))]
    fn py_new(
        py: Python<'_>,
        array: &Bound<'_, PyAny>,
        planes: Option<BTreeMap<String, u8>>,
        xy0: (i32, i32),
    ) -> PyResult<Self> {
        let mut inner = AnyImage::from_array(array, Some("int32"))?;
        inner.set_xy0(xy0.0, xy0.1);
        let planes = match planes {
            Some(p) => p,
            None => RsMask::new(0, 0).planes().clone(),
        };
        if let Some((n, b)) = planes.iter().find(|(_, b)| **b >= 32) {
            return Err(PyValueError::new_err(format!(
                "mask plane {n} has bit {b}, beyond 31"
            )));
        }
        Ok(Mask {
            image: Py::new(py, Image { inner })?,
            planes,
        })
    }
    /// The mask bits as an int32 NumPy view (no copy).
    #[getter]
    fn array<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Image::array(self.image.bind(py).clone())
    }
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Image::__array__(self.image.bind(py).clone(), dtype, copy)
    }
    /// Plane name → bit number.
    #[getter]
    fn planes(&self) -> BTreeMap<String, u8> {
        self.planes.clone()
    }
    /// `1 << bit` of plane `name`.
    fn plane_bitmask(&self, name: &str) -> PyResult<i32> {
        self.planes.get(name).map(|b| 1i32 << b).ok_or_else(|| {
            PyValueError::new_err(format!(
                "no mask plane {name:?}; planes: {:?}",
                self.planes.keys().collect::<Vec<_>>()
            ))
        })
    }
    /// Adds a plane (or returns its bit).
    fn add_plane(&mut self, name: &str) -> PyResult<u8> {
        if let Some(b) = self.planes.get(name) {
            return Ok(*b);
        }
        let bit = (0..32u8)
            .find(|b| !self.planes.values().any(|x| x == b))
            .ok_or_else(|| PyValueError::new_err("all 32 mask planes are in use"))?;
        self.planes.insert(name.to_string(), bit);
        Ok(bit)
    }
    #[getter]
    fn width(&self, py: Python<'_>) -> usize {
        self.image.borrow(py).inner.width()
    }
    #[getter]
    fn height(&self, py: Python<'_>) -> usize {
        self.image.borrow(py).inner.height()
    }
    #[getter]
    fn get_xy0(&self, py: Python<'_>) -> (i32, i32) {
        self.image.borrow(py).inner.xy0()
    }
    #[getter]
    fn persistable_name(&self) -> &'static str {
        "Mask"
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<daf.Mask {}x{} planes={:?}>",
            self.width(py),
            self.height(py),
            self.planes
        )
    }
}

/// An image with its mask and variance (`lsst.afw.image.MaskedImage`).
///
/// `MaskedImage(image, mask=None, variance=None)`: `image` an `Image` or
/// array; missing planes are zero. `.image`, `.mask`, `.variance` are the
/// objects themselves (their `.array` views share memory).
#[pyclass(module = "daf")]
pub struct MaskedImage {
    #[pyo3(get)]
    pub image: Py<Image>,
    #[pyo3(get)]
    pub mask: Py<Mask>,
    #[pyo3(get)]
    pub variance: Py<Image>,
}

fn as_image(py: Python<'_>, v: &Bound<'_, PyAny>, dtype: Option<&str>) -> PyResult<Py<Image>> {
    if let Ok(i) = v.cast::<Image>() {
        return Ok(i.clone().unbind());
    }
    Py::new(
        py,
        Image {
            inner: AnyImage::from_array(v, dtype)?,
        },
    )
}

impl MaskedImage {
    fn from_rs<T: Px>(py: Python<'_>, mi: RsMaskedImage<T>) -> PyResult<Self> {
        Ok(MaskedImage {
            image: Py::new(
                py,
                Image {
                    inner: T::wrap(mi.image),
                },
            )?,
            mask: Py::new(py, Mask::from_rs(py, mi.mask)?)?,
            variance: Py::new(
                py,
                Image {
                    inner: AnyImage::F(mi.variance),
                },
            )?,
        })
    }
    fn to_rs<T: Px>(&self, py: Python<'_>) -> PyResult<RsMaskedImage<T>> {
        let image = T::unwrap(self.image.borrow(py).inner.clone())
            .ok_or_else(|| PyTypeError::new_err("pixel type changed"))?;
        let var = match &self.variance.borrow(py).inner {
            AnyImage::F(v) => v.clone(),
            _ => return Err(PyTypeError::new_err("the variance plane is float32")),
        };
        RsMaskedImage::from_parts(image, self.mask.borrow(py).to_rs(py)?, Some(var))
            .map_err(formatter_err)
    }
}

#[pymethods]
impl MaskedImage {
    #[new]
    #[pyo3(signature = (image, mask = None, variance = None))]
    fn py_new(
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        mask: Option<&Bound<'_, PyAny>>,
        variance: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let image = as_image(py, image, None)?;
        let (w, h, xy0) = {
            let i = image.borrow(py);
            (i.inner.width(), i.inner.height(), i.inner.xy0())
        };
        let np = py.import("numpy")?;
        let mask = match mask {
            Some(m) if m.cast::<Mask>().is_ok() => m.cast::<Mask>()?.clone().unbind(),
            Some(m) => Py::new(py, Mask::py_new(py, m, None, xy0)?)?,
            None => Py::new(
                py,
                Mask::py_new(py, &np.call_method1("zeros", ((h, w), "int32"))?, None, xy0)?,
            )?,
        };
        let variance = match variance {
            Some(v) => as_image(py, v, Some("float32"))?,
            None => as_image(py, &np.call_method1("zeros", ((h, w), "float32"))?, None)?,
        };
        variance.borrow_mut(py).inner.set_xy0(xy0.0, xy0.1);
        let mi = MaskedImage {
            image,
            mask,
            variance,
        };
        for (what, (ww, hh)) in [
            (
                "mask",
                (mi.mask.borrow(py).width(py), mi.mask.borrow(py).height(py)),
            ),
            (
                "variance",
                (
                    mi.variance.borrow(py).inner.width(),
                    mi.variance.borrow(py).inner.height(),
                ),
            ),
        ] {
            if (ww, hh) != (w, h) {
                return Err(PyValueError::new_err(format!(
                    "{what} is {ww}x{hh}, the image {w}x{h}"
                )));
            }
        }
        Ok(mi)
    }
    #[getter]
    fn width(&self, py: Python<'_>) -> usize {
        self.image.borrow(py).inner.width()
    }
    #[getter]
    fn height(&self, py: Python<'_>) -> usize {
        self.image.borrow(py).inner.height()
    }
    #[getter]
    fn get_xy0(&self, py: Python<'_>) -> (i32, i32) {
        self.image.borrow(py).inner.xy0()
    }
    #[getter]
    fn persistable_name(&self, py: Python<'_>) -> String {
        self.image
            .borrow(py)
            .inner
            .persistable()
            .replacen("Image", "MaskedImage", 1)
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<daf.MaskedImage {} {}x{}>",
            self.image.borrow(py).inner.dtype(),
            self.width(py),
            self.height(py)
        )
    }
}

/// WCS header cards (CTYPE, CRPIX, CRVAL, CD, PC, CDELT, CUNIT, RADESYS,
/// EQUINOX, LONPOLE, LATPOLE, A_/B_ SIP terms) of a metadata set, as a dict.
fn wcs_cards<'py>(py: Python<'py>, md: &RsPropertySet) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    const PREFIXES: [&str; 14] = [
        "CTYPE", "CRPIX", "CRVAL", "CD1_", "CD2_", "PC1_", "PC2_", "CDELT", "CUNIT", "RADESYS",
        "EQUINOX", "LONPOLE", "LATPOLE", "WCSAXES",
    ];
    for (k, v) in md.iter() {
        let sip = (k.starts_with("A_")
            || k.starts_with("B_")
            || k.starts_with("AP_")
            || k.starts_with("BP_"))
            && k.len() <= 8;
        if sip || PREFIXES.iter().any(|p| k.starts_with(p)) {
            d.set_item(k, crate::base::values_to_py(py, v, true)?)?;
        }
    }
    Ok(d)
}

/// A detector (`lsst.afw.cameraGeom.Detector`'s identity): `.id`, `.name`,
/// `.serial` and `.type` (`"SCIENCE"`, `"FOCUS"`, `"GUIDER"`, `"WAVEFRONT"`).
#[pyclass(module = "daf", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Detector {
    pub inner: daf_base::Detector,
}

#[pymethods]
impl Detector {
    #[new]
    #[pyo3(signature = (id, name, serial = String::new(), r#type = "SCIENCE"))]
    fn py_new(id: i64, name: String, serial: String, r#type: &str) -> PyResult<Self> {
        let kind = daf_base::DetectorType::parse(r#type).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "unknown detector type {type:?} (SCIENCE, FOCUS, GUIDER or WAVEFRONT)"
            ))
        })?;
        Ok(Detector {
            inner: daf_base::Detector {
                id,
                name,
                serial,
                kind,
            },
        })
    }
    /// The integer id.
    #[getter]
    fn id(&self) -> i64 {
        self.inner.id
    }
    /// The name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }
    /// The serial number ("" when unknown).
    #[getter]
    fn serial(&self) -> String {
        self.inner.serial.clone()
    }
    /// The type name.
    #[getter]
    fn r#type(&self) -> &'static str {
        self.inner.kind.as_str()
    }
    fn __repr__(&self) -> String {
        format!(
            "<daf.Detector id={} name={:?} serial={:?} type={}>",
            self.inner.id, self.inner.name, self.inner.serial, self.inner.kind
        )
    }
}

/// An exposure (`lsst.afw.image.Exposure`): a masked image plus metadata
/// (`.metadata`, a mutable `PropertySet` of the header cards), its WCS cards
/// (`.wcs`), `.filter`, `.exposure_time`, `.obs_date`, `.detector` and `.xy0`.
#[pyclass(module = "daf")]
pub struct Exposure {
    #[pyo3(get)]
    pub masked_image: Py<MaskedImage>,
    #[pyo3(get)]
    pub metadata: Py<PropertySet>,
    #[pyo3(get, set)]
    pub filter: Option<String>,
    #[pyo3(get, set)]
    pub exposure_time: Option<f64>,
    pub obs_date: Option<daf_base::DateTime>,
    /// The detector (a `Detector`) or None.
    #[pyo3(get, set)]
    pub detector: Option<Detector>,
}

impl Exposure {
    fn from_rs<T: Px>(py: Python<'_>, e: RsExposure<T>) -> PyResult<Self> {
        Ok(Exposure {
            masked_image: Py::new(py, MaskedImage::from_rs(py, e.masked_image)?)?,
            metadata: Py::new(py, PropertySet { inner: e.metadata })?,
            filter: e.filter,
            exposure_time: e.exposure_time,
            obs_date: e.obs_date,
            detector: e.detector.map(|inner| Detector { inner }),
        })
    }
    fn to_rs<T: Px>(&self, py: Python<'_>) -> PyResult<RsExposure<T>> {
        let mut e = RsExposure::new(self.masked_image.borrow(py).to_rs(py)?);
        e.metadata = self.metadata.borrow(py).inner.clone();
        e.filter = self.filter.clone();
        e.exposure_time = self.exposure_time;
        e.obs_date = self.obs_date;
        e.detector = self.detector.as_ref().map(|d| d.inner.clone());
        Ok(e)
    }
}

#[pymethods]
impl Exposure {
    #[new]
    #[pyo3(signature = (masked_image, metadata = None, filter = None, exposure_time = None, obs_date = None, detector = None))]
    fn py_new(
        py: Python<'_>,
        masked_image: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        filter: Option<String>,
        exposure_time: Option<f64>,
        obs_date: Option<&Bound<'_, PyAny>>,
        detector: Option<Detector>,
    ) -> PyResult<Self> {
        let mi = match masked_image.cast::<MaskedImage>() {
            Ok(m) => m.clone().unbind(),
            Err(_) => Py::new(py, MaskedImage::py_new(py, masked_image, None, None)?)?,
        };
        let md = match metadata {
            Some(m) => property_set_from_py(m)?,
            None => RsPropertySet::new(),
        };
        Ok(Exposure {
            masked_image: mi,
            metadata: Py::new(py, PropertySet { inner: md })?,
            filter,
            exposure_time,
            obs_date: obs_date
                .map(|d| datetime_from_py(d).map(|d| d.inner))
                .transpose()?,
            detector,
        })
    }
    /// The image plane.
    #[getter]
    fn image(&self, py: Python<'_>) -> Py<Image> {
        self.masked_image.borrow(py).image.clone_ref(py)
    }
    /// The mask plane.
    #[getter]
    fn mask(&self, py: Python<'_>) -> Py<Mask> {
        self.masked_image.borrow(py).mask.clone_ref(py)
    }
    /// The variance plane.
    #[getter]
    fn variance(&self, py: Python<'_>) -> Py<Image> {
        self.masked_image.borrow(py).variance.clone_ref(py)
    }
    /// The WCS header cards of the metadata, as a dict.
    #[getter]
    pub fn wcs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        wcs_cards(py, &self.metadata.borrow(py).inner)
    }
    /// The observation date (UTC datetime) or None.
    #[getter]
    fn obs_date<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.obs_date
            .as_ref()
            .map(|d| datetime_to_py(py, d))
            .transpose()
    }
    #[setter]
    fn set_obs_date(&mut self, d: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.obs_date = d
            .map(|d| datetime_from_py(d).map(|d| d.inner))
            .transpose()?;
        Ok(())
    }
    #[getter]
    fn get_xy0(&self, py: Python<'_>) -> (i32, i32) {
        self.masked_image.borrow(py).get_xy0(py)
    }
    #[getter]
    fn width(&self, py: Python<'_>) -> usize {
        self.masked_image.borrow(py).width(py)
    }
    #[getter]
    fn height(&self, py: Python<'_>) -> usize {
        self.masked_image.borrow(py).height(py)
    }
    #[getter]
    fn persistable_name(&self, py: Python<'_>) -> String {
        self.masked_image
            .borrow(py)
            .image
            .borrow(py)
            .inner
            .persistable()
            .replacen("Image", "Exposure", 1)
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<daf.Exposure {} {}x{} filter={:?}>",
            self.masked_image.borrow(py).image.borrow(py).inner.dtype(),
            self.width(py),
            self.height(py),
            self.filter
        )
    }
}

/// An image with its header metadata (`lsst.afw.image.DecoratedImage`),
/// as raw frames are read: `.image` and `.metadata`.
#[pyclass(module = "daf")]
pub struct DecoratedImage {
    #[pyo3(get)]
    pub image: Py<Image>,
    #[pyo3(get)]
    pub metadata: Py<PropertySet>,
}

#[pymethods]
impl DecoratedImage {
    #[new]
    #[pyo3(signature = (image, metadata = None))]
    fn py_new(
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(DecoratedImage {
            image: as_image(py, image, None)?,
            metadata: Py::new(
                py,
                PropertySet {
                    inner: metadata
                        .map(property_set_from_py)
                        .transpose()?
                        .unwrap_or_default(),
                },
            )?,
        })
    }
    #[getter]
    fn persistable_name(&self, py: Python<'_>) -> String {
        format!("Decorated{}", self.image.borrow(py).inner.persistable())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        let i = self.image.borrow(py);
        format!(
            "<daf.DecoratedImage {} {}x{}>",
            i.inner.dtype(),
            i.inner.width(),
            i.inner.height()
        )
    }
}

// ------------------------------------------------------------------ catalog

/// A table of sources (`lsst.afw.table.SourceCatalog`): typed columns (int64,
/// int32, float64, float32, bool flags, strings) with a doc and a unit each,
/// and metadata.
///
/// `SourceCatalog.from_array(structured_array, units=None, docs=None)` and
/// `catalog.to_array()` convert to and from a NumPy structured array;
/// `catalog["ra"]` is one column; `catalog.to_astropy()` an
/// `astropy.table.Table` with units and descriptions.
#[pyclass(module = "daf")]
pub struct SourceCatalog {
    pub inner: RsCatalog,
}

fn np_dtype(t: FieldType) -> &'static str {
    match t {
        FieldType::I64 => "i8",
        FieldType::I32 => "i4",
        FieldType::F64 => "f8",
        FieldType::F32 => "f4",
        FieldType::Flag => "?",
        FieldType::String => "",
    }
}

fn column_py<'py>(py: Python<'py>, c: &Column) -> PyResult<Bound<'py, PyAny>> {
    Ok(match c {
        Column::I64(v) => PyArray1::from_slice(py, v).into_any(),
        Column::I32(v) => PyArray1::from_slice(py, v).into_any(),
        Column::F64(v) => PyArray1::from_slice(py, v).into_any(),
        Column::F32(v) => PyArray1::from_slice(py, v).into_any(),
        Column::Flag(v) => PyArray1::from_slice(py, v).into_any(),
        Column::String(v) => {
            let np = py.import("numpy")?;
            np.call_method1("array", (PyList::new(py, v)?, "U"))?
        }
    })
}

#[pymethods]
impl SourceCatalog {
    /// A catalog from a NumPy structured array (or anything
    /// `numpy.asarray` turns into one, e.g. an astropy Table): integer
    /// columns of ≤ 4 bytes become int32, wider int64; float32 stays, other
    /// floats are float64; bool flags; str/bytes strings.
    #[staticmethod]
    #[pyo3(signature = (array, units = None, docs = None, metadata = None))]
    fn from_array(
        py: Python<'_>,
        array: &Bound<'_, PyAny>,
        units: Option<BTreeMap<String, String>>,
        docs: Option<BTreeMap<String, String>>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let np = py.import("numpy")?;
        let a = np.call_method1("asarray", (array,))?;
        let names = a.getattr("dtype")?.getattr("names")?;
        if names.is_none() {
            return Err(PyTypeError::new_err(
                "a catalog is built from a structured array (dtype with named fields)",
            ));
        }
        let names: Vec<String> = names.extract()?;
        let mut fields = Vec::new();
        let mut cols = Vec::new();
        for n in &names {
            let col = a.get_item(n)?;
            let dt = col.getattr("dtype")?;
            let kind: String = dt.getattr("kind")?.extract()?;
            let size: usize = dt.getattr("itemsize")?.extract()?;
            let conv = |d: &str| -> PyResult<Bound<'_, PyAny>> {
                np.call_method1("ascontiguousarray", (&col, d))
            };
            let (t, c) = match (kind.as_str(), size) {
                ("i" | "u", s) if s <= 4 && !(kind == "u" && s == 4) => (
                    FieldType::I32,
                    Column::I32(conv("i4")?.cast::<PyArray1<i32>>()?.to_vec()?),
                ),
                ("i" | "u", _) => (
                    FieldType::I64,
                    Column::I64(conv("i8")?.cast::<PyArray1<i64>>()?.to_vec()?),
                ),
                ("f", 4) | ("f", 2) => (
                    FieldType::F32,
                    Column::F32(conv("f4")?.cast::<PyArray1<f32>>()?.to_vec()?),
                ),
                ("f", _) => (
                    FieldType::F64,
                    Column::F64(conv("f8")?.cast::<PyArray1<f64>>()?.to_vec()?),
                ),
                ("b", _) => (
                    FieldType::Flag,
                    Column::Flag(conv("?")?.cast::<PyArray1<bool>>()?.to_vec()?),
                ),
                ("U" | "S" | "O", _) => {
                    let items: Vec<Bound<'_, PyAny>> = col.call_method0("tolist")?.extract()?;
                    let mut v = Vec::with_capacity(items.len());
                    for it in items {
                        v.push(match it.extract::<String>() {
                            Ok(s) => s,
                            Err(_) => it.call_method1("decode", ("utf-8",))?.extract()?,
                        });
                    }
                    (FieldType::String, Column::String(v))
                }
                (k, s) => {
                    return Err(PyTypeError::new_err(format!(
                        "column {n}: no catalog type holds dtype kind {k:?} of {s} bytes"
                    )))
                }
            };
            let mut f = Field::new(n.clone(), t);
            if let Some(u) = units.as_ref().and_then(|u| u.get(n)) {
                f.unit = u.clone();
            }
            if let Some(d) = docs.as_ref().and_then(|d| d.get(n)) {
                f.doc = d.clone();
            }
            fields.push(f);
            cols.push(c);
        }
        let mut inner = RsCatalog::from_columns(fields, cols).map_err(formatter_err)?;
        if let Some(m) = metadata {
            inner.metadata = property_set_from_py(m)?;
        }
        Ok(SourceCatalog { inner })
    }
    /// The catalog as a NumPy structured array (strings as unicode `U` columns).
    fn to_array<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let np = py.import("numpy")?;
        let mut dtype = Vec::new();
        let mut cols = Vec::new();
        for (f, c) in self.inner.fields().iter().zip(self.inner.columns()) {
            let col = column_py(py, c)?;
            let d = if f.field_type == FieldType::String {
                col.getattr("dtype")?.getattr("str")?.extract::<String>()?
            } else {
                np_dtype(f.field_type).to_string()
            };
            dtype.push((f.name.clone(), d));
            cols.push(col);
        }
        let out = np.call_method1("empty", (self.inner.len(), PyList::new(py, dtype)?))?;
        for (f, c) in self.inner.fields().iter().zip(cols) {
            out.set_item(&f.name, c)?;
        }
        Ok(out)
    }
    /// An `astropy.table.Table` with each column's unit and description and
    /// the metadata as `meta` (needs astropy).
    fn to_astropy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let table = py.import("astropy.table")?.getattr("Table")?;
        let t = table.call1((self.to_array(py)?,))?;
        for f in self.inner.fields() {
            let c = t.get_item(&f.name)?;
            if !f.unit.is_empty() {
                c.setattr("unit", &f.unit)?;
            }
            if !f.doc.is_empty() {
                c.setattr("description", &f.doc)?;
            }
        }
        t.getattr("meta")?.call_method1(
            "update",
            (crate::base::property_set_to_dict(py, &self.inner.metadata)?,),
        )?;
        Ok(t)
    }
    /// Column names, in order.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.inner.fields().iter().map(|f| f.name.clone()).collect()
    }
    /// `[(name, type, doc, unit)]` with types `int64`, `int32`, `float64`,
    /// `float32`, `bool`, `str`.
    #[getter]
    fn schema(&self) -> Vec<(String, &'static str, String, String)> {
        self.inner
            .fields()
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    match f.field_type {
                        FieldType::I64 => "int64",
                        FieldType::I32 => "int32",
                        FieldType::F64 => "float64",
                        FieldType::F32 => "float32",
                        FieldType::Flag => "bool",
                        FieldType::String => "str",
                    },
                    f.doc.clone(),
                    f.unit.clone(),
                )
            })
            .collect()
    }
    /// The metadata (a copy; set it with `catalog.metadata = ...`).
    #[getter]
    fn get_metadata(&self) -> PropertySet {
        PropertySet {
            inner: self.inner.metadata.clone(),
        }
    }
    #[setter]
    fn set_metadata(&mut self, m: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.metadata = property_set_from_py(m)?;
        Ok(())
    }
    #[getter]
    fn persistable_name(&self) -> &'static str {
        "SourceCatalog"
    }
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let c = self
            .inner
            .column(name)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_string()))?;
        column_py(py, c)
    }
    fn __repr__(&self) -> String {
        format!(
            "<daf.SourceCatalog {} rows, columns {:?}>",
            self.inner.len(),
            self.names()
        )
    }
}

// ------------------------------------------------------------------ conversion

/// A Python object that is not a daf object, carried on a clipboard.
#[derive(Debug)]
pub struct PyItem(pub Py<PyAny>);
daf_formatters::impl_persistable!(PyItem, "PyObject");

/// A daf persistable as a Python object (moved: no pixel copy).
pub fn to_py(py: Python<'_>, obj: Box<dyn Persistable>) -> PyResult<Py<PyAny>> {
    let any = obj.into_any();
    macro_rules! try_img {
        ($any:ident; $($t:ty),*) => {$(
            let $any = match $any.downcast::<RsImage<$t>>() {
                Ok(i) => return Ok(Py::new(py, Image { inner: <$t as Px>::wrap(*i) })?.into_any()),
                Err(a) => a,
            };
            let $any = match $any.downcast::<RsMaskedImage<$t>>() {
                Ok(i) => return Ok(Py::new(py, MaskedImage::from_rs(py, *i)?)?.into_any()),
                Err(a) => a,
            };
            let $any = match $any.downcast::<RsExposure<$t>>() {
                Ok(i) => return Ok(Py::new(py, Exposure::from_rs(py, *i)?)?.into_any()),
                Err(a) => a,
            };
            let $any = match $any.downcast::<RsDecorated<$t>>() {
                Ok(i) => {
                    let d = *i;
                    return Ok(Py::new(py, DecoratedImage {
                        image: Py::new(py, Image { inner: <$t as Px>::wrap(d.image) })?,
                        metadata: Py::new(py, PropertySet { inner: d.metadata })?,
                    })?.into_any());
                }
                Err(a) => a,
            };
        )*};
    }
    try_img!(any; u8, i16, u16, i32, u32, i64, f32, f64);
    let any = match any.downcast::<RsPropertySet>() {
        Ok(p) => return Ok(Py::new(py, PropertySet { inner: *p })?.into_any()),
        Err(a) => a,
    };
    let any = match any.downcast::<RsMask>() {
        Ok(m) => return Ok(Py::new(py, Mask::from_rs(py, *m)?)?.into_any()),
        Err(a) => a,
    };
    let any = match any.downcast::<RsCatalog>() {
        Ok(c) => return Ok(Py::new(py, SourceCatalog { inner: *c })?.into_any()),
        Err(a) => a,
    };
    let any = match any.downcast::<PyItem>() {
        Ok(p) => return Ok(p.0),
        Err(a) => a,
    };
    let _ = any;
    Err(crate::errors::DafError::new_err(
        "the dataset's object type has no Python wrapper",
    ))
}

/// A shared daf persistable as a Python object (cloned).
pub fn arc_to_py(py: Python<'_>, obj: &Arc<dyn Persistable>) -> PyResult<Py<PyAny>> {
    if let Some(p) = obj.as_any().downcast_ref::<PyItem>() {
        return Ok(p.0.clone_ref(py));
    }
    macro_rules! clone_as {
        ($($t:ty),*) => {$(
            if let Some(x) = obj.as_any().downcast_ref::<$t>() {
                return to_py(py, Box::new(x.clone()));
            }
        )*};
    }
    clone_as!(
        RsPropertySet,
        RsMask,
        RsCatalog,
        RsImage<u8>,
        RsImage<i16>,
        RsImage<u16>,
        RsImage<i32>,
        RsImage<u32>,
        RsImage<i64>,
        RsImage<f32>,
        RsImage<f64>,
        RsMaskedImage<u8>,
        RsMaskedImage<i16>,
        RsMaskedImage<u16>,
        RsMaskedImage<i32>,
        RsMaskedImage<u32>,
        RsMaskedImage<i64>,
        RsMaskedImage<f32>,
        RsMaskedImage<f64>,
        RsExposure<u8>,
        RsExposure<i16>,
        RsExposure<u16>,
        RsExposure<i32>,
        RsExposure<u32>,
        RsExposure<i64>,
        RsExposure<f32>,
        RsExposure<f64>,
        RsDecorated<u8>,
        RsDecorated<i16>,
        RsDecorated<u16>,
        RsDecorated<i32>,
        RsDecorated<u32>,
        RsDecorated<i64>,
        RsDecorated<f32>,
        RsDecorated<f64>
    );
    Err(crate::errors::DafError::new_err(format!(
        "object {} has no Python wrapper",
        obj.persistable_name()
    )))
}

/// A daf object from Python (copies pixels), or `None` if `v` is not one.
pub fn from_py(v: &Bound<'_, PyAny>) -> PyResult<Option<Box<dyn Persistable>>> {
    let py = v.py();
    if let Ok(p) = v.cast::<PropertySet>() {
        return Ok(Some(Box::new(p.borrow().inner.clone())));
    }
    if let Ok(p) = v.cast::<crate::base::Policy>() {
        return Ok(Some(Box::new(p.borrow().inner.as_property_set().clone())));
    }
    if let Ok(i) = v.cast::<Image>() {
        return Ok(Some(
            each!(i.borrow().inner.clone(), x => Box::new(x) as Box<dyn Persistable>),
        ));
    }
    if let Ok(m) = v.cast::<Mask>() {
        return Ok(Some(Box::new(m.borrow().to_rs(py)?)));
    }
    if let Ok(c) = v.cast::<SourceCatalog>() {
        return Ok(Some(Box::new(c.borrow().inner.clone())));
    }
    if let Ok(m) = v.cast::<MaskedImage>() {
        let m = m.borrow();
        fn conv<T: Px>(m: &MaskedImage, py: Python<'_>) -> PyResult<Box<dyn Persistable>> {
            Ok(Box::new(m.to_rs::<T>(py)?))
        }
        let img = m.image.borrow(py).inner.clone();
        macro_rules! f {
            ($t:ty) => {
                conv::<$t>(&m, py)
            };
        }
        let r = match img {
            AnyImage::B(_) => f!(u8),
            AnyImage::S(_) => f!(i16),
            AnyImage::U(_) => f!(u16),
            AnyImage::I(_) => f!(i32),
            AnyImage::UI(_) => f!(u32),
            AnyImage::L(_) => f!(i64),
            AnyImage::F(_) => f!(f32),
            AnyImage::D(_) => f!(f64),
        };
        return r.map(Some);
    }
    if let Ok(e) = v.cast::<Exposure>() {
        let e = e.borrow();
        fn conv<T: Px>(e: &Exposure, py: Python<'_>) -> PyResult<Box<dyn Persistable>> {
            Ok(Box::new(e.to_rs::<T>(py)?))
        }
        let img = e.masked_image.borrow(py).image.borrow(py).inner.dtype();
        macro_rules! f {
            ($t:ty) => {
                conv::<$t>(&e, py)
            };
        }
        let r = match img {
            "uint8" => f!(u8),
            "int16" => f!(i16),
            "uint16" => f!(u16),
            "int32" => f!(i32),
            "uint32" => f!(u32),
            "int64" => f!(i64),
            "float32" => f!(f32),
            _ => f!(f64),
        };
        return r.map(Some);
    }
    if let Ok(d) = v.cast::<DecoratedImage>() {
        let d = d.borrow();
        let md = d.metadata.borrow(py).inner.clone();
        let img = d.image.borrow(py).inner.clone();
        return Ok(Some(
            each!(img, x => { let mut dd = RsDecorated::new(x); dd.metadata = md; Box::new(dd) as Box<dyn Persistable> }),
        ));
    }
    Ok(None)
}

/// `from_py`, or a TypeError naming what daf can store.
pub fn persistable_from_py(v: &Bound<'_, PyAny>) -> PyResult<Box<dyn Persistable>> {
    if let Some(p) = from_py(v)? {
        return Ok(p);
    }
    if v.is_instance_of::<PyDict>() {
        return Ok(Box::new(property_set_from_py(v)?));
    }
    Err(PyTypeError::new_err(format!(
        "daf cannot store a {}: pass a PropertySet (or dict), Image, Mask, MaskedImage, Exposure, DecoratedImage or SourceCatalog",
        v.get_type().name()?
    )))
}
