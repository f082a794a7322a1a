//! # daf-base
//!
//! The ground every other daf crate stands on: [`PropertySet`] (the typed,
//! hierarchical property container used for additional data, data ids, FITS
//! headers and clipboard items), [`Policy`] (configuration from YAML and legacy
//! PAF files), [`DataId`], [`DateTime`], the printf-style formatting engine in
//! [`printf`], and the shared error types in [`error`].
//!
//! It depends on no other daf crate. Start reading at [`PropertySet`], then
//! [`Policy`].
//!
//! ```
//! use daf_base::PropertySet;
//! let mut ps = PropertySet::new();
//! ps.set("a.b.c", 1).unwrap();
//! ps.add("a.b.c", 2).unwrap();
//! assert_eq!(ps.get::<i32>("a.b.c").unwrap(), 2);
//! assert_eq!(ps.get_array::<i32>("a.b.c").unwrap(), vec![1, 2]);
//! assert_eq!(ps.param_names(), vec!["a.b.c".to_string()]);
//! ```

pub mod data_id;
pub mod datetime;
pub mod error;
pub mod path_safety;
pub mod policy;
pub mod printf;
pub mod property_set;
#[doc(hidden)]
pub mod testing;

pub use data_id::{DataId, DataIdValue};
pub use datetime::{DateTime, Timescale};
pub use error::PropertyError;
pub use path_safety::UnsafePath;
pub use policy::Policy;
pub use printf::{sprintf, FormatSpec, PrintfArg, PrintfError};
pub use property_set::{NativeType, PropertySet, PropertyType, PropertyValue, Values};
