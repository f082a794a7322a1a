//! Policy dictionaries: definitions of the names a policy may hold, their
//! types, defaults and limits, and validation against them.

use std::fmt;
use std::path::Path;

use indexmap::IndexMap;

use super::error::PolicyError;
use super::Policy;
use crate::property_set::{PropertySet, Values};

/// The kind of one validation problem (LSST's `ValidationError` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemCode {
    /// A value has the wrong type.
    WrongType,
    /// A required name (`minOccurs` ≥ 1) is absent.
    MissingRequired,
    /// More values than `maxOccurs`.
    TooManyValues,
    /// Fewer values than `minOccurs` (but at least one).
    ArrayTooShort,
    /// A value is not among the `allowed` values.
    ValueDisallowed,
    /// A value is outside `min`/`max`.
    ValueOutOfRange,
    /// A name the dictionary does not define.
    UnknownName,
}

impl ProblemCode {
    /// The LSST spelling (`WRONG_TYPE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::WrongType => "WRONG_TYPE",
            ProblemCode::MissingRequired => "MISSING_REQUIRED",
            ProblemCode::TooManyValues => "TOO_MANY_VALUES",
            ProblemCode::ArrayTooShort => "ARRAY_TOO_SHORT",
            ProblemCode::ValueDisallowed => "VALUE_DISALLOWED",
            ProblemCode::ValueOutOfRange => "VALUE_OUT_OF_RANGE",
            ProblemCode::UnknownName => "UNKNOWN_NAME",
        }
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub code: ProblemCode,
    /// The dotted name it concerns.
    pub name: String,
    /// Details for the reader.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.name, self.detail)
    }
}

/// Every problem validation found, in policy order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The problems (never empty).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy validation found {} problem(s):",
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// The value type a definition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `bool` / `boolean`.
    Bool,
    /// `int` / `integer`: any integer type.
    Int,
    /// `double` / `float`: `f64` or `f32`; integers are accepted too.
    Double,
    /// `string`.
    String,
    /// `policy` / `Policy`: a sub-policy.
    Policy,
    /// `undef` (or no `type`): anything.
    Undef,
}

impl ValueKind {
    /// Parses a dictionary `type` value (case-insensitive).
    pub fn from_type_name(name: &str) -> Option<ValueKind> {
        Some(match name.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => ValueKind::Bool,
            "int" | "integer" => ValueKind::Int,
            "double" | "float" => ValueKind::Double,
            "string" => ValueKind::String,
            "policy" => ValueKind::Policy,
            "undef" => ValueKind::Undef,
            _ => return None,
        })
    }

    /// The kind of values a property holds.
    pub fn of(values: &Values) -> Option<ValueKind> {
        Some(match values {
            Values::Bool(_) => ValueKind::Bool,
            Values::F32(_) | Values::F64(_) => ValueKind::Double,
            Values::String(_) => ValueKind::String,
            Values::PropertySet(_) => ValueKind::Policy,
            Values::DateTime(_) => return None,
            _ => ValueKind::Int,
        })
    }

    /// The dictionary spelling.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Bool => "bool",
            ValueKind::Int => "int",
            ValueKind::Double => "double",
            ValueKind::String => "string",
            ValueKind::Policy => "policy",
            ValueKind::Undef => "undef",
        }
    }

    fn accepts(self, actual: ValueKind) -> bool {
        self == ValueKind::Undef
            || self == actual
            || (self == ValueKind::Double && actual == ValueKind::Int)
    }
}

/// One scalar from a policy, for `allowed` and range checks.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Bool(bool),
    Num(f64),
    Str(String),
}

impl Scalar {
    fn at(values: &Values, i: usize) -> Option<Scalar> {
        match values {
            Values::Bool(v) => v.get(i).copied().map(Scalar::Bool),
            Values::String(v) => v.get(i).cloned().map(Scalar::Str),
            Values::PropertySet(_) | Values::DateTime(_) => None,
            other => other.as_f64_at(i).map(Scalar::Num),
        }
    }

    fn all(values: &Values) -> Vec<Scalar> {
        (0..values.len())
            .filter_map(|i| Scalar::at(values, i))
            .collect()
    }

