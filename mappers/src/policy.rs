//! Mapper policies in the Gen2 CameraMapper layout, from YAML or legacy PAF.
//!
//! A camera policy has top-level settings (`camera`, `levels`,
//! `defaultLevel`, `defaultSubLevels`, `registryPath`, `calibRegistryPath`,
//! `needCalibRegistry`, `calibRoot`) and up to four sections of dataset
//! entries: `images`, `exposures`, `calibrations` and `datasets`.
//!
//! Loading merges it with the defaults the way obs_base did ([`PolicyDefaults`]):
//! each section present in the camera policy is merged with
//! `<defaults>/<section>.yaml` (if that file exists), then each entry with the
//! per-kind defaults (`ImageMappingDefaults.yaml`,
//! `ExposureMappingDefaults.yaml`, `CalibrationMappingDefaults.yaml`; datasets
//! get none). Merging is deep and the camera's values win. A dataset type
//! defined twice (in two sections, or twice in a PAF section) is an error.
//!
//! daf adds three optional top-level sections of its own:
//!
//! * `keyRewrites: {patch: {",": "x"}}` — substitutions applied to a key's
//!   string value before it enters a path (see [`KeyRewrites`]).
//! * `givenKeys: [tract, patch]` — keys that callers always supply and that
//!   are never looked up in a registry. Default: `tract`, `patch`, `subfilter`,
//!   `numSubfilters`, `fgcmcycle` (the keys obs_base templates take from the
//!   caller).
//! * `ingest` — how `daf registry create` builds a registry; see
//!   [`IngestPolicy`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::template::{KeyRewrites, PathTemplate};
use crate::{KeyType, MapperError};

/// Which section a dataset entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// `images`.
    Image,
    /// `exposures`.
    Exposure,
    /// `calibrations`.
    Calibration,
    /// `datasets`.
    Dataset,
}

impl DatasetKind {
    /// The section name.
    pub fn section(self) -> &'static str {
        match self {
            DatasetKind::Image => "images",
            DatasetKind::Exposure => "exposures",
            DatasetKind::Calibration => "calibrations",
            DatasetKind::Dataset => "datasets",
        }
    }
    fn defaults_file(self) -> Option<&'static str> {
        match self {
            DatasetKind::Image => Some("ImageMappingDefaults.yaml"),
            DatasetKind::Exposure => Some("ExposureMappingDefaults.yaml"),
            DatasetKind::Calibration => Some("CalibrationMappingDefaults.yaml"),
            DatasetKind::Dataset => None,
        }
    }
    const ALL: [DatasetKind; 4] = [
        DatasetKind::Image,
        DatasetKind::Exposure,
        DatasetKind::Calibration,
        DatasetKind::Dataset,
    ];
}

/// One merged dataset entry.
#[derive(Debug, Clone)]
pub struct DatasetPolicy {
    /// The dataset type.
    pub name: String,
    /// The section it came from.
    pub kind: DatasetKind,
    /// The parsed template (`None` when absent or empty).
    pub template: Option<PathTemplate>,
    /// `python`, kept as a type name.
    pub python: String,
    /// `persistable` (the formatter-registry name).
    pub persistable: String,
    /// `storage`.
    pub storage: String,
    /// `level`.
    pub level: Option<String>,
    /// `tables`: registry tables, natural-joined.
    pub tables: Vec<String>,
    /// `columns`: the keys used in lookups (all when empty).
    pub columns: Vec<String>,
    /// Calibrations: `reference` tables to look missing keys up in first.
    pub reference: Vec<String>,
    /// Calibrations: `refCols`, the data-id keys used against `reference`.
    pub ref_cols: Vec<String>,
    /// Calibrations: `validRange`.
    pub valid_range: bool,
    /// Calibrations: `validStartName`.
    pub valid_start_name: String,
    /// Calibrations: `validEndName`.
    pub valid_end_name: String,
    /// Calibrations: `obsTimeName`.
    pub obs_time_name: String,
    /// Calibrations: `filter`.
    pub filter: bool,
    /// `composite`, if the entry is a composite dataset.
    pub composite: Option<Value>,
    /// The whole merged entry.
    pub raw: Value,
}

