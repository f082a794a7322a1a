//! [`PropertySetFormatter`]: PropertySets in Boost (binary, text) and XML
//! archives, with the layout LSST's `PropertySetFormatter` wrote, and as
//! table rows through `DbStorage` / `DbTsvStorage` (see [`crate::db`]).

use daf_base::{Policy, PropertySet};
use daf_storages::boost::property_set::{
    load_legacy_property_set, load_property_set, save_property_set, LegacyLayout, PropertySetLayout,
};
use daf_storages::boost::ArchiveKind;
use daf_storages::boost_storage::ArchiveStorage;
use daf_storages::yaml_storage::CONFIG_NAME;
use daf_storages::{Storage, StorageError, YamlStorage};

use crate::error::FormatterError;
use crate::formatter::{expect_object, unsupported, Formatter};
use crate::persistable::Persistable;
use crate::Result;

/// The NVP name of the PropertySet in LSST's archives (the XML root element).
pub const ROOT_NAME: &str = "propertySet";

/// Writes, reads and updates [`PropertySet`]s through `BoostStorage` and
/// `XmlStorage`.
///
/// The layout (see [`daf_storages::boost::property_set`]) is LSST's by
/// default: a `size_t` item count and a tracked `Persistable` base, byte for
/// byte what LSST's C++ wrote. The formatter policy may change it:
/// `nitems: int` (a 4-byte count) and `persistable_tracked: false`. Reading
/// obeys the tracking flag found in the archive, and for binary archives
/// falls back to the other count width if the configured one does not parse;
/// archives in neither are read as LSST's older layouts (a PropertySet with a
/// `names` vector, or a DataProperty; see
/// [`daf_storages::boost::property_set::LegacyLayout`]).
/// `update` merges what it reads into the object (values read replace
/// values of the same name).
#[derive(Debug, Clone, Default)]
pub struct PropertySetFormatter {
    layout: PropertySetLayout,
    /// The sub-policy, for the database path (`TableName`, `KeyList`; see [`crate::db`]).
    db_policy: Option<Policy>,
}

impl PropertySetFormatter {
    /// A formatter with LSST's layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// A formatter configured by its `Formatter.PropertySet` sub-policy.
    pub fn from_policy(policy: Option<&Policy>) -> Self {
        let mut layout = PropertySetLayout::default();
        if let Some(p) = policy {
            let ps = p.as_property_set();
            if let Some(v) = ps.values("nitems").and_then(|v| v.text_at(0)) {
                layout.nitems_size_t = v != "int";
            }
            if let Some(v) = ps.values("persistable_tracked").and_then(|v| v.text_at(0)) {
                layout.persistable_tracked = matches!(v.as_str(), "true" | "1" | "yes");
            }
        }
        PropertySetFormatter {
            layout,
            db_policy: policy.cloned(),
        }
    }

    /// The layout written.
    pub fn layout(&self) -> PropertySetLayout {
        self.layout
    }

