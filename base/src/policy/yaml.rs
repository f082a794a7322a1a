//! The YAML reader and writer (serde_norway).
//!
//! Mapping from YAML to a policy, chosen so that a PAF file and its YAML
//! translation load to equal policies:
//!
//! * a map is a sub-policy; its keys are policy names (PAF rules: `\w`
//!   characters, dotted for hierarchy, so `a.b: 1` equals `a: {b: 1}`);
//! * a sequence is an array; all its elements must have one type; a
//!   sequence of maps is an array of sub-policies (PAF's repeated blocks);
//! * an integer is `i32` when it fits, else `i64` (a sequence is `i32` when
//!   every element fits, else `i64`); larger integers are an error;
//! * a float is `f64` (`.inf` and `.nan` included), a bool is a bool, a
//!   string is a string;
//! * `null` and the empty sequence add nothing (like PAF's `name:` with no
//!   value);
//! * `!include path` includes another policy file as a sub-policy, resolved
//!   like PAF's `@path` against the top-level file's folder;
//! * a repeated key is an error (YAML forbids it); write a sequence instead.

use serde_norway::Value;

use super::error::PolicyError;
use super::load::{Loader, MAX_NESTING};
use super::paf::is_paf_name;
use crate::property_set::{PropertySet, Values};

/// Parses YAML text into a property set.
pub(crate) fn parse(
    text: &str,
    source: &str,
    loader: &mut Loader,
) -> Result<PropertySet, PolicyError> {
    let value: Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let line = e.location().map_or(1, |l| l.line());
            return Err(PolicyError::Syntax {
                file: source.to_string(),
                line,
                text: line_text(text, line),
                message: crate::yaml_error_text(&e),
            });
        }
    };
    let mut conv = Converter {
        text,
        source,
        loader,
    };
    match value {
        Value::Null => Ok(PropertySet::new()),
        Value::Mapping(m) => conv.mapping(m, "", 0),
        other => Err(conv.error("", format!("a policy must be a map, not {}", kind(&other)))),
    }
}