    fn below(&self, bound: &Scalar) -> Option<bool> {
        match (self, bound) {
            (Scalar::Num(a), Scalar::Num(b)) => Some(a < b),
            (Scalar::Str(a), Scalar::Str(b)) => Some(a < b),
            _ => None,
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Num(x) => write!(f, "{x}"),
            Scalar::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The definition of one name in a [`Dictionary`].
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The value type.
    pub kind: ValueKind,
    /// The `description` text, if any.
    pub description: Option<String>,
    /// The default values, converted to `kind` (an int default of a double
    /// definition becomes a double).
    pub default: Option<Values>,
    /// `minOccurs` (default 0): at least this many values; ≥ 1 makes the
    /// name required.
    pub min_occurs: usize,
    /// `maxOccurs` (default −1, unlimited, as `None`).
    pub max_occurs: Option<usize>,
    allowed: Vec<Scalar>,
    min: Option<Scalar>,
    max: Option<Scalar>,
    /// The nested dictionary of a `policy` definition (`dictionary` or
    /// `dictionaryFile`); without one, any sub-policy is accepted.
    pub dictionary: Option<Box<Dictionary>>,
}

/// A policy dictionary: the definitions of the names a policy may hold.
///
/// A dictionary is itself a policy with an optional `target` and a
/// `definitions` sub-policy. Each definition may give `type` (`bool`, `int`,
/// `double`, `string`, `policy`, `undef`; LSST's `boolean`, `integer` and
/// `Policy` also work), `description`, `default`, `minOccurs` (default 0),
/// `maxOccurs` (default −1 = unlimited), `allowed`, `min`, `max`, and for
/// policies a nested `dictionary` (or `dictionaryFile`, a path). `allowed`
/// may be a list of values or, as in LSST, repeated sub-policies
/// `{ value: X }` and `{ min: A max: B }`. A definition named
/// `childDefinition` applies to every name without its own definition.
///
/// ```
/// use daf_base::Policy;
/// use daf_base::policy::{Dictionary, ProblemCode};
/// let dict = Dictionary::from_policy(&Policy::from_yaml_str(r#"
/// definitions:
///   runMode:
///     type: string
///     allowed: [preprocess, postprocess]
///   nSlices: {type: int, default: 4, min: 1, max: 64}
///   butler: {type: policy, minOccurs: 1}
/// "#, "dict.yaml").unwrap()).unwrap();
/// let mut p = Policy::from_paf_str("runMode: process\nextra: 1\n", "p").unwrap();
/// p.merge_defaults(&dict).unwrap();
/// assert_eq!(p.get::<i32>("nSlices").unwrap(), 4);
/// let err = p.validate(&dict).unwrap_err();
/// let codes: Vec<_> = err.problems.iter().map(|x| x.code).collect();
/// assert_eq!(codes, [ProblemCode::ValueDisallowed, ProblemCode::UnknownName,
///                    ProblemCode::MissingRequired]);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dictionary {
    /// The `target` text, if any (documentation).
    pub target: Option<String>,
    /// The definitions, in dictionary order.
    pub definitions: IndexMap<String, Definition>,
    /// The `childDefinition` wildcard, if any.
    pub child_definition: Option<Box<Definition>>,
}

const KEYWORDS: &[&str] = &[
    "type",
    "description",
    "default",
    "minOccurs",
    "maxOccurs",
    "allowed",
    "min",
    "max",
    "dictionary",
    "dictionaryFile",
];

fn bad(name: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::BadDefinition {
        name: name.to_string(),
        reason: reason.into(),
    }
}

impl Dictionary {
    /// Loads a dictionary file (PAF or YAML, like [`Policy::load`]);
    /// `dictionaryFile` paths resolve against the file's folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Dictionary, PolicyError> {
        let path = path.as_ref();
        let policy = Policy::load(path)?;
        let root = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::build(policy.as_property_set(), "", root, 0)
    }

    /// Builds a dictionary from a loaded policy (`dictionaryFile` paths
    /// resolve against the current directory).
    pub fn from_policy(policy: &Policy) -> Result<Dictionary, PolicyError> {
        Self::build(policy.as_property_set(), "", Path::new("."), 0)
    }