impl DatasetPolicy {
    /// The template's keys and types.
    pub fn key_types(&self) -> BTreeMap<String, KeyType> {
        self.template
            .as_ref()
            .map(|t| t.keys().iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// A conversion applied to a header card's value during ingest (the
/// `convert` of a header rule; see [`crate::ingest::convert`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conversion {
    /// `none`: the card's value as it is (`T`/`F` as 1/0).
    #[default]
    None,
    /// `int`: an integer (numbers truncated, strings parsed).
    Int,
    /// `float`: a real number (strings parsed).
    Float,
    /// `string`: the value as text (`T`/`F` for logical cards).
    String,
    /// `mjdTaiToUtc`: an MJD (TAI) → ISO-8601 UTC text with nanoseconds, no
    /// zone suffix.
    MjdTaiToUtc,
    /// `mjdTaiToTai`: an MJD (TAI) → ISO-8601 TAI text with nanoseconds.
    MjdTaiToTai,
}

impl Conversion {
    /// Every conversion, in the order the documentation lists them.
    pub const ALL: [Conversion; 6] = [
        Conversion::None,
        Conversion::Int,
        Conversion::Float,
        Conversion::String,
        Conversion::MjdTaiToUtc,
        Conversion::MjdTaiToTai,
    ];

    /// The name used in policies and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Conversion::None => "none",
            Conversion::Int => "int",
            Conversion::Float => "float",
            Conversion::String => "string",
            Conversion::MjdTaiToUtc => "mjdTaiToUtc",
            Conversion::MjdTaiToTai => "mjdTaiToTai",
        }
    }
}

impl std::fmt::Display for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Conversion {
    type Err = String;

    /// Parses a conversion name (`none`, `int`, `float`, `string`,
    /// `mjdTaiToUtc`, `mjdTaiToTai`; an empty name is `none`).
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(Conversion::None);
        }
        Conversion::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown conversion {s:?}; use {}",
                    Conversion::ALL.map(Conversion::name).join(", ")
                )
            })
    }
}

/// How one registry key is read from a FITS header during ingest, by
/// `daf registry create` and `daf ingest` alike.
///
/// ```
/// use daf_mappers::policy::{Conversion, HeaderRule};
/// let r: HeaderRule = "MJD-OBS:mjdTaiToUtc".parse().unwrap();
/// assert_eq!(r, HeaderRule { header: "MJD-OBS".into(), convert: Conversion::MjdTaiToUtc });
/// assert_eq!("FILTER".parse::<HeaderRule>().unwrap(), HeaderRule::card("FILTER"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderRule {
    /// The header keyword.
    pub header: String,
    /// The conversion of its value.
    pub convert: Conversion,
}

impl HeaderRule {
    /// The card `header`, value taken as it is.
    pub fn card(header: impl Into<String>) -> Self {
        HeaderRule {
            header: header.into(),
            convert: Conversion::None,
        }
    }
}

impl std::str::FromStr for HeaderRule {
    type Err = String;

    /// Parses `CARD` or `CARD:CONVERSION` (the command line's form).
    fn from_str(s: &str) -> Result<Self, String> {
        let (card, conv) = match s.rsplit_once(':') {
            Some((c, v)) => (c.trim(), v.trim().parse()?),
            None => (s.trim(), Conversion::None),
        };
        if card.is_empty() {
            return Err(format!("{s:?}: no header card"));
        }
        Ok(HeaderRule {
            header: card.to_string(),
            convert: conv,
        })
    }
}

/// The `ingest` section: how `daf registry create` fills a registry.
///
/// ```yaml
/// ingest:
///   table: raw                      # default raw
///   template: raw/raw_v%(visit)d_f%(filter)s.fits.gz  # default: the raw template
///   unique: [visit]                 # default: the template's keys
///   visitTable: raw_visit           # optional: distinct per-visit rows
///   visitKeys: [visit, filter, taiObs, expTime]
///   headerKeys:
///     filter: FILTER
///     expTime: EXPTIME
///     taiObs: {header: MJD-OBS, convert: mjdTaiToUtc}
/// ```
///
/// Keys come from the file path (parsed with the template) first, then from
/// the header rules. `daf ingest` applies the same header rules (every key
/// from the header, since ingested files may have any name), so that a key
/// gets the same value through either command.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IngestPolicy {
    /// Registry table for the files.
    pub table: String,
    /// Template the file paths are parsed with.
    pub template: Option<String>,
    /// Columns of the unique index.
    pub unique: Vec<String>,
    /// Optional per-visit table.
    pub visit_table: Option<String>,
    /// Keys of the per-visit table.
    pub visit_keys: Vec<String>,
    /// key → header rule, in policy order.
    pub header_keys: Vec<(String, HeaderRule)>,
}

