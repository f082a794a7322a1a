//! `daf convert` and the Boost side of `daf show`: PropertySet archives
//! (Boost binary, text, XML) to and from YAML/JSON.
//!
//! The YAML/JSON form maps every dotted name to its type and value(s):
//!
//! ```yaml
//! ra:
//!   type: f64
//!   value: 10.5
//! arr:
//!   type: i32
//!   value: [1, 2, 3]
//! ```
//!
//! Types are [`daf_base::PropertyType`] names (`bool`, `i8` … `u64`, `f32`,
//! `f64`, `String`, `DateTime`); DateTimes are ISO-8601 UTC strings. A
//! `cpp` key keeps the C++ type where one Rust type stands for two
//! ([`daf_base::NativeType`]: `cpp: long` for LSST's type code `l`,
//! `signed char` for `y`, `unsigned long` for `L`), so that every type code
//! survives a conversion, through YAML/JSON too:
//!
//! ```yaml
//! visit:
//!   type: i64
//!   cpp: long
//!   value: 903334
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use daf_base::{DateTime, NativeType, PropertySet, PropertyType, Timescale, Values};
use daf_storages::atomic::AtomicFile;
use daf_storages::boost::property_set::{
    load_legacy_property_set, load_property_set, save_property_set, LegacyLayout, PropertySetLayout,
};
use daf_storages::boost::{
    library_version_for, ArchiveKind, IArchive, OArchive, DEFAULT_VERSION, WRITE_VERSIONS,
};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};

use super::CliError;

/// The NVP name of the PropertySet in LSST's archives.
const ROOT: &str = "propertySet";

/// Output or input formats of `daf convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// YAML document (type and values per name).
    Yaml,
    /// JSON document (type and values per name).
    Json,
    /// Boost binary archive.
    Binary,
    /// Boost text archive.
    Text,
    /// Boost XML archive.
    Xml,
}

/// Arguments of `daf convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The input: a PropertySet archive (binary, text or XML; detected) or a
    /// YAML/JSON document (by extension .yaml/.yml/.json).
    pub input: PathBuf,
    /// The output; its format comes from --to, else from its extension
    /// (.yaml/.yml, .json, .xml, .txt/.text; anything else is binary).
    pub output: PathBuf,
    /// The output format (overrides the extension).
    #[arg(long, value_enum)]
    pub to: Option<Format>,
    /// The Boost version written: a release (1.74, 1.81) or an archive
    /// library version (18, 19). Default: the input archive's version
    /// (18, Boost 1.74, for YAML/JSON input).
    #[arg(long, value_name = "VERSION")]
    pub boost_version: Option<String>,
    /// Write a 4-byte `int` item count instead of LSST's `size_t`.
    #[arg(long)]
    pub int_count: bool,
    /// Write the Persistable base untracked (LSST's programs tracked it).
    #[arg(long)]
    pub untracked_base: bool,
}

/// What was read from a PropertySet archive.
#[derive(Debug, Clone)]
pub struct ArchiveInfo {
    /// The archive kind.
    pub kind: ArchiveKind,
    /// The archive library version.
    pub version: u16,
}

/// Reads a PropertySet archive of any kind (detected), trying LSST's
/// `size_t` item count first and an `int` count second (binary only).
pub fn read_property_set_archive(bytes: &[u8]) -> Result<(PropertySet, ArchiveInfo), CliError> {
    let read =
        |layout: PropertySetLayout| -> daf_storages::boost::Result<(PropertySet, ArchiveInfo)> {
            let mut ar = IArchive::new(bytes)?;
            let info = ArchiveInfo {
                kind: ar.kind(),
                version: ar.library_version(),
            };
            let ps = load_property_set(&mut ar, ROOT, &layout)?;
            ar.finish()?;
            Ok((ps, info))
        };
    let lsst = PropertySetLayout::default();
    match read(lsst) {
        Ok(r) => Ok(r),
        Err(first) => {
            let int = PropertySetLayout {
                nitems_size_t: false,
                ..lsst
            };
            if ArchiveKind::detect(bytes) == Some(ArchiveKind::Binary) {
                if let Ok(r) = read(int) {
                    return Ok(r);
                }
            }
            for legacy in [LegacyLayout::Names, LegacyLayout::DataProperty] {
                let r = (|| -> daf_storages::boost::Result<(PropertySet, ArchiveInfo)> {
                    let mut ar = IArchive::new(bytes)?;
                    let info = ArchiveInfo {
                        kind: ar.kind(),
                        version: ar.library_version(),
                    };
                    let ps = load_legacy_property_set(&mut ar, ROOT, legacy)?;
                    ar.finish()?;
                    Ok((ps, info))
                })();
                if let Ok(r) = r {
                    return Ok(r);
                }
            }
            Err(CliError::new(format!(
                "not a readable PropertySet archive: {first}"
            )))
        }
    }
}

fn num_f64(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        json!(x.to_string())
    }
}

