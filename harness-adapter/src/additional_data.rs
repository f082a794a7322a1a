//! Builds the additional-data [`PropertySet`] handed to formatters and
//! location templates from `parameters.additionalData` entries.

use daf_base::{DataIdValue, PropertySet};

use crate::clipboard::{Clipboard, Item};
use crate::error::HarnessError;
use crate::stage::StageContext;
use crate::Result;

/// One parsed `additionalData` entry: `key=clipboardKey[.subKey]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name in the additional data.
    pub key: String,
    /// The clipboard key.
    pub clip_key: String,
    /// The key within the clipboard item, if any.
    pub sub_key: Option<String>,
}

impl Entry {
    /// Parses `"key=clipboardKey"` or `"key=clipboardKey.subKey"` (split on the
    /// first `=`, then the first `.`).
    pub fn parse(s: &str) -> Result<Entry> {
        let bad = || HarnessError::BadAdditionalData { entry: s.into() };
        let (key, clip) = s.split_once('=').ok_or_else(bad)?;
        let (key, clip) = (key.trim(), clip.trim());
        let (clip_key, sub_key) = match clip.split_once('.') {
            Some((c, sub)) => (c, Some(sub)),
            None => (clip, None),
        };
        let ident = |x: &str| !x.is_empty() && !x.contains(char::is_whitespace);
        if !ident(key)
            || key.contains('.')
            || !ident(clip_key)
            || sub_key.is_some_and(|s| !ident(s))
        {
            return Err(bad());
        }
        Ok(Entry {
            key: key.into(),
            clip_key: clip_key.into(),
            sub_key: sub_key.map(str::to_string),
        })
    }
}

fn set_id_value(ps: &mut PropertySet, key: &str, v: &DataIdValue) -> Result<()> {
    match v {
        DataIdValue::Int(i) => ps.set(key, *i)?,
        DataIdValue::Float(f) => ps.set(key, *f)?,
        DataIdValue::Str(s) => ps.set(key, s.as_str())?,
    }
    Ok(())
}

/// Builds the additional data: every entry from the clipboard, then the
/// predefined `runId`, `sliceId` (the rank, −1 on the master) and
/// `universeSize`, which override user entries.
///
/// ```
/// use daf_harness::{Clipboard, StageContext, Services};
/// use daf_harness::additional_data::create;
/// use daf_base::{data_id, PropertySet};
/// let mut cb = Clipboard::new();
/// cb.put("jobIdentity", data_id! { visit: 85751839 });
/// let ctx = StageContext::new("in", 2, None, Default::default());
/// let ad = create(&cb, &["visit=jobIdentity.visit".to_string()], &ctx).unwrap();
/// assert_eq!(ad.get::<i64>("visit").unwrap(), 85751839);
/// assert_eq!(ad.get::<i32>("sliceId").unwrap(), 2);
/// ```
pub fn create(cb: &Clipboard, entries: &[String], ctx: &StageContext) -> Result<PropertySet> {
    let mut ps = PropertySet::new();
    for e in entries {
        let e = Entry::parse(e)?;
        let item = cb
            .get(&e.clip_key)
            .ok_or_else(|| HarnessError::ExpectedDataNotFound {
                key: e.clip_key.clone(),
            })?;
        match (&e.sub_key, item) {
            (None, Item::PropertySet(p)) => ps.set(&e.key, p.clone())?,
            (None, Item::JobIdentity(id)) => ps.set(&e.key, id.to_property_set())?,
            (None, Item::Str(s)) => ps.set(&e.key, s.as_str())?,
            (None, Item::Int(i)) => ps.set(&e.key, *i)?,
            (None, Item::Float(f)) => ps.set(&e.key, *f)?,
            (None, Item::Bool(b)) => ps.set(&e.key, *b)?,
            (None, other) => {
                return Err(HarnessError::WrongItemType {
                    key: e.clip_key.clone(),
                    expected: "a property set, dict or scalar",
                    actual: other.kind(),
                })
            }
            (Some(sub), Item::JobIdentity(id)) => {
                let v = id
                    .get(sub)
                    .ok_or_else(|| HarnessError::ExpectedDataNotFound {
                        key: format!("{}.{sub}", e.clip_key),
                    })?;
                set_id_value(&mut ps, &e.key, v)?;
            }
            (Some(sub), Item::PropertySet(p)) => {
                let v = p
                    .values(sub)
                    .ok_or_else(|| HarnessError::ExpectedDataNotFound {
                        key: format!("{}.{sub}", e.clip_key),
                    })?;
                ps.set(&e.key, v.clone())?;
            }
            (Some(_), _) => {
                return Err(HarnessError::UnknownDataType {
                    key: e.clip_key.clone(),
                })
            }
        }
    }
    ps.set("runId", ctx.run_id.as_str())?;
    ps.set("sliceId", ctx.rank)?;
    ps.set("universeSize", ctx.universe_size as i32)?;
    Ok(ps)
}

/// The `parameters.additionalData` entries of a stage policy (string or array).
pub fn entries(policy: &daf_base::Policy, name: &str) -> Result<Vec<String>> {
    if !policy.exists(name) {
        return Ok(Vec::new());
    }
    policy
        .get_array::<String>(name)
        .map_err(|e| HarnessError::Policy(format!("{name}: {e}")))
}