/// A merged mapper policy.
#[derive(Debug, Clone)]
pub struct MapperPolicy {
    /// Where it came from (for messages).
    pub source: String,
    /// `camera`.
    pub camera: Option<String>,
    /// The camera description (its detectors), loaded by
    /// [`MapperPolicy::load`] from the YAML file `camera` names (relative to
    /// the policy file; a folder means its `camera.yaml`), else from a
    /// `camera.yaml` beside the policy file. `None` when there is none, or
    /// `camera` names a Gen2 description daf cannot read (`camera.py`).
    pub camera_description: Option<daf_base::Camera>,
    /// `levels`: level → keys removed by `get_keys`.
    pub levels: BTreeMap<String, Vec<String>>,
    /// `defaultLevel`.
    pub default_level: Option<String>,
    /// `defaultSubLevels`.
    pub default_sub_levels: BTreeMap<String, String>,
    /// `registryPath`.
    pub registry_path: Option<String>,
    /// `calibRegistryPath`.
    pub calib_registry_path: Option<String>,
    /// `needCalibRegistry`.
    pub need_calib_registry: bool,
    /// `calibRoot`.
    pub calib_root: Option<String>,
    /// `givenKeys`.
    pub given_keys: Vec<String>,
    /// `keyRewrites`.
    pub key_rewrites: KeyRewrites,
    /// `ingest`.
    pub ingest: Option<IngestPolicy>,
    /// Every dataset entry, by type.
    pub datasets: BTreeMap<String, DatasetPolicy>,
}

/// The obs_base-style defaults a camera policy is merged with.
#[derive(Debug, Clone, Default)]
pub struct PolicyDefaults {
    sections: BTreeMap<&'static str, Mapping>,
    kinds: BTreeMap<&'static str, Mapping>,
}

fn load_yaml_file(path: &Path) -> Result<Value, MapperError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| MapperError::Policy(format!("{}: {e}", path.display())))?;
    serde_norway::from_str(&text)
        .map_err(|e| MapperError::Policy(daf_base::yaml_error_in(&e, &path.display().to_string())))
}

fn as_mapping(v: Value, what: &str) -> Result<Mapping, MapperError> {
    match v {
        Value::Mapping(m) => Ok(m),
        Value::Null => Ok(Mapping::new()),
        other => Err(MapperError::Policy(format!(
            "{what}: expected a mapping, found {}",
            type_name(&other)
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl PolicyDefaults {
    /// No defaults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Loads `<dir>/<section>.yaml` and `<dir>/*MappingDefaults.yaml`, each
    /// only if present.
    pub fn load_dir(dir: &Path) -> Result<Self, MapperError> {
        if !dir.is_dir() {
            return Err(MapperError::Policy(format!(
                "{}: defaults folder not found",
                dir.display()
            )));
        }
        let mut d = PolicyDefaults::default();
        for kind in DatasetKind::ALL {
            let p = dir.join(format!("{}.yaml", kind.section()));
            if p.is_file() {
                let m = as_mapping(load_yaml_file(&p)?, &p.display().to_string())?;
                d.sections.insert(kind.section(), m);
            }
            if let Some(f) = kind.defaults_file() {
                let p = dir.join(f);
                if p.is_file() {
                    let m = as_mapping(load_yaml_file(&p)?, &p.display().to_string())?;
                    d.kinds.insert(kind.section(), m);
                }
            }
        }
        Ok(d)
    }
}

/// Deep merge: entries of `defaults` are added to `target` where missing;
/// values already in `target` win.
pub fn merge_defaults(target: &mut Value, defaults: &Value) {
    if let (Value::Mapping(t), Value::Mapping(d)) = (target, defaults) {
        for (k, dv) in d {
            match t.get_mut(k) {
                Some(tv) => merge_defaults(tv, dv),
                None => {
                    t.insert(k.clone(), dv.clone());
                }
            }
        }
    }
}

struct Ctx<'a> {
    source: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: &str, m: impl std::fmt::Display) -> MapperError {
        MapperError::Policy(format!("{}: key {key}: {m}", self.source))
    }

    fn string(&self, v: Option<&Value>, key: &str) -> Result<Option<String>, MapperError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(self.err(
                key,
                format!("expected a string, found {}", type_name(other)),
            )),
        }
    }

    fn strings(&self, v: Option<&Value>, key: &str) -> Result<Vec<String>, MapperError> {
        match v {
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    self.string(Some(x), &format!("{key}[{i}]"))
                        .map(|s| s.unwrap_or_default())
                })
                .collect(),
            other => Ok(self.string(other, key)?.into_iter().collect()),
        }
    }

    fn boolean(&self, v: Option<&Value>, key: &str, default: bool) -> Result<bool, MapperError> {
        match v {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(other) => Err(self.err(
                key,
                format!("expected true or false, found {}", type_name(other)),
            )),
        }
    }

    fn mapping<'v>(
        &self,
        v: Option<&'v Value>,
        key: &str,
    ) -> Result<Option<&'v Mapping>, MapperError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Mapping(m)) => Ok(Some(m)),
            Some(other) => Err(self.err(
                key,
                format!("expected a mapping, found {}", type_name(other)),
            )),
        }
    }
}

