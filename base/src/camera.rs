//! [`Detector`] and [`Camera`]: which sensor an exposure came from, as a
//! Gen2 user checks first (`exposure.getDetector().getName()`, `getId()`,
//! `getSerial()`, `getType()`), and the camera description a mapper policy
//! names (`camera: camera.yaml`) to answer it for raw data whose headers do
//! not say.
//!
//! A camera description is daf's own small YAML file:
//!
//! ```yaml
//! name: test
//! plateScale: 20.0          # arcsec/mm (optional)
//! detectors:
//!   - id: 0
//!     name: "0"
//!     serial: "0000011"
//!     type: SCIENCE           # SCIENCE (default), FOCUS, GUIDER, WAVEFRONT
//! ```
//!
//! ```
//! use daf_base::{camera::Camera, data_id};
//! let cam = Camera::from_yaml_str(
//!     "name: test\ndetectors:\n  - {id: 0, name: '0', serial: '0000011'}\n",
//!     "camera.yaml",
//! )
//! .unwrap();
//! let d = cam.detector_for(&data_id! {visit: 1}).unwrap();
//! assert_eq!((d.id, d.name.as_str(), d.serial.as_str()), (0, "0", "0000011"));
//! ```

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{DataId, DataIdValue};

/// A data-id value as plain text (a string without quotes).
fn plain(v: &DataIdValue) -> String {
    match v {
        DataIdValue::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The purpose of a detector (afw's `DetectorType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DetectorType {
    /// A science sensor (the default).
    #[default]
    Science,
    /// A focus sensor.
    Focus,
    /// A guide sensor.
    Guider,
    /// A wavefront sensor.
    Wavefront,
}

impl DetectorType {
    /// `"SCIENCE"`, `"FOCUS"`, `"GUIDER"` or `"WAVEFRONT"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DetectorType::Science => "SCIENCE",
            DetectorType::Focus => "FOCUS",
            DetectorType::Guider => "GUIDER",
            DetectorType::Wavefront => "WAVEFRONT",
        }
    }

    /// Parses a type name (case-insensitive, surrounding blanks ignored).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "SCIENCE" => Some(DetectorType::Science),
            "FOCUS" => Some(DetectorType::Focus),
            "GUIDER" => Some(DetectorType::Guider),
            "WAVEFRONT" => Some(DetectorType::Wavefront),
            _ => None,
        }
    }
}

impl TryFrom<String> for DetectorType {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        DetectorType::parse(&text).ok_or_else(|| {
            format!("unknown detector type {text:?} (SCIENCE, FOCUS, GUIDER or WAVEFRONT)")
        })
    }
}

impl From<DetectorType> for String {
    fn from(t: DetectorType) -> String {
        t.as_str().to_string()
    }
}

impl fmt::Display for DetectorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One detector (sensor) of a camera: its integer id, name, serial number
/// and type. In FITS it is the `DETECTOR` (id), `DETNAME`, `DETSER` and
/// `DETTYPE` header cards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Detector {
    /// The integer id, unique in its camera.
    pub id: i64,
    /// The name (`"0"`, `"R22_S00"` ...).
    pub name: String,
    /// The manufacturer's serial number (empty when unknown).
    #[serde(default)]
    pub serial: String,
    /// The detector's purpose.
    #[serde(default, rename = "type")]
    pub kind: DetectorType,
}

impl Detector {
    /// A science detector with an empty serial.
    pub fn new(id: i64, name: impl Into<String>) -> Self {
        Detector {
            id,
            name: name.into(),
            serial: String::new(),
            kind: DetectorType::Science,
        }
    }

    /// The same detector with a serial number.
    pub fn with_serial(mut self, serial: impl Into<String>) -> Self {
        self.serial = serial.into();
        self
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "detector {} {:?}", self.id, self.name)?;
        if !self.serial.is_empty() {
            write!(f, " serial {:?}", self.serial)?;
        }
        write!(f, " {}", self.kind)
    }
}

/// A camera description: its name, plate scale and detectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    /// The camera's name.
    pub name: String,
    /// Plate scale in arcsec/mm, when known.
    #[serde(
        default,
        rename = "plateScale",
        skip_serializing_if = "Option::is_none"
    )]
    pub plate_scale: Option<f64>,
    /// Every detector, in order.
    #[serde(default)]
    pub detectors: Vec<Detector>,
}