    fn build(
        ps: &PropertySet,
        prefix: &str,
        root: &Path,
        depth: usize,
    ) -> Result<Dictionary, PolicyError> {
        if depth > super::MAX_NESTING {
            return Err(bad(prefix, "dictionaries nested too deeply"));
        }
        let here = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}.{n}")
            }
        };
        let target = match ps.values("target") {
            None => None,
            Some(Values::String(v)) => v.last().cloned(),
            Some(_) => return Err(bad(&here("target"), "target must be a string")),
        };
        let defs = match ps.values("definitions") {
            Some(Values::PropertySet(v)) if v.len() == 1 => &v[0],
            Some(Values::PropertySet(v)) => {
                return Err(bad(
                    &here("definitions"),
                    format!("expected one definitions section, found {}", v.len()),
                ))
            }
            Some(_) => return Err(bad(&here("definitions"), "must be a sub-policy")),
            None => return Err(bad(prefix, "no definitions section: not a dictionary")),
        };
        let mut out = Dictionary {
            target,
            ..Dictionary::default()
        };
        for (name, values) in defs.iter() {
            let full = here(name);
            let def_ps = match values {
                Values::PropertySet(v) if v.len() == 1 => &v[0],
                _ => return Err(bad(&full, "a definition must be one sub-policy")),
            };
            let def = Definition::build(def_ps, &full, root, depth)?;
            if name == "childDefinition" {
                out.child_definition = Some(Box::new(def));
            } else {
                out.definitions.insert(name.to_string(), def);
            }
        }
        Ok(out)
    }

    /// The definition that applies to `name` (a name at this level, not dotted).
    pub fn definition(&self, name: &str) -> Option<&Definition> {
        self.definitions
            .get(name)
            .or(self.child_definition.as_deref())
    }

    fn validate_into(&self, ps: &PropertySet, prefix: &str, problems: &mut Vec<Problem>) {
        let full = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}.{n}")
            }
        };
        for (name, values) in ps.iter() {
            let name_full = full(name);
            match self.definition(name) {
                None => problems.push(Problem {
                    code: ProblemCode::UnknownName,
                    name: name_full,
                    detail: "not defined in the dictionary".into(),
                }),
                Some(def) => def.validate_values(values, &name_full, problems),
            }
        }
        for (name, def) in &self.definitions {
            if def.min_occurs > 0 && ps.values(name).is_none_or(Values::is_empty) {
                problems.push(Problem {
                    code: ProblemCode::MissingRequired,
                    name: full(name),
                    detail: format!("required (minOccurs = {}) but absent", def.min_occurs),
                });
            }
        }
    }

    fn merge_into(&self, ps: &mut PropertySet) -> Result<(), PolicyError> {
        // Rebuild the level so that names keep their order.
        let mut out = PropertySet::new();
        for (name, values) in ps.iter() {
            let mut values = values.clone();
            if let (Some(sub), Values::PropertySet(sets)) = (
                self.definition(name).and_then(|d| d.dictionary.as_deref()),
                &mut values,
            ) {
                for s in sets.iter_mut() {
                    sub.merge_into(s)?;
                }
            }
            out.set(name, values)
                .map_err(|e| bad(name, e.to_string()))?;
        }
        for (name, def) in &self.definitions {
            if out.values(name).is_some() {
                continue;
            }
            if let Some(d) = &def.default {
                out.set(name, d.clone())
                    .map_err(|e| bad(name, e.to_string()))?;
            } else if let Some(sub) = &def.dictionary {
                let mut s = PropertySet::new();
                sub.merge_into(&mut s)?;
                if !s.is_empty() {
                    out.set(name, s).map_err(|e| bad(name, e.to_string()))?;
                }
            }
        }
        *ps = out;
        Ok(())
    }

    /// A policy holding every default of this dictionary (nested
    /// dictionaries included; empty sub-policies skipped).
    pub fn defaults(&self) -> Policy {
        let mut ps = PropertySet::new();
        // Defaults were type-checked when the dictionary was built.
        let _ = self.merge_into(&mut ps);
        Policy::from_property_set(ps)
    }
}