fn key_str(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => format!("{k:?}"),
    }
}

/// A policy loading error as a mapper error; its text keeps the file name
/// and line that [`daf_base::policy::PolicyError`] carries.
fn policy_error(e: daf_base::policy::PolicyError) -> MapperError {
    MapperError::Policy(e.to_string())
}

/// The camera description of the policy file `policy` (see
/// [`MapperPolicy::camera_description`]). A YAML file that is named or
/// found but does not parse is an error.
fn load_camera(
    policy: &Path,
    named: Option<&str>,
) -> Result<Option<daf_base::Camera>, MapperError> {
    let dir = policy.parent().unwrap_or(Path::new("."));
    let candidate = match named {
        Some(n) => {
            let p = dir.join(n);
            if p.is_dir() {
                p.join("camera.yaml")
            } else {
                p
            }
        }
        None => dir.join("camera.yaml"),
    };
    let is_yaml = matches!(
        candidate.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    );
    if !is_yaml || !candidate.is_file() {
        if named.is_some() {
            tracing::debug!(
                camera = %candidate.display(),
                "the policy's camera is not a daf camera description (YAML); detectors come from headers and data ids"
            );
        }
        return Ok(None);
    }
    let cam = daf_base::Camera::load(&candidate).map_err(MapperError::Policy)?;
    tracing::debug!(camera = %candidate.display(), detectors = cam.detectors.len(), "camera description loaded");
    Ok(Some(cam))
}

/// Default `givenKeys`.
pub const DEFAULT_GIVEN_KEYS: [&str; 5] =
    ["tract", "patch", "subfilter", "numSubfilters", "fgcmcycle"];

