//! Events: what drives each visit. An [`Event`] carries the job identity and
//! input-dataset list a JobOffice would hand the pipeline, payloads put on the
//! clipboard under each stage's `eventTopic` (one per topic, or one default
//! payload for every topic), and plain clipboard items.
//!
//! Streams come from a JSON-lines file or stdin ([`read_events`]) or from any
//! iterator in code.

use std::collections::BTreeMap;
use std::io::BufRead;

use daf_base::{DataId, PropertySet};
use serde::{Deserialize, Serialize};

use crate::clipboard::{Dataset, Item};
use crate::error::HarnessError;
use crate::Result;

/// One visit's event.
///
/// As a JSON line (every member optional):
///
/// ```text
/// {"jobIdentity": {"visit": 1, "ccd": 2},
///  "inputDatasets": [{"type": "raw", "ids": {"visit": 1}}],
///  "payload": {"visitId": 1},
///  "topics": {"triggerAssociationEvent": {"visitId": 1, "FOVRa": 273.48},
///             "triggerMatchMopEvent": {"visitId": 1}},
///  "clipboard": {"root": "tests", "visit": 707911}}
/// ```
///
/// A stage with `eventTopic: T` gets `topics[T]` on the clipboard under key
/// `T`, or `payload` when `topics` has no `T`. `clipboard` items are put on
/// every clipboard at the start of the visit as plain items: strings, integers,
/// floats, booleans, or objects (as PropertySets). An event whose `topics`
/// has the pipeline's `shutdownTopic` ends the run before that visit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Put on every clipboard under `jobIdentity` at the start of the visit.
    #[serde(
        rename = "jobIdentity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub job_identity: Option<DataId>,
    /// Put on every clipboard under `inputDatasets` at the start of the visit.
    #[serde(
        rename = "inputDatasets",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub input_datasets: Option<Vec<Dataset>>,
    /// Put under each stage's `eventTopic` before that stage.
    #[serde(default, with = "payload_json")]
    pub payload: PropertySet,
    /// Payloads by topic, for pipelines whose stages wait on several topics.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "topics_json"
    )]
    pub topics: BTreeMap<String, PropertySet>,
    /// Plain clipboard items put on every clipboard at the start of the visit.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "items_json"
    )]
    pub clipboard: BTreeMap<String, serde_json::Value>,
}

impl Event {
    /// An event with only a job identity.
    pub fn with_job_identity(id: DataId) -> Event {
        Event {
            job_identity: Some(id),
            ..Event::default()
        }
    }

    /// The payload a stage with `eventTopic: topic` gets.
    pub fn payload_for(&self, topic: &str) -> &PropertySet {
        self.topics.get(topic).unwrap_or(&self.payload)
    }

    /// A label for visit number `index` driven by this event: the job
    /// identity (`visit=1 ccd=2`), else the payload's `visitId`, else `#index`.
    pub fn label(&self, index: usize) -> String {
        if let Some(id) = self.job_identity.as_ref().filter(|id| !id.is_empty()) {
            return id
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
        }
        if let Some(v) = self.payload.values("visitId").and_then(|v| v.text_at(0)) {
            return format!("visitId={v}");
        }
        format!("#{index}")
    }

    /// Does this event carry `topic` (in `topics`)?
    pub fn has_topic(&self, topic: &str) -> bool {
        self.topics.contains_key(topic)
    }
}

/// An event a stage published ([`crate::StageContext::publish`]) or the
/// harness's `exitTopic` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// The topic.
    pub topic: String,
    /// The payload.
    #[serde(with = "payload_json")]
    pub payload: PropertySet,
    /// The stage that published it (`""` for the exit event).
    pub stage: String,
    /// The process: −1 for the master, else the slice rank.
    pub rank: i32,
    /// The label of the visit it was published in (`""` for the exit event).
    pub visit: String,
}

impl Published {
    /// The `exitTopic` event: `message = "exiting_<runId>"`.
    pub fn exit(topic: &str, run_id: &str) -> Published {
        let mut payload = PropertySet::new();
        // A fresh set with one string value cannot fail.
        let _ = payload.set("message", format!("exiting_{run_id}"));
        Published {
            topic: topic.to_string(),
            payload,
            stage: String::new(),
            rank: -1,
            visit: String::new(),
        }
    }

    /// The event as a line of `daf run --events` (so one pipeline's
    /// published events can drive another):
    /// `{"topics": {TOPIC: payload}, "publishedBy": {"stage", "rank", "visit"}}`
    /// (`publishedBy` is ignored by readers).
    pub fn to_event_line(&self) -> serde_json::Value {
        let mut topics = serde_json::Map::new();
        topics.insert(self.topic.clone(), property_set_to_json(&self.payload));
        serde_json::json!({
            "topics": topics,
            "publishedBy": {"stage": self.stage, "rank": self.rank, "visit": self.visit},
        })
    }
}