fn line_text(text: &str, line: usize) -> String {
    text.lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .trim()
        .to_string()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a sequence",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

struct Converter<'a, 'l> {
    text: &'a str,
    source: &'a str,
    loader: &'l mut Loader,
}

impl Converter<'_, '_> {
    /// The line where `name`'s last component first appears as a key (the
    /// parsed YAML tree carries no positions, so this is a best guess).
    fn line_of(&self, name: &str) -> usize {
        let key = name.rsplit('.').next().unwrap_or(name);
        if key.is_empty() {
            return 1;
        }
        self.text
            .lines()
            .position(|l| {
                let t = l.trim_start().trim_start_matches("- ");
                let t = t.trim_start_matches(['"', '\'']);
                t.strip_prefix(key).is_some_and(|r| {
                    r.trim_start_matches(['"', '\''])
                        .trim_start()
                        .starts_with(':')
                })
            })
            .map_or(1, |i| i + 1)
    }

    fn error(&self, name: &str, message: String) -> PolicyError {
        let line = self.line_of(name);
        let message = if name.is_empty() {
            message
        } else {
            format!("{name}: {message}")
        };
        PolicyError::Syntax {
            file: self.source.to_string(),
            line,
            text: line_text(self.text, line),
            message,
        }
    }

    fn mapping(
        &mut self,
        map: serde_norway::Mapping,
        prefix: &str,
        depth: usize,
    ) -> Result<PropertySet, PolicyError> {
        if depth > MAX_NESTING {
            return Err(self.error(
                prefix,
                format!("maps nested deeper than {MAX_NESTING} levels"),
            ));
        }
        let mut ps = PropertySet::new();
        for (k, v) in map {
            let key = match k {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    return Err(self.error(
                        prefix,
                        format!("a key must be a name, not {}", kind(&other)),
                    ))
                }
            };
            let full = || join(prefix, &key);
            if !is_paf_name(&key) {
                return Err(self.error(
                    &full(),
                    "not a policy name (letters, digits and `_`, dotted)".into(),
                ));
            }
            let nested = matches!(v, Value::Mapping(_) | Value::Sequence(_) | Value::Tagged(_));
            let name = if nested { full() } else { String::new() };
            let name = if nested { name.as_str() } else { prefix };
            if let Some(values) = self.values(v, name, &key, depth)? {
                ps.add(&key, values)
                    .map_err(|e| self.error(&full(), e.to_string()))?;
            }
        }
        Ok(ps)
    }

    fn include(
        &mut self,
        tagged: serde_norway::value::TaggedValue,
        name: &str,
    ) -> Result<PropertySet, PolicyError> {
        if tagged.tag != "include" {
            return Err(self.error(
                name,
                format!("unknown tag {} (only !include is known)", tagged.tag),
            ));
        }
        let Value::String(target) = &tagged.value else {
            return Err(self.error(name, "!include needs a file path".into()));
        };
        let line = self.line_of(name);
        self.loader.include(target, self.source, line)
    }

    /// The values of one YAML node, or `None` for "no value". `name` is the
    /// node's full name for nested nodes, else its parent's (with `key` the
    /// last component); it is only used for messages.
    fn values(
        &mut self,
        v: Value,
        name: &str,
        key: &str,
        depth: usize,
    ) -> Result<Option<Values>, PolicyError> {
        let full = || match v {
            Value::Mapping(_) | Value::Sequence(_) | Value::Tagged(_) => name.to_string(),
            _ => join(name, key),
        };
        Ok(Some(match v {
            Value::Null => return Ok(None),
            Value::Bool(b) => Values::Bool(vec![b]),
            Value::Number(ref n) => {
                if n.is_f64() {
                    Values::F64(vec![n.as_f64().expect("float")])
                } else {
                    match n.as_i64() {
                        Some(i) => match i32::try_from(i) {
                            Ok(i) => Values::I32(vec![i]),
                            Err(_) => Values::I64(vec![i]),
                        },
                        None => {
                            return Err(
                                self.error(&full(), format!("integer {n} does not fit in 64 bits"))
                            )
                        }
                    }
                }
            }
            Value::String(s) => Values::String(vec![s]),
            Value::Mapping(m) => Values::PropertySet(vec![self.mapping(m, name, depth + 1)?]),
            Value::Tagged(t) => Values::PropertySet(vec![self.include(*t, name)?]),
            Value::Sequence(seq) => return self.sequence(seq, name, depth),
        }))
    }

    fn sequence(
        &mut self,
        seq: Vec<Value>,
        name: &str,
        depth: usize,
    ) -> Result<Option<Values>, PolicyError> {
        let Some(first) = seq.first() else {
            return Ok(None);
        };
        let same = |a: &Value, b: &Value| match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.is_f64() == y.is_f64(),
            (Value::Tagged(_) | Value::Mapping(_), Value::Tagged(_) | Value::Mapping(_)) => true,
            _ => std::mem::discriminant(a) == std::mem::discriminant(b),
        };
        if let Some(other) = seq.iter().find(|x| !same(first, x)) {
            return Err(self.error(
                name,
                format!(
                    "a sequence must hold one type: {} and {}",
                    kind(first),
                    kind(other)
                ),
            ));
        }
        Ok(Some(match first {
            Value::Null => return Err(self.error(name, "a sequence of nulls".into())),
            Value::Sequence(_) => {
                return Err(self.error(name, "sequences of sequences are not supported".into()))
            }
            Value::Bool(_) => {
                Values::Bool(seq.iter().map(|x| matches!(x, Value::Bool(true))).collect())
            }
            Value::String(_) => Values::String(
                seq.into_iter()
                    .map(|x| match x {
                        Value::String(s) => s,
                        _ => unreachable!("checked"),
                    })
                    .collect(),
            ),
            Value::Number(n) if n.is_f64() => Values::F64(
                seq.iter()
                    .map(|x| match x {
                        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                        _ => unreachable!("checked"),
                    })
                    .collect(),
            ),
            Value::Number(_) => {
                let mut ints = Vec::with_capacity(seq.len());
                for x in &seq {
                    let Value::Number(n) = x else {
                        unreachable!("checked")
                    };
                    match n.as_i64() {
                        Some(i) => ints.push(i),
                        None => {
                            return Err(
                                self.error(name, format!("integer {n} does not fit in 64 bits"))
                            )
                        }
                    }
                }
                if ints.iter().all(|&i| i32::try_from(i).is_ok()) {
                    Values::I32(ints.into_iter().map(|i| i as i32).collect())
                } else {
                    Values::I64(ints)
                }
            }
            Value::Mapping(_) | Value::Tagged(_) => {
                let mut sets = Vec::with_capacity(seq.len());
                for x in seq {
                    match x {
                        Value::Tagged(t) => sets.push(self.include(*t, name)?),
                        Value::Mapping(m) => sets.push(self.mapping(m, name, depth + 1)?),
                        _ => unreachable!("checked"),
                    }
                }
                Values::PropertySet(sets)
            }
        }))
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn unrep(name: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Unrepresentable {
        name: name.to_string(),
        format: "YAML",
        reason: reason.into(),
    }
}

/// Writes `ps` as YAML that loads back to an equal property set (for
/// policies whose integers are `i32`, or `i64` beyond the `i32` range).
pub(crate) fn dump(ps: &PropertySet) -> Result<String, PolicyError> {
    let value = to_value(ps, "")?;
    serde_norway::to_string(&value).map_err(|e| unrep("", e.to_string()))
}

fn to_value(ps: &PropertySet, prefix: &str) -> Result<Value, PolicyError> {
    let mut map = serde_norway::Mapping::new();
    for (key, values) in ps.iter() {
        let full = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        if values.is_empty() {
            continue;
        }
        let mut items: Vec<Value> = match values {
            Values::PropertySet(sets) => sets
                .iter()
                .map(|s| to_value(s, &full))
                .collect::<Result<_, _>>()?,
            Values::Bool(v) => v.iter().map(|&b| Value::Bool(b)).collect(),
            Values::F64(v) => v.iter().map(|&x| Value::from(x)).collect(),
            Values::F32(v) => v.iter().map(|&x| Value::from(f64::from(x))).collect(),
            Values::String(v) => v.iter().map(|s| Value::String(s.clone())).collect(),
            Values::DateTime(v) => v.iter().map(|d| Value::String(d.to_string())).collect(),
            Values::U64(v) => v
                .iter()
                .map(|&x| {
                    i64::try_from(x)
                        .map(Value::from)
                        .map_err(|_| unrep(&full, format!("{x} does not fit in i64")))
                })
                .collect::<Result<_, _>>()?,
            other => (0..other.len())
                .map(|i| Value::from(other.as_i64_at(i).expect("integer type")))
                .collect(),
        };
        let v = if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Value::Sequence(items)
        };
        map.insert(Value::String(key.to_string()), v);
    }
    Ok(Value::Mapping(map))
}