fn num_f32(x: f32) -> Value {
    if x.is_finite() {
        // Shortest decimal that reads back as the same f32.
        serde_json::from_str(&format!("{x:?}")).unwrap_or_else(|_| json!(x as f64))
    } else {
        json!(x.to_string())
    }
}

/// The YAML/JSON document of a PropertySet: `(dotted name, {type, value})`
/// in the set's order (which is the archive order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document(pub Vec<(String, Value)>);

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Document {
    /// Parses YAML or JSON text, keeping the order of the names.
    pub fn parse(text: &str) -> Result<Document, CliError> {
        let v: serde_norway::Value = serde_norway::from_str(text)?;
        let map = v.as_mapping().ok_or_else(|| {
            CliError::new("the document must be a mapping of names to {type, value}")
        })?;
        let mut out = Vec::new();
        for (k, v) in map {
            let k = k
                .as_str()
                .ok_or_else(|| CliError::new("names must be strings"))?
                .to_string();
            out.push((k, serde_json::to_value(v)?));
        }
        Ok(Document(out))
    }
}

/// The YAML/JSON document of a PropertySet (leaves only, dotted names).
pub fn to_document(ps: &PropertySet) -> Document {
    let mut doc = Vec::new();
    for name in ps.param_names() {
        let v = ps.values(&name).expect("listed");
        let items: Vec<Value> = match v {
            Values::Bool(x) => x.iter().map(|b| json!(b)).collect(),
            Values::I8(x) => x.iter().map(|b| json!(b)).collect(),
            Values::U8(x) => x.iter().map(|b| json!(b)).collect(),
            Values::I16(x) => x.iter().map(|b| json!(b)).collect(),
            Values::U16(x) => x.iter().map(|b| json!(b)).collect(),
            Values::I32(x) => x.iter().map(|b| json!(b)).collect(),
            Values::U32(x) => x.iter().map(|b| json!(b)).collect(),
            Values::I64(x) => x.iter().map(|b| json!(b)).collect(),
            Values::U64(x) => x.iter().map(|b| json!(b)).collect(),
            Values::F32(x) => x.iter().map(|b| num_f32(*b)).collect(),
            Values::F64(x) => x.iter().map(|b| num_f64(*b)).collect(),
            Values::String(x) => x.iter().map(|b| json!(b)).collect(),
            Values::DateTime(x) => x.iter().map(|d| json!(d.to_iso(Timescale::Utc))).collect(),
            Values::PropertySet(_) => continue,
        };
        let value = if items.len() == 1 {
            items.into_iter().next().expect("one")
        } else {
            Value::Array(items)
        };
        let entry = match ps.native_type(&name) {
            Some(t) => {
                json!({"type": v.property_type().name(), "cpp": t.cpp_name(), "value": value})
            }
            None => json!({"type": v.property_type().name(), "value": value}),
        };
        doc.push((name, entry));
    }
    Document(doc)
}

fn bad(name: &str, msg: impl std::fmt::Display) -> CliError {
    CliError::new(format!("{name}: {msg}"))
}

fn float_of(name: &str, v: &Value) -> Result<f64, CliError> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| bad(name, "not a number")),
        Value::String(s) => match s.as_str() {
            "nan" | "NaN" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| bad(name, format!("{other:?} is not a number"))),
        },
        _ => Err(bad(name, "not a number")),
    }
}

fn ints<T: TryFrom<i128>>(name: &str, items: &[Value]) -> Result<Vec<T>, CliError> {
    items
        .iter()
        .map(|v| {
            let i: i128 = if let Some(u) = v.as_u64() {
                u as i128
            } else if let Some(i) = v.as_i64() {
                i as i128
            } else {
                return Err(bad(name, format!("{v} is not an integer")));
            };
            T::try_from(i).map_err(|_| bad(name, format!("{i} is out of range")))
        })
        .collect()
}

