//! # daf-python
//!
//! The Python extension module `daf._daf`, re-exported by the pure-Python
//! package `daf` (python/daf): the butler ([`butler`]), NumPy-backed images
//! and catalogs ([`objects`]), PropertySet / Policy / DateTime ([`base`]),
//! persistence and Boost archives ([`persistence`]), Python stages for the
//! harness ([`harness`]) and the exception hierarchy ([`errors`]).
//!
//! Depends on every daf library crate; nothing depends on it. Built by
//! maturin (`pip install ./python`); tested from Python (python/tests).

use pyo3::prelude::*;

pub mod base;
pub mod butler;
pub mod errors;
pub mod harness;
pub mod objects;
pub mod persistence;

/// The native part of the `daf` package.
#[pymodule]
fn _daf(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<base::PropertySet>()?;
    m.add_class::<base::DateTime>()?;
    m.add_class::<base::Policy>()?;
    m.add_class::<objects::Image>()?;
    m.add_class::<objects::Mask>()?;
    m.add_class::<objects::MaskedImage>()?;
    m.add_class::<objects::Exposure>()?;
    m.add_class::<objects::Detector>()?;
    m.add_class::<objects::DecoratedImage>()?;
    m.add_class::<objects::SourceCatalog>()?;
    m.add_class::<butler::Butler>()?;
    m.add_class::<butler::ButlerDataRef>()?;
    m.add_class::<butler::DeferredDatasetHandle>()?;
    m.add_class::<persistence::Persistence>()?;
    m.add_class::<persistence::LogicalLocation>()?;
    m.add_submodule(&persistence::boost_module(m.py())?)?;
    harness::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