mod topics_json {
    use super::*;
    pub fn serialize<S: serde::Serializer>(
        m: &BTreeMap<String, PropertySet>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let o: serde_json::Map<String, serde_json::Value> = m
            .iter()
            .map(|(k, v)| (k.clone(), property_set_to_json(v)))
            .collect();
        o.serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<BTreeMap<String, PropertySet>, D::Error> {
        let o = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        o.iter()
            .map(|(k, v)| {
                json_to_property_set(v)
                    .map(|ps| (k.clone(), ps))
                    .map_err(|e| serde::de::Error::custom(format!("topics.{k}: {e}")))
            })
            .collect()
    }
}

mod items_json {
    use super::*;
    pub fn serialize<S: serde::Serializer>(
        m: &BTreeMap<String, serde_json::Value>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        m.serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<BTreeMap<String, serde_json::Value>, D::Error> {
        let m = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        for (k, v) in &m {
            plain_item(v).map_err(|e| serde::de::Error::custom(format!("clipboard.{k}: {e}")))?;
        }
        Ok(m)
    }
}

/// A plain clipboard item from an event's `clipboard` member: a string,
/// integer, float, boolean, or an object (as a PropertySet).
pub fn plain_item(v: &serde_json::Value) -> std::result::Result<Item, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::String(x) => Item::Str(x.clone()),
        J::Bool(b) => Item::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Item::Int(i),
            None => Item::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::Object(_) => Item::PropertySet(json_to_property_set(v)?),
        J::Array(_) | J::Null => return Err("must be a string, number, boolean or object".into()),
    })
}

/// Converts a JSON object into a [`PropertySet`] (integers → `i64`, other
/// numbers → `f64`, strings, booleans, arrays of one type, nested objects).
pub fn json_to_property_set(v: &serde_json::Value) -> std::result::Result<PropertySet, String> {
    let obj = v.as_object().ok_or("payload must be a JSON object")?;
    let mut ps = PropertySet::new();
    for (k, v) in obj {
        set_json(&mut ps, k, v)?;
    }
    Ok(ps)
}

fn set_json(
    ps: &mut PropertySet,
    k: &str,
    v: &serde_json::Value,
) -> std::result::Result<(), String> {
    use serde_json::Value as J;
    let r = match v {
        J::Bool(b) => ps.add(k, *b),
        J::Number(n) => match n.as_i64() {
            Some(i) => ps.add(k, i),
            None => ps.add(k, n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => ps.add(k, s.as_str()),
        J::Object(_) => ps.add(k, json_to_property_set(v)?),
        J::Array(a) => {
            for x in a {
                if x.is_array() {
                    return Err(format!("{k}: nested arrays are not supported"));
                }
                set_json(ps, k, x)?;
            }
            Ok(())
        }
        J::Null => return Err(format!("{k}: null is not a property value")),
    };
    r.map_err(|e| format!("{k}: {e}"))
}

/// Converts a [`PropertySet`] into a plain JSON object (the inverse of
/// [`json_to_property_set`]; single values as scalars, several as arrays).
pub fn property_set_to_json(ps: &PropertySet) -> serde_json::Value {
    use daf_base::Values;
    let mut m = serde_json::Map::new();
    for (k, vals) in ps.iter() {
        let items: Vec<serde_json::Value> = match vals {
            Values::PropertySet(v) => v.iter().map(property_set_to_json).collect(),
            Values::Bool(v) => v.iter().map(|b| serde_json::Value::Bool(*b)).collect(),
            Values::String(v) => v
                .iter()
                .map(|s| serde_json::Value::String(s.clone()))
                .collect(),
            Values::F32(_) | Values::F64(_) => (0..vals.len())
                .map(|i| serde_json::json!(vals.as_f64_at(i).unwrap_or(f64::NAN)))
                .collect(),
            other => (0..other.len())
                .map(|i| match other.as_i64_at(i) {
                    Some(x) => serde_json::json!(x),
                    None => serde_json::Value::String(other.text_at(i).unwrap_or_default()),
                })
                .collect(),
        };
        let v = if items.len() == 1 {
            items.into_iter().next().unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::Value::Array(items)
        };
        m.insert(k.to_string(), v);
    }
    serde_json::Value::Object(m)
}

mod payload_json {
    use super::*;
    pub fn serialize<S: serde::Serializer>(
        ps: &PropertySet,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        property_set_to_json(ps).serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<PropertySet, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        json_to_property_set(&v).map_err(serde::de::Error::custom)
    }
}

/// Longest accepted event line (1 MiB): longer lines are an error, not an
/// unbounded allocation.
pub const MAX_EVENT_LINE: usize = 1 << 20;

/// Reads JSON-lines events from `reader` (`name` labels errors: a path or
/// `stdin`). Blank lines and lines starting with `#` are skipped. Yields
/// events lazily, so `-` (stdin) can drive a pipeline as events arrive.
pub fn read_events<R: BufRead>(reader: R, name: &str) -> impl Iterator<Item = Result<Event>> {
    let name = name.to_string();
    let mut reader = reader;
    let mut line_no = 0usize;
    std::iter::from_fn(move || loop {
        let mut buf = Vec::new();
        line_no += 1;
        let mut limited = (&mut reader).take(MAX_EVENT_LINE as u64 + 1);
        match limited.read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => {
                return Some(Err(HarnessError::Event {
                    location: format!("{name}:{line_no}"),
                    message: e.to_string(),
                }))
            }
        }
        if buf.len() > MAX_EVENT_LINE {
            return Some(Err(HarnessError::Event {
                location: format!("{name}:{line_no}"),
                message: format!("line longer than {MAX_EVENT_LINE} bytes"),
            }));
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(_) => {
                return Some(Err(HarnessError::Event {
                    location: format!("{name}:{line_no}"),
                    message: "not UTF-8".into(),
                }))
            }
        };
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        return Some(
            serde_json::from_str::<Event>(text).map_err(|e| HarnessError::Event {
                location: format!("{name}:{line_no}"),
                message: e.to_string(),
            }),
        );
    })
}

use std::io::Read as _;
