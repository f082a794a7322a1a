//! The built-in formatters.

use crate::registry::FormatterRegistry;

impl FormatterRegistry {
    /// A registry with every built-in formatter registered.
    pub fn with_defaults() -> FormatterRegistry {
        #[allow(unused_mut)]
        let mut reg = FormatterRegistry::new();
        // Built-in formatters register themselves here as they are implemented.
        crate::fits::register_fits_formatters(&mut reg).expect("fresh registry");
        reg
    }
}