/// Parses the YAML/JSON document form back into a PropertySet.
pub fn from_document(doc: &Document) -> Result<PropertySet, CliError> {
    let mut ps = PropertySet::new();
    for (name, entry) in &doc.0 {
        let ty = entry
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(name, "missing type"))?;
        let ty =
            PropertyType::from_name(ty).ok_or_else(|| bad(name, format!("unknown type {ty:?}")))?;
        let value = entry
            .get("value")
            .ok_or_else(|| bad(name, "missing value"))?;
        let items: Vec<Value> = match value {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        if items.is_empty() {
            return Err(bad(name, "no values"));
        }
        let values: Values = match ty {
            PropertyType::Bool => items
                .iter()
                .map(|v| {
                    v.as_bool()
                        .ok_or_else(|| bad(name, format!("{v} is not a bool")))
                })
                .collect::<Result<Vec<_>, _>>()?
                .into(),
            PropertyType::I8 => ints::<i8>(name, &items)?.into(),
            PropertyType::U8 => ints::<u8>(name, &items)?.into(),
            PropertyType::I16 => ints::<i16>(name, &items)?.into(),
            PropertyType::U16 => ints::<u16>(name, &items)?.into(),
            PropertyType::I32 => ints::<i32>(name, &items)?.into(),
            PropertyType::U32 => ints::<u32>(name, &items)?.into(),
            PropertyType::I64 => ints::<i64>(name, &items)?.into(),
            PropertyType::U64 => ints::<u64>(name, &items)?.into(),
            PropertyType::F32 => items
                .iter()
                .map(|v| float_of(name, v).map(|x| x as f32))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
            PropertyType::F64 => items
                .iter()
                .map(|v| float_of(name, v))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
            PropertyType::String => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(name, format!("{v} is not a string")))
                })
                .collect::<Result<Vec<_>, _>>()?
                .into(),
            PropertyType::DateTime => Values::DateTime(
                items
                    .iter()
                    .map(|v| {
                        let s = v
                            .as_str()
                            .ok_or_else(|| bad(name, format!("{v} is not an ISO date")))?;
                        DateTime::parse_iso(s, Timescale::Utc).map_err(|e| bad(name, e))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            PropertyType::PropertySet => {
                return Err(bad(name, "nested sets are written as dotted names"))
            }
        };
        ps.set(name, values).map_err(|e| bad(name, e))?;
        if let Some(cpp) = entry.get("cpp") {
            let t = cpp
                .as_str()
                .and_then(NativeType::from_cpp_name)
                .ok_or_else(|| bad(name, format!("unknown C++ type {cpp}")))?;
            ps.set_native_type(name, t).map_err(|e| bad(name, e))?;
        }
    }
    Ok(ps)
}

fn is_document(path: &Path) -> Option<Format> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("yaml" | "yml") => Some(Format::Yaml),
        Some("json") => Some(Format::Json),
        _ => None,
    }
}

fn format_for_output(path: &Path) -> Format {
    if let Some(f) = is_document(path) {
        return f;
    }
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("xml") => Format::Xml,
        Some("txt" | "text") => Format::Text,
        _ => Format::Binary,
    }
}

/// Renders the document as YAML or JSON text.
pub fn render(doc: &Document, json: bool) -> Result<String, CliError> {
    if json {
        Ok(serde_json::to_string_pretty(doc)? + "\n")
    } else {
        Ok(serde_norway::to_string(doc)?)
    }
}

/// `daf show` for a Boost archive.
pub fn show_archive(path: &Path, bytes: &[u8], json: bool) -> Result<(), CliError> {
    let (ps, info) = read_property_set_archive(bytes)
        .map_err(|e| CliError::new(format!("{}: {}", path.display(), e.message)))?;
    let doc = to_document(&ps);
    let mut out = std::io::stdout().lock();
    if !json {
        writeln!(
            out,
            "# {}: PropertySet, Boost {} archive, library version {}",
            path.display(),
            info.kind,
            info.version
        )?;
    }
    out.write_all(render(&doc, json)?.as_bytes())?;
    Ok(())
}

/// Runs `daf convert`.
pub fn run_convert(args: ConvertArgs) -> Result<(), CliError> {
    let bytes = std::fs::read(&args.input)
        .map_err(|e| CliError::new(format!("{}: {e}", args.input.display())))?;
    let (ps, in_version) = match is_document(&args.input) {
        Some(_) => {
            let text =
                String::from_utf8(bytes).map_err(|_| CliError::new("the document is not UTF-8"))?;
            let doc = Document::parse(&text)
                .map_err(|e| CliError::new(format!("{}: {}", args.input.display(), e.message)))?;
            (from_document(&doc)?, None)
        }
        None => {
            let (ps, info) = read_property_set_archive(&bytes)
                .map_err(|e| CliError::new(format!("{}: {}", args.input.display(), e.message)))?;
            (ps, Some(info.version))
        }
    };
    let version = match &args.boost_version {
        Some(v) => library_version_for(v)
            .filter(|lv| WRITE_VERSIONS.contains(lv))
            .ok_or_else(|| {
                CliError::new(format!(
                    "--boost-version {v}: daf writes Boost 1.74 (18) and 1.81 (19)"
                ))
            })?,
        None => in_version
            .filter(|v| WRITE_VERSIONS.contains(v))
            .unwrap_or(DEFAULT_VERSION),
    };
    let format = args.to.unwrap_or_else(|| format_for_output(&args.output));
    let layout = PropertySetLayout {
        nitems_size_t: !args.int_count,
        persistable_tracked: !args.untracked_base,
    };
    let out_bytes = match format {
        Format::Yaml | Format::Json => {
            render(&to_document(&ps), format == Format::Json)?.into_bytes()
        }
        Format::Binary | Format::Text | Format::Xml => {
            let kind = match format {
                Format::Binary => ArchiveKind::Binary,
                Format::Text => ArchiveKind::Text,
                _ => ArchiveKind::Xml,
            };
            OArchive::to_bytes(kind, version, |ar| {
                save_property_set(ar, ROOT, &ps, &layout)
            })?
        }
    };
    let mut f = AtomicFile::create(&args.output)?;
    f.write_all(&out_bytes)
        .map_err(|e| CliError::new(format!("{}: {e}", args.output.display())))?;
    f.commit()?;
    Ok(())
}
