//! [`FormatterRegistry`]: formatters by persistable name and by Rust type.

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use daf_base::Policy;

use crate::error::FormatterError;
use crate::formatter::Formatter;
use crate::persistable::Persistable;
use crate::Result;

/// Makes a formatter, given its sub-policy (`Formatter.<persistableName>`), if any.
pub type FormatterFactory = Arc<dyn Fn(Option<&Policy>) -> Box<dyn Formatter> + Send + Sync>;

/// Finds formatters by persistable name or by Rust type.
///
/// A value, not a process global. Unlike LSST's registry, which silently kept
/// the first of two registrations under one name, registering a name twice is
/// an error here. Every lookup makes a new formatter instance.
///
/// ```
/// use daf_formatters::{FormatterRegistry, FormatterError};
/// let reg = FormatterRegistry::new();
/// assert!(matches!(reg.lookup_by_name("ExposureF", None), Err(FormatterError::UnknownName { .. })));
/// ```
#[derive(Clone, Default)]
pub struct FormatterRegistry {
    by_name: BTreeMap<String, FormatterFactory>,
    by_type: HashMap<TypeId, String>,
}

impl FormatterRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `factory` for persistable `name` and Rust type `T`.
    pub fn register<T: Persistable>(
        &mut self,
        name: &str,
        factory: impl Fn(Option<&Policy>) -> Box<dyn Formatter> + Send + Sync + 'static,
    ) -> Result<()> {
        self.register_name(name, factory)?;
        self.by_type.insert(TypeId::of::<T>(), name.to_string());
        Ok(())
    }

    /// Registers `factory` for a persistable name with no Rust type binding
    /// (for types that share one Rust type under several names).
    pub fn register_name(
        &mut self,
        name: &str,
        factory: impl Fn(Option<&Policy>) -> Box<dyn Formatter> + Send + Sync + 'static,
    ) -> Result<()> {
        if self.by_name.contains_key(name) {
            return Err(FormatterError::DuplicateName { name: name.into() });
        }
        self.by_name.insert(name.to_string(), Arc::new(factory));
        Ok(())
    }

    /// A new formatter for persistable `name`, given the `Formatter` policy
    /// (its `<name>` entry is handed to the formatter).
    pub fn lookup_by_name(
        &self,
        name: &str,
        policy: Option<&Policy>,
    ) -> Result<Box<dyn Formatter>> {
        let f = self
            .by_name
            .get(name)
            .ok_or_else(|| FormatterError::UnknownName { name: name.into() })?;
        let sub = policy.and_then(|p| p.get_policy(name).ok());
        Ok(f(sub.as_ref()))
    }

    /// A new formatter for persistable `name`, given its own sub-policy
    /// (the `Formatter.<name>` entry itself, not the whole `Formatter`
    /// policy): for callers that keep sub-policies ready and so avoid
    /// copying them on every lookup.
    pub fn create(&self, name: &str, sub_policy: Option<&Policy>) -> Result<Box<dyn Formatter>> {
        let f = self
            .by_name
            .get(name)
            .ok_or_else(|| FormatterError::UnknownName { name: name.into() })?;
        Ok(f(sub_policy))
    }

    /// The persistable name [`FormatterRegistry::lookup_for`] uses for `obj`:
    /// its own name when registered, else the name registered for its Rust type,
    /// else its own name (which then is unknown).
    pub fn name_for<'a>(&'a self, obj: &'a dyn Persistable) -> &'a str {
        let tid = obj.as_any().type_id();
        match self.by_type.get(&tid) {
            Some(_) if self.by_name.contains_key(obj.persistable_name()) => obj.persistable_name(),
            Some(name) => name,
            None => obj.persistable_name(),
        }
    }

    /// A new formatter for Rust type `T`.
    pub fn lookup_by_type<T: Persistable>(
        &self,
        policy: Option<&Policy>,
    ) -> Result<Box<dyn Formatter>> {
        let name =
            self.by_type
                .get(&TypeId::of::<T>())
                .ok_or_else(|| FormatterError::UnknownType {
                    type_name: std::any::type_name::<T>().to_string(),
                })?;
        self.lookup_by_name(name, policy)
    }

    /// A new formatter for a dynamic object: by its concrete Rust type first,
    /// then by its persistable name.
    pub fn lookup_for(
        &self,
        obj: &dyn Persistable,
        policy: Option<&Policy>,
    ) -> Result<Box<dyn Formatter>> {
        let tid = obj.as_any().type_id();
        match self.by_type.get(&tid) {
            Some(name) if self.by_name.contains_key(obj.persistable_name()) => {
                // Several names may share one Rust type (e.g. ExposureF/ExposureD
                // are distinct types, but a user type may register many names);
                // prefer the object's own name when it is registered.
                let _ = name;
                self.lookup_by_name(obj.persistable_name(), policy)
            }
            Some(name) => self.lookup_by_name(name, policy),
            None => self.lookup_by_name(obj.persistable_name(), policy),
        }
    }

    /// The persistable name registered for Rust type `T`.
    pub fn name_of<T: Persistable>(&self) -> Option<&str> {
        self.by_type.get(&TypeId::of::<T>()).map(String::as_str)
    }

    /// Registered persistable names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}

impl std::fmt::Debug for FormatterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormatterRegistry")
            .field("names", &self.names())
            .finish()
    }
}
