//! [`Persistable`]: the objects daf can store.

use std::any::Any;
use std::fmt::Debug;

/// An object that formatters can write and read.
///
/// Implement it with [`impl_persistable!`](crate::impl_persistable):
/// ```
/// #[derive(Debug, Clone, PartialEq)]
/// struct Star { ra: f64, dec: f64 }
/// daf_formatters::impl_persistable!(Star, "Star");
/// use daf_formatters::Persistable;
/// let s: Box<dyn Persistable> = Box::new(Star { ra: 1.0, dec: 2.0 });
/// assert_eq!(s.persistable_name(), "Star");
/// assert!(s.as_any().downcast_ref::<Star>().is_some());
/// ```
pub trait Persistable: Any + Send + Sync + Debug {
    /// The persistable name formatters are registered under (`"PropertySet"`,
    /// `"ExposureF"`, ...).
    fn persistable_name(&self) -> &str;
    /// Downcast support.
    fn as_any(&self) -> &dyn Any;
    /// Downcast support, mutably.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Converts the box for a by-value downcast.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send + Sync>;
}

impl dyn Persistable {
    /// Downcasts a reference.
    pub fn downcast_ref<T: Persistable>(&self) -> Option<&T> {
        self.as_any().downcast_ref()
    }
    /// Downcasts a mutable reference.
    pub fn downcast_mut<T: Persistable>(&mut self) -> Option<&mut T> {
        self.as_any_mut().downcast_mut()
    }
}

/// Implements [`Persistable`] for a type with a fixed persistable name, or
/// for a generic type whose name comes from its parameter:
///
/// ```
/// #[derive(Debug)]
/// struct Star { flux: f64 }
/// daf_formatters::impl_persistable!(Star, "Star");
///
/// trait Band: std::fmt::Debug + Send + Sync + 'static { const NAME: &'static str; }
/// #[derive(Debug)]
/// struct Flux<B>(f64, std::marker::PhantomData<B>);
/// daf_formatters::impl_persistable!(impl<B: Band> Flux<B>, B::NAME);
/// ```
#[macro_export]
macro_rules! impl_persistable {
    (impl<$p:ident : $bound:path> $t:ty, $name:expr) => {
        $crate::impl_persistable!(@impl [$p: $bound] $t, $name);
    };
    ($t:ty, $name:expr) => {
        $crate::impl_persistable!(@impl [] $t, $name);
    };
    (@impl [$($generics:tt)*] $t:ty, $name:expr) => {
        impl<$($generics)*> $crate::Persistable for $t {
            fn persistable_name(&self) -> &str {
                $name
            }
            fn as_any(&self) -> &dyn ::std::any::Any {
                self
            }
            fn as_any_mut(&mut self) -> &mut dyn ::std::any::Any {
                self
            }
            fn into_any(self: Box<Self>) -> Box<dyn ::std::any::Any + Send + Sync> {
                self
            }
        }
    };
}

impl_persistable!(daf_base::PropertySet, "PropertySet");