/// Data-id keys that name a detector by integer id, in the order tried.
pub const DETECTOR_ID_KEYS: [&str; 3] = ["detector", "ccd", "ccdnum"];
/// Data-id keys that name a detector by name, in the order tried.
pub const DETECTOR_NAME_KEYS: [&str; 3] = ["detectorName", "ccdName", "sensor"];

impl Camera {
    /// Parses a camera description; `source` names it in errors.
    pub fn from_yaml_str(text: &str, source: &str) -> Result<Self, String> {
        let cam: Camera =
            serde_norway::from_str(text).map_err(|e| crate::yaml_error_in(&e, source))?;
        let mut seen = std::collections::BTreeSet::new();
        for d in &cam.detectors {
            if !seen.insert(d.id) {
                return Err(format!("{source}: detector id {} is listed twice", d.id));
            }
        }
        Ok(cam)
    }

    /// Reads a camera description file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_yaml_str(&text, &path.display().to_string())
    }

    /// The detector with id `id`.
    pub fn detector(&self, id: i64) -> Option<&Detector> {
        self.detectors.iter().find(|d| d.id == id)
    }

    /// The detector with name `name`.
    pub fn detector_named(&self, name: &str) -> Option<&Detector> {
        self.detectors.iter().find(|d| d.name == name)
    }

    /// The detector a data id names: by id ([`DETECTOR_ID_KEYS`]), else by
    /// name ([`DETECTOR_NAME_KEYS`]), else the only detector of a
    /// one-detector camera. `None` when the data id names a detector the
    /// camera does not have, or names none in a camera of several.
    pub fn detector_for(&self, data_id: &DataId) -> Option<&Detector> {
        for k in DETECTOR_ID_KEYS {
            if let Some(v) = data_id.get(k) {
                return match v {
                    DataIdValue::Int(id) => self.detector(*id),
                    other => self.detector_named(&plain(other)),
                };
            }
        }
        for k in DETECTOR_NAME_KEYS {
            if let Some(v) = data_id.get(k) {
                return self.detector_named(&plain(v));
            }
        }
        match self.detectors.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_id;

    const TWO: &str = "name: cam\nplateScale: 20\ndetectors:\n  - {id: 0, name: R00, serial: S0}\n  - {id: 1, name: R01, type: guider}\n";

    #[test]
    fn detectors_are_found_by_id_name_or_as_the_only_one() {
        let cam = Camera::from_yaml_str(TWO, "two.yaml").unwrap();
        assert_eq!(cam.plate_scale, Some(20.0));
        assert_eq!(cam.detector_for(&data_id! {ccd: 1}).unwrap().name, "R01");
        assert_eq!(
            cam.detector_for(&data_id! {detector: 1}).unwrap().kind,
            DetectorType::Guider
        );
        assert_eq!(
            cam.detector_for(&data_id! {ccdName: "R00"}).unwrap().serial,
            "S0"
        );
        assert!(cam.detector_for(&data_id! {detector: 7}).is_none());
        // two detectors and none named: no answer
        assert!(cam.detector_for(&data_id! {visit: 1}).is_none());
        let one = Camera::from_yaml_str("name: c\ndetectors: [{id: 3, name: x}]\n", "one").unwrap();
        assert_eq!(one.detector_for(&data_id! {visit: 1}).unwrap().id, 3);
    }

    #[test]
    fn bad_descriptions_are_errors() {
        let e = Camera::from_yaml_str(
            "name: c\ndetectors: [{id: 1, name: a}, {id: 1, name: b}]\n",
            "dup.yaml",
        )
        .unwrap_err();
        assert!(e.contains("dup.yaml") && e.contains("twice"), "{e}");
        let e = Camera::from_yaml_str("name: c\ndetector: []\n", "typo.yaml").unwrap_err();
        assert!(e.contains("typo.yaml") && e.contains("detector"), "{e}");
        let e = Camera::from_yaml_str(
            "name: c\ndetectors: [{id: 1, name: a, type: BIG}]\n",
            "t.yaml",
        )
        .unwrap_err();
        assert!(e.contains("t.yaml"), "{e}");
        assert_eq!(
            DetectorType::parse(" wavefront "),
            Some(DetectorType::Wavefront)
        );
        assert_eq!(DetectorType::parse("x"), None);
    }
}