    fn storage<'a>(&self, storage: &'a mut dyn Storage) -> Result<&'a mut ArchiveStorage> {
        let name = storage.storage_name().to_string();
        match storage.as_any_mut().downcast_mut::<ArchiveStorage>() {
            Some(s) => Ok(s),
            None => Err(FormatterError::UnsupportedStorage {
                persistable: "PropertySet".into(),
                storage: name,
            }),
        }
    }

    fn read_ps(&self, storage: &mut dyn Storage) -> Result<PropertySet> {
        if let Some(y) = storage.as_any_mut().downcast_mut::<YamlStorage>() {
            let text = y.read_text()?;
            if y.storage_name() == CONFIG_NAME {
                return property_set_from_config(&text);
            }
            return property_set_from_yaml(&text);
        }
        let s = self.storage(storage)?;
        let layout = self.layout;
        match s.read_archive(|ar| load_property_set(ar, ROOT_NAME, &layout)) {
            Ok(ps) => Ok(ps),
            Err(first @ StorageError::Format { .. }) => {
                if !s.last_read().is_some_and(|r| r.kind != ArchiveKind::Binary) {
                    let other = PropertySetLayout {
                        nitems_size_t: !layout.nitems_size_t,
                        ..layout
                    };
                    if let Ok(ps) = s.read_archive(|ar| load_property_set(ar, ROOT_NAME, &other)) {
                        return Ok(ps);
                    }
                }
                // LSST's 2007-2009 archives: a PropertySet with a `names`
                // vector, or a DataProperty.
                for legacy in [LegacyLayout::Names, LegacyLayout::DataProperty] {
                    if let Ok(ps) =
                        s.read_archive(|ar| load_legacy_property_set(ar, ROOT_NAME, legacy))
                    {
                        return Ok(ps);
                    }
                }
                Err(first.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Formatter for PropertySetFormatter {
    fn persistable_name(&self) -> &str {
        "PropertySet"
    }

    fn write(
        &self,
        obj: &dyn Persistable,
        storage: &mut dyn Storage,
        additional_data: &PropertySet,
    ) -> Result<()> {
        let ps: &PropertySet = expect_object(self, obj)?;
        if crate::db::is_db_storage(storage) {
            // DbStorage / DbTsvStorage: one row of a table.
            return crate::db::write_property_set(
                ps,
                storage,
                additional_data,
                self.db_policy.as_ref(),
            );
        }
        if let Some(y) = storage.as_any_mut().downcast_mut::<YamlStorage>() {
            let text = if y.storage_name() == CONFIG_NAME {
                property_set_to_config(ps)
            } else {
                property_set_to_yaml(ps)?
            };
            y.write_text(&text)?;
            return Ok(());
        }
        if storage.as_any().downcast_ref::<ArchiveStorage>().is_none() {
            return Err(unsupported(self, storage));
        }
        let layout = self.layout;
        self.storage(storage)?
            .write_archive(|ar| save_property_set(ar, ROOT_NAME, ps, &layout))?;
        Ok(())
    }

    fn read(
        &self,
        storage: &mut dyn Storage,
        _additional_data: &PropertySet,
    ) -> Result<Box<dyn Persistable>> {
        Ok(Box::new(self.read_ps(storage)?))
    }

    fn update(
        &self,
        obj: &mut dyn Persistable,
        storage: &mut dyn Storage,
        _additional_data: &PropertySet,
    ) -> Result<()> {
        let read = self.read_ps(storage)?;
        let actual = obj.persistable_name().to_string();
        let ps = obj
            .downcast_mut::<PropertySet>()
            .ok_or(FormatterError::WrongObject {
                expected: "PropertySet".into(),
                actual,
            })?;
        ps.merge_replace(&read)?;
        Ok(())
    }
}

/// The tag LSST's YAML representer put in front of a PropertySet.
pub const YAML_TAG: &str = "!<lsst.daf.base.PropertySet>";

/// A PropertySet as the YAML document Gen2's `YamlStorage` kept: LSST's
/// tag, then a mapping (nested for dotted names, sequences for arrays).
///
/// ```
/// use daf_base::PropertySet;
/// use daf_formatters::property_set_formatter::{property_set_from_yaml, property_set_to_yaml};
/// let mut ps = PropertySet::new();
/// ps.set("exptime", 15.0).unwrap();
/// ps.set("calib.zero", 27).unwrap();
/// let text = property_set_to_yaml(&ps).unwrap();
/// assert!(text.starts_with("!<lsst.daf.base.PropertySet>"));
/// let back = property_set_from_yaml(&text).unwrap();
/// assert_eq!(back.get::<f64>("exptime").unwrap(), 15.0);
/// assert_eq!(back.get_as_i64("calib.zero").unwrap(), 27);
/// ```
pub fn property_set_to_yaml(ps: &PropertySet) -> Result<String> {
    let body = Policy::from_property_set(ps.clone())
        .to_yaml_string()
        .map_err(|e| FormatterError::Invalid {
            persistable: "PropertySet".into(),
            message: e.to_string(),
        })?;
    Ok(format!("{YAML_TAG}\n{body}"))
}

/// Reads the YAML document of [`property_set_to_yaml`] (with or without
/// LSST's tag, or a `!<lsst.daf.base.PropertyList>` one).
pub fn property_set_from_yaml(text: &str) -> Result<PropertySet> {
    let body = text.trim_start();
    let body = [
        "!<lsst.daf.base.PropertySet>",
        "!<lsst.daf.base.PropertyList>",
    ]
    .iter()
    .find_map(|t| body.strip_prefix(t))
    .unwrap_or(body);
    if body.trim().is_empty() {
        return Ok(PropertySet::new());
    }
    let p = Policy::from_yaml_str(body, "YamlStorage").map_err(|e| FormatterError::Invalid {
        persistable: "PropertySet".into(),
        message: e.to_string(),
    })?;
    Ok(p.as_property_set().clone())
}

/// A PropertySet as a pex_config file: one `config.NAME=VALUE` line per
/// value (Python literals: `True`/`False`, numbers, quoted strings, lists).
///
/// ```
/// use daf_base::PropertySet;
/// use daf_formatters::property_set_formatter::{property_set_from_config, property_set_to_config};
/// let mut ps = PropertySet::new();
/// ps.set("doWrite", true).unwrap();
/// ps.set("isr.fwhm", 1.0).unwrap();
/// let text = property_set_to_config(&ps);
/// assert!(text.contains("config.doWrite=True\n") && text.contains("config.isr.fwhm=1.0\n"));
/// let back = property_set_from_config(&text).unwrap();
/// assert_eq!(back.get::<bool>("doWrite").unwrap(), true);
/// ```
pub fn property_set_to_config(ps: &PropertySet) -> String {
    use daf_base::Values;
    let mut out = String::new();
    let mut names = ps.param_names();
    names.sort();
    for name in names {
        let Some(vals) = ps.values(&name) else {
            continue;
        };
        let one = |i: usize| -> String {
            match vals {
                Values::Bool(v) => if v[i] { "True" } else { "False" }.to_string(),
                Values::String(v) => format!("{:?}", v[i]),
                Values::F32(_) | Values::F64(_) => {
                    let f = vals.as_f64_at(i).unwrap_or(f64::NAN);
                    if f.is_finite() {
                        format!("{f:?}")
                    } else {
                        format!("float('{f}')")
                    }
                }
                _ => vals
                    .as_i64_at(i)
                    .map(|n| n.to_string())
                    .or_else(|| vals.text_at(i).map(|t| format!("{t:?}")))
                    .unwrap_or_default(),
            }
        };
        let text = if vals.len() == 1 {
            one(0)
        } else {
            format!(
                "[{}]",
                (0..vals.len()).map(one).collect::<Vec<_>>().join(", ")
            )
        };
        out.push_str(&format!("config.{name}={text}\n"));
    }
    out
}

/// Reads a pex_config file (as `Config.save` wrote it) into a PropertySet:
/// every `config.NAME=VALUE` assignment whose value is a Python literal
/// (`True`, `False`, numbers, quoted strings, lists of these). `None`
/// values are skipped; imports, asserts, comments and method calls
/// (`retarget(...)`) are ignored; any other value is kept as its text.
/// `a['b']` in a name becomes `a.b`.
pub fn property_set_from_config(text: &str) -> Result<PropertySet> {
    let mut ps = PropertySet::new();
    let bad = |m: String| FormatterError::Invalid {
        persistable: "PropertySet".into(),
        message: m,
    };
    let mut pending = String::new();
    for line in text.lines() {
        if pending.is_empty() {
            let l = line.trim();
            if !l.starts_with("config.") || !l.contains('=') {
                continue;
            }
        }
        pending.push_str(line.trim());
        let depth: i64 = pending
            .chars()
            .map(|c| match c {
                '[' | '(' | '{' => 1,
                ']' | ')' | '}' => -1,
                _ => 0,
            })
            .sum();
        if depth > 0 && pending.len() < 1 << 20 {
            continue;
        }
        let stmt = std::mem::take(&mut pending);
        let Some((lhs, rhs)) = stmt.split_once('=') else {
            continue;
        };
        let name = lhs
            .trim()
            .trim_start_matches("config.")
            .replace("['", ".")
            .replace("\"]", "")
            .replace("[\"", ".")
            .replace("']", "");
        if name.is_empty() || name.contains('(') || rhs.trim_start().starts_with('=') {
            continue;
        }
        let set = |ps: &mut PropertySet, v: daf_base::Values| {
            ps.set(&name, v)
                .map_err(|e| bad(format!("config.{name}: {e}")))
        };
        let rhs = rhs.trim();
        match parse_py_literal(rhs) {
            Some(PyLit::None) => {}
            Some(PyLit::List(items)) if items.is_empty() => {}
            Some(PyLit::List(items)) => {
                if items.iter().all(|i| matches!(i, PyLit::Int(_))) {
                    set(
                        &mut ps,
                        items.iter().map(|i| i.as_i64()).collect::<Vec<_>>().into(),
                    )?;
                } else if items
                    .iter()
                    .all(|i| matches!(i, PyLit::Int(_) | PyLit::Float(_)))
                {
                    set(
                        &mut ps,
                        items.iter().map(|i| i.as_f64()).collect::<Vec<_>>().into(),
                    )?;
                } else if items.iter().all(|i| matches!(i, PyLit::Bool(_))) {
                    set(
                        &mut ps,
                        items
                            .iter()
                            .map(|i| matches!(i, PyLit::Bool(true)))
                            .collect::<Vec<_>>()
                            .into(),
                    )?;
                } else {
                    set(
                        &mut ps,
                        items.iter().map(|i| i.text()).collect::<Vec<_>>().into(),
                    )?;
                }
            }
            Some(PyLit::Bool(b)) => set(&mut ps, b.into())?,
            Some(PyLit::Int(i)) => set(&mut ps, i.into())?,
            Some(PyLit::Float(f)) => set(&mut ps, f.into())?,
            Some(PyLit::Str(s)) => set(&mut ps, s.into())?,
            None => set(&mut ps, rhs.to_string().into())?,
        }
    }
    Ok(ps)
}

/// A Python literal of a pex_config file.
#[derive(Debug, Clone, PartialEq)]
enum PyLit {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PyLit>),
}

impl PyLit {
    fn as_i64(&self) -> i64 {
        match self {
            PyLit::Int(i) => *i,
            _ => 0,
        }
    }
    fn as_f64(&self) -> f64 {
        match self {
            PyLit::Int(i) => *i as f64,
            PyLit::Float(f) => *f,
            _ => f64::NAN,
        }
    }
    fn text(&self) -> String {
        match self {
            PyLit::None => "None".into(),
            PyLit::Bool(b) => if *b { "True" } else { "False" }.into(),
            PyLit::Int(i) => i.to_string(),
            PyLit::Float(f) => f.to_string(),
            PyLit::Str(s) => s.clone(),
            PyLit::List(v) => format!("{v:?}"),
        }
    }
}

fn parse_py_literal(s: &str) -> Option<PyLit> {
    let s = s.trim();
    match s {
        "None" => return Some(PyLit::None),
        "True" => return Some(PyLit::Bool(true)),
        "False" => return Some(PyLit::Bool(false)),
        _ => {}
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(PyLit::Int(i));
    }
    if let Ok(f) = s.parse::<f64>() {
        return Some(PyLit::Float(f));
    }
    if let Some(inner) = s.strip_prefix("float('").and_then(|r| r.strip_suffix("')")) {
        return inner.parse::<f64>().ok().map(PyLit::Float);
    }
    for q in ['\'', '"'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return Some(PyLit::Str(unescape_py(&s[1..s.len() - 1])));
        }
    }
    if let Some(inner) = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .or_else(|| s.strip_prefix('(').and_then(|r| r.strip_suffix(')')))
    {
        let mut items = Vec::new();
        for part in split_top_level(inner) {
            if part.trim().is_empty() {
                continue;
            }
            items.push(parse_py_literal(&part)?);
        }
        return Some(PyLit::List(items));
    }
    None
}

fn unescape_py(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// Splits at commas outside quotes and brackets.
fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        if let Some(q) = quote {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                cur.push(c);
            }
            '[' | '(' | '{' => {
                depth += 1;
                cur.push(c);
            }
            ']' | ')' | '}' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}
