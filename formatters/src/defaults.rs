//! The built-in formatters.
//!
//! `PropertySet` and `SourceCatalog` are each served by one formatter that
//! dispatches on the storage (see [`crate::property_set_formatter`] and [`crate::db_formatters`]): Boost/XML
//! archives and FITS files through their own formatters, databases through
//! the database path.

use crate::registry::FormatterRegistry;

impl FormatterRegistry {
    /// A registry with every built-in formatter registered.
    pub fn with_defaults() -> FormatterRegistry {
        let mut reg = FormatterRegistry::new();
        reg.register::<daf_base::PropertySet>("PropertySet", |p| {
            Box::new(crate::property_set_formatter::PropertySetFormatter::from_policy(p))
        })
        .expect("first registration");
        crate::fits::register_fits_formatters(&mut reg).expect("fresh registry");
        reg
    }
}