fn int_field(ps: &PropertySet, key: &str, full: &str) -> Result<Option<i64>, PolicyError> {
    match ps.values(key) {
        None => Ok(None),
        Some(v) => match v.as_i64_at(v.len().saturating_sub(1)) {
            Some(i) if v.len() == 1 => Ok(Some(i)),
            _ => Err(bad(full, format!("{key} must be one integer"))),
        },
    }
}

fn scalar_field(ps: &PropertySet, key: &str, full: &str) -> Result<Option<Scalar>, PolicyError> {
    match ps.values(key) {
        None => Ok(None),
        Some(v) if v.len() == 1 => Scalar::at(v, 0)
            .map(Some)
            .ok_or_else(|| bad(full, format!("{key} must be a number or a string"))),
        Some(_) => Err(bad(full, format!("{key} must be one value"))),
    }
}

/// Converts `values` to `kind` for a default: ints widen to doubles.
fn coerce(values: &Values, kind: ValueKind, full: &str) -> Result<Values, PolicyError> {
    let actual = ValueKind::of(values).ok_or_else(|| bad(full, "unsupported default type"))?;
    if !kind.accepts(actual) {
        return Err(bad(
            full,
            format!("default is {}, the type is {}", actual.name(), kind.name()),
        ));
    }
    if kind == ValueKind::Double && actual == ValueKind::Int {
        return Ok(Values::F64(
            (0..values.len())
                .filter_map(|i| values.as_f64_at(i))
                .collect(),
        ));
    }
    Ok(values.clone())
}

impl Definition {
    fn build(
        ps: &PropertySet,
        full: &str,
        root: &Path,
        depth: usize,
    ) -> Result<Definition, PolicyError> {
        for key in ps.names() {
            if !KEYWORDS.contains(&key.as_str()) {
                return Err(bad(full, format!("unknown keyword {key:?}")));
            }
        }
        let kind = match ps.values("type") {
            None => ValueKind::Undef,
            Some(Values::String(v)) if v.len() == 1 => {
                if v[0].eq_ignore_ascii_case("file") {
                    return Err(bad(full, "type \"file\" is illegal; use \"policy\""));
                }
                ValueKind::from_type_name(&v[0])
                    .ok_or_else(|| bad(full, format!("unknown type {:?}", v[0])))?
            }
            Some(_) => return Err(bad(full, "type must be one string")),
        };
        let description = match ps.values("description") {
            None => None,
            Some(Values::String(v)) => Some(v.join(" ")),
            Some(_) => return Err(bad(full, "description must be a string")),
        };
        let min_occurs = match int_field(ps, "minOccurs", full)? {
            None => 0,
            Some(n) => usize::try_from(n).map_err(|_| bad(full, "minOccurs must be ≥ 0"))?,
        };
        let max_occurs = match int_field(ps, "maxOccurs", full)? {
            None | Some(-1) => None,
            Some(n) => {
                Some(usize::try_from(n).map_err(|_| bad(full, "maxOccurs must be ≥ 0 or -1"))?)
            }
        };
        if max_occurs.is_some_and(|m| m < min_occurs) {
            return Err(bad(full, "maxOccurs is below minOccurs"));
        }
        let mut min = scalar_field(ps, "min", full)?;
        let mut max = scalar_field(ps, "max", full)?;
        let mut allowed = Vec::new();
        match ps.values("allowed") {
            None => {}
            Some(Values::PropertySet(sets)) => {
                for a in sets {
                    for key in a.names() {
                        if !["value", "min", "max", "description"].contains(&key.as_str()) {
                            return Err(bad(full, format!("unknown allowed keyword {key:?}")));
                        }
                    }
                    if let Some(v) = a.values("value") {
                        allowed.extend(Scalar::all(v));
                    }
                    for (key, slot) in [("min", &mut min), ("max", &mut max)] {
                        if let Some(s) = scalar_field(a, key, full)? {
                            if slot.is_some() {
                                return Err(bad(full, format!("{key} given twice")));
                            }
                            *slot = Some(s);
                        }
                    }
                }
            }
            Some(v) => allowed = Scalar::all(v),
        }
        let dictionary = match (ps.values("dictionary"), ps.values("dictionaryFile")) {
            (Some(_), Some(_)) => {
                return Err(bad(full, "both dictionary and dictionaryFile given"))
            }
            (Some(Values::PropertySet(v)), None) if v.len() == 1 => Some(Box::new(
                Dictionary::build(&v[0], &format!("{full}.dictionary"), root, depth + 1)?,
            )),
            (Some(_), None) => return Err(bad(full, "dictionary must be one sub-policy")),
            (None, Some(Values::String(v))) if v.len() == 1 => {
                let path = root.join(&v[0]);
                let p = Policy::load(&path)?;
                Some(Box::new(Dictionary::build(
                    p.as_property_set(),
                    &format!("{full}.dictionary"),
                    path.parent().unwrap_or(root),
                    depth + 1,
                )?))
            }
            (None, Some(_)) => return Err(bad(full, "dictionaryFile must be one path")),
            (None, None) => None,
        };
        if dictionary.is_some() && !matches!(kind, ValueKind::Policy | ValueKind::Undef) {
            return Err(bad(full, "a nested dictionary needs type policy"));
        }
        let default = ps
            .values("default")
            .map(|v| coerce(v, kind, full))
            .transpose()?;
        Ok(Definition {
            kind,
            description,
            default,
            min_occurs,
            max_occurs,
            allowed,
            min,
            max,
            dictionary,
        })
    }