impl MapperPolicy {
    /// Loads a camera policy (`.yaml`/`.yml` or `.paf`) and merges it with
    /// the defaults in `defaults_dir`; without one, a folder `obs_base/` next
    /// to the policy file is used if it exists.
    pub fn load(path: &Path, defaults_dir: Option<&Path>) -> Result<Self, MapperError> {
        let source = path.display().to_string();
        let tree = match path.extension().and_then(|e| e.to_str()) {
            Some("paf") => {
                let policy = daf_base::Policy::load(path).map_err(policy_error)?;
                Self::tree_from_policy(&policy, &source)?
            }
            Some("yaml") | Some("yml") => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| MapperError::Policy(format!("{source}: {e}")))?;
                serde_norway::from_str(&text)
                    .map_err(|e| MapperError::Policy(daf_base::yaml_error_in(&e, &source)))?
            }
            _ => {
                return Err(MapperError::Policy(format!(
                    "{source}: unknown policy format (expected .yaml, .yml or .paf)"
                )))
            }
        };
        let dir: Option<PathBuf> = match defaults_dir {
            Some(d) => Some(d.to_path_buf()),
            None => path
                .parent()
                .map(|p| p.join("obs_base"))
                .filter(|p| p.is_dir()),
        };
        let defaults = match dir {
            Some(d) => PolicyDefaults::load_dir(&d)?,
            None => PolicyDefaults::none(),
        };
        let mut policy = Self::from_value(tree, &source, &defaults)?;
        policy.camera_description = load_camera(path, policy.camera.as_deref())?;
        Ok(policy)
    }

    /// Parses YAML text (no defaults directory lookup).
    pub fn from_yaml_str(
        text: &str,
        source: &str,
        defaults: &PolicyDefaults,
    ) -> Result<Self, MapperError> {
        let tree = serde_norway::from_str(text)
            .map_err(|e| MapperError::Policy(daf_base::yaml_error_in(&e, source)))?;
        Self::from_value(tree, source, defaults)
    }

    /// Parses PAF text with [`daf_base::Policy::from_paf_str`] (no defaults
    /// directory lookup; `@file` includes resolve against the current
    /// directory). Syntax errors name `source` and the line.
    pub fn from_paf_str(
        text: &str,
        source: &str,
        defaults: &PolicyDefaults,
    ) -> Result<Self, MapperError> {
        let policy = daf_base::Policy::from_paf_str(text, source).map_err(policy_error)?;
        let tree = Self::tree_from_policy(&policy, source)?;
        Self::from_value(tree, source, defaults)
    }

    /// The tree [`MapperPolicy::from_value`] reads, built from a loaded
    /// [`daf_base::Policy`] (as from a PAF file): sub-policies become
    /// mappings, a name with one value a scalar, a name with several values
    /// (PAF's repeated names) a sequence. Names without values are absent.
    ///
    /// ```
    /// use daf_mappers::MapperPolicy;
    /// let p = daf_base::Policy::from_paf_str("a: {\n  b: \"x\"\n  b: y\n  n: 3\n}\n", "t.paf").unwrap();
    /// let v = MapperPolicy::tree_from_policy(&p, "t.paf").unwrap();
    /// assert_eq!(v["a"]["b"][1].as_str(), Some("y"));
    /// assert_eq!(v["a"]["n"].as_i64(), Some(3));
    /// ```
    pub fn tree_from_policy(policy: &daf_base::Policy, source: &str) -> Result<Value, MapperError> {
        // The YAML writer is the one place that spells a policy as a
        // serde_norway tree; reading its output back gives that tree.
        let text = policy
            .to_yaml_string()
            .map_err(|e| MapperError::Policy(format!("{source}: {e}")))?;
        // Lines of the generated text mean nothing to the user.
        serde_norway::from_str(&text).map_err(|e| {
            MapperError::Policy(format!("{source}: {}", daf_base::yaml_error_text(&e)))
        })
    }

    /// Builds a policy from a parsed tree.
    pub fn from_value(
        tree: Value,
        source: &str,
        defaults: &PolicyDefaults,
    ) -> Result<Self, MapperError> {
        let cx = Ctx { source };
        let top = as_mapping(tree, source)?;
        let get = |k: &str| top.get(k);
        let mut levels = BTreeMap::new();
        if let Some(m) = cx.mapping(get("levels"), "levels")? {
            for (k, v) in m {
                let k = key_str(k);
                levels.insert(k.clone(), cx.strings(Some(v), &format!("levels.{k}"))?);
            }
        }
        let mut default_sub_levels = BTreeMap::new();
        if let Some(m) = cx.mapping(get("defaultSubLevels"), "defaultSubLevels")? {
            for (k, v) in m {
                let k = key_str(k);
                let s = cx.string(Some(v), &format!("defaultSubLevels.{k}"))?;
                default_sub_levels.insert(k, s.unwrap_or_default());
            }
        }
        let mut key_rewrites = KeyRewrites::default();
        if let Some(m) = cx.mapping(get("keyRewrites"), "keyRewrites")? {
            for (k, v) in m {
                let k = key_str(k);
                let rules = cx
                    .mapping(Some(v), &format!("keyRewrites.{k}"))?
                    .map(|r| {
                        r.iter()
                            .map(|(from, to)| {
                                cx.string(Some(to), &format!("keyRewrites.{k}.{}", key_str(from)))
                                    .map(|t| (key_str(from), t.unwrap_or_default()))
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                key_rewrites.0.insert(k, rules);
            }
        }
        let given_keys = match get("givenKeys") {
            Some(v) => cx.strings(Some(v), "givenKeys")?,
            None => DEFAULT_GIVEN_KEYS.iter().map(|s| s.to_string()).collect(),
        };
        let ingest = match cx.mapping(get("ingest"), "ingest")? {
            None => None,
            Some(m) => Some(parse_ingest(&cx, m)?),
        };

        let mut datasets: BTreeMap<String, DatasetPolicy> = BTreeMap::new();
        for kind in DatasetKind::ALL {
            let section = kind.section();
            let Some(v) = get(section) else { continue };
            let mut sec =
                Value::Mapping(cx.mapping(Some(v), section)?.cloned().unwrap_or_default());
            if let Some(d) = defaults.sections.get(section) {
                merge_defaults(&mut sec, &Value::Mapping(d.clone()));
            }
            let Value::Mapping(sec) = sec else { continue };
            for (name, entry) in sec {
                let name = key_str(&name);
                let path = format!("{section}.{name}");
                if matches!(entry, Value::Sequence(_)) {
                    return Err(cx.err(&path, "dataset type defined twice"));
                }
                let mut entry = Value::Mapping(
                    cx.mapping(Some(&entry), &path)?
                        .cloned()
                        .unwrap_or_default(),
                );
                if let Some(d) = defaults.kinds.get(section) {
                    merge_defaults(&mut entry, &Value::Mapping(d.clone()));
                }
                if let Some(prev) = datasets.get(&name) {
                    return Err(cx.err(
                        &path,
                        format!(
                            "dataset type {name:?} defined twice (also in {})",
                            prev.kind.section()
                        ),
                    ));
                }
                let ds = parse_dataset(&cx, &name, kind, entry)?;
                datasets.insert(name, ds);
            }
        }
        Ok(MapperPolicy {
            source: source.to_string(),
            camera: cx.string(get("camera"), "camera")?,
            camera_description: None,
            levels,
            default_level: cx.string(get("defaultLevel"), "defaultLevel")?,
            default_sub_levels,
            registry_path: cx.string(get("registryPath"), "registryPath")?,
            calib_registry_path: cx.string(get("calibRegistryPath"), "calibRegistryPath")?,
            need_calib_registry: cx.boolean(
                get("needCalibRegistry"),
                "needCalibRegistry",
                false,
            )?,
            calib_root: cx.string(get("calibRoot"), "calibRoot")?,
            given_keys,
            key_rewrites,
            ingest,
            datasets,
        })
    }

    /// The union of every template's keys (LSST `mapper.keys()`).
    pub fn all_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .datasets
            .values()
            .flat_map(|d| d.key_types().into_keys())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

fn parse_dataset(
    cx: &Ctx<'_>,
    name: &str,
    kind: DatasetKind,
    entry: Value,
) -> Result<DatasetPolicy, MapperError> {
    let path = format!("{}.{name}", kind.section());
    let m = match &entry {
        Value::Mapping(m) => m,
        _ => return Err(cx.err(&path, "expected a mapping")),
    };
    let get = |k: &str| m.get(k);
    let s = |k: &str| cx.string(get(k), &format!("{path}.{k}"));
    let list = |k: &str| cx.strings(get(k), &format!("{path}.{k}"));
    let template = match s("template")? {
        None => None,
        Some(t) if t.is_empty() => None,
        Some(t) => {
            Some(PathTemplate::parse(&t).map_err(|e| cx.err(&format!("{path}.template"), e))?)
        }
    };
    Ok(DatasetPolicy {
        name: name.to_string(),
        kind,
        template,
        python: s("python")?.unwrap_or_default(),
        persistable: s("persistable")?.unwrap_or_default(),
        storage: s("storage")?.unwrap_or_default(),
        level: s("level")?,
        tables: list("tables")?,
        columns: list("columns")?,
        reference: list("reference")?,
        ref_cols: list("refCols")?,
        valid_range: cx.boolean(get("validRange"), &format!("{path}.validRange"), false)?,
        valid_start_name: s("validStartName")?.unwrap_or_else(|| "validStart".into()),
        valid_end_name: s("validEndName")?.unwrap_or_else(|| "validEnd".into()),
        obs_time_name: s("obsTimeName")?.unwrap_or_else(|| "taiObs".into()),
        filter: cx.boolean(get("filter"), &format!("{path}.filter"), false)?,
        composite: get("composite").cloned(),
        raw: entry.clone(),
    })
}

fn parse_ingest(cx: &Ctx<'_>, m: &Mapping) -> Result<IngestPolicy, MapperError> {
    let get = |k: &str| m.get(k);
    let mut header_keys = Vec::new();
    if let Some(h) = cx.mapping(get("headerKeys"), "ingest.headerKeys")? {
        for (k, v) in h {
            let k = key_str(k);
            let path = format!("ingest.headerKeys.{k}");
            let rule = match v {
                Value::Mapping(r) => {
                    let convert = cx
                        .string(r.get("convert"), &format!("{path}.convert"))?
                        .unwrap_or_default();
                    HeaderRule {
                        header: cx
                            .string(r.get("header"), &format!("{path}.header"))?
                            .ok_or_else(|| cx.err(&path, "missing header"))?,
                        convert: convert
                            .parse()
                            .map_err(|m| cx.err(&format!("{path}.convert"), m))?,
                    }
                }
                other => HeaderRule::card(cx.string(Some(other), &path)?.unwrap_or_default()),
            };
            header_keys.push((k, rule));
        }
    }
    Ok(IngestPolicy {
        table: cx
            .string(get("table"), "ingest.table")?
            .unwrap_or_else(|| "raw".into()),
        template: cx.string(get("template"), "ingest.template")?,
        unique: cx.strings(get("unique"), "ingest.unique")?,
        visit_table: cx.string(get("visitTable"), "ingest.visitTable")?,
        visit_keys: cx.strings(get("visitKeys"), "ingest.visitKeys")?,
        header_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paf_errors_name_file_and_line() {
        let none = PolicyDefaults::none();
        let e = MapperPolicy::from_paf_str("a: 1\n}\n", "x.paf", &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.paf:2:"), "{e}");
        let e = MapperPolicy::from_paf_str("a: \"open\n", "x.paf", &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.paf:1:"), "{e}");
        let e = MapperPolicy::from_paf_str("a: 1\n\njunk\n", "x.paf", &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.paf:3:"), "{e}");
    }

    #[test]
    fn paf_type_errors_name_the_key_path() {
        let none = PolicyDefaults::none();
        let e = MapperPolicy::from_paf_str("levels: 3\n", "x.paf", &none)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "mapper policy: x.paf: key levels: expected a mapping, found a number"
        );
    }

    #[test]
    fn paf_dataset_defined_twice_is_an_error() {
        let none = PolicyDefaults::none();
        let text = "exposures: {\n  raw: {\n    template: \"a\"\n  }\n  raw: {\n    template: \"b\"\n  }\n}\n";
        let e = MapperPolicy::from_paf_str(text, "x.paf", &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.paf") && e.contains("defined twice"), "{e}");
    }

    #[test]
    fn paf_tree_types_values_and_repeated_names() {
        let p = daf_base::Policy::from_paf_str(
            "a: {\n  b: \"x\"\n  b: y\n  n: 3\n  r: 2.5\n  t: true\n}\nc: 1 2\n",
            "t.paf",
        )
        .unwrap();
        let v = MapperPolicy::tree_from_policy(&p, "t.paf").unwrap();
        assert_eq!(v["a"]["b"][0].as_str(), Some("x"));
        assert_eq!(v["a"]["b"][1].as_str(), Some("y"));
        assert_eq!(v["a"]["n"].as_i64(), Some(3));
        assert_eq!(v["a"]["r"].as_f64(), Some(2.5));
        assert_eq!(v["a"]["t"].as_bool(), Some(true));
        assert_eq!(v["c"][1].as_i64(), Some(2));
    }

    #[test]
    fn load_paf_file_reports_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.paf");
        std::fs::write(&path, "camera: \"x\"\n}\n").unwrap();
        let e = MapperPolicy::load(&path, None).unwrap_err().to_string();
        assert!(e.contains(&format!("{}:2:", path.display())), "{e}");
    }
}