    /// The values `allowed` lists, rendered as text.
    pub fn allowed_values(&self) -> Vec<String> {
        self.allowed.iter().map(ToString::to_string).collect()
    }

    fn validate_values(&self, values: &Values, name: &str, problems: &mut Vec<Problem>) {
        let mut push = |code, detail: String| {
            problems.push(Problem {
                code,
                name: name.to_string(),
                detail,
            })
        };
        if ValueKind::of(values)
            .filter(|a| self.kind.accepts(*a))
            .is_none()
        {
            push(
                ProblemCode::WrongType,
                format!(
                    "expected {}, found {}",
                    self.kind.name(),
                    ValueKind::of(values).map_or("date-time", ValueKind::name)
                ),
            );
            return;
        }
        let n = values.len();
        if let Some(max) = self.max_occurs {
            if n > max {
                push(
                    ProblemCode::TooManyValues,
                    format!("{n} values, at most {max} allowed"),
                );
            }
        }
        if n > 0 && n < self.min_occurs {
            push(
                ProblemCode::ArrayTooShort,
                format!("{n} values, at least {} required", self.min_occurs),
            );
        }
        for i in 0..n {
            let Some(v) = Scalar::at(values, i) else {
                continue;
            };
            if !self.allowed.is_empty() && !self.allowed.contains(&v) {
                push(
                    ProblemCode::ValueDisallowed,
                    format!("{v} is not one of {}", self.allowed_values().join(", ")),
                );
            }
            if let Some(min) = &self.min {
                if v.below(min) == Some(true) {
                    push(
                        ProblemCode::ValueOutOfRange,
                        format!("{v} is below min {min}"),
                    );
                }
            }
            if let Some(max) = &self.max {
                if max.below(&v) == Some(true) {
                    push(
                        ProblemCode::ValueOutOfRange,
                        format!("{v} is above max {max}"),
                    );
                }
            }
        }
        if let (Some(dict), Values::PropertySet(sets)) = (&self.dictionary, values) {
            for (i, s) in sets.iter().enumerate() {
                let sub_name = if sets.len() == 1 {
                    name.to_string()
                } else {
                    format!("{name}[{i}]")
                };
                dict.validate_into(s, &sub_name, problems);
            }
        }
    }
}

impl Policy {
    /// Adds the dictionary's defaults for every name this policy lacks,
    /// recursing into sub-policies that have nested dictionaries (absent
    /// sub-policies are created when their dictionary has defaults).
    pub fn merge_defaults(&mut self, dictionary: &Dictionary) -> Result<(), PolicyError> {
        dictionary.merge_into(self.as_property_set_mut())
    }

    /// Checks this policy against `dictionary`, collecting every problem
    /// (unknown names, wrong types, missing required names, too many or too
    /// few values, disallowed or out-of-range values, in nested
    /// dictionaries too) into one [`ValidationError`].
    pub fn validate(&self, dictionary: &Dictionary) -> Result<(), ValidationError> {
        let mut problems = Vec::new();
        dictionary.validate_into(self.as_property_set(), "", &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { problems })
        }
    }
}
