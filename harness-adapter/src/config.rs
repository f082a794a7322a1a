//! The pipeline policy model: [`PipelineConfig`] and its [`AppStage`] entries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use daf_base::{Policy, PropertySet, PropertyType};

use crate::error::HarnessError;
use crate::Result;

/// One `appStage` (or the `failureStage`) entry of a pipeline policy.
#[derive(Debug, Clone, Default)]
pub struct AppStage {
    /// The stage name.
    pub name: String,
    /// The serial class name (`None` = NoOp).
    pub serial_class: Option<String>,
    /// The parallel class name (`None` = NoOp).
    pub parallel_class: Option<String>,
    /// The event topic whose payload is put on the clipboard before this
    /// stage (`None` for `"None"` or absent).
    pub event_topic: Option<String>,
    /// The stage policy (`None` for `"None"` or absent).
    pub stage_policy: Option<Policy>,
    /// Exchange shared clipboard items between slices before `process`.
    pub share_data: bool,
}

/// How slices exchange shared clipboard items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// 1-D periodic ring: each slice sends to `rank+1` (clockwise) or
    /// `rank−1` (counterclockwise) and receives from the other side.
    Ring {
        /// Direction of sending.
        clockwise: bool,
    },
}

impl Topology {
    /// (send-to, receive-from) ranks for `rank` among `n` slices.
    pub fn neighbours(&self, rank: usize, n: usize) -> (usize, usize) {
        let Topology::Ring { clockwise } = *self;
        let next = (rank + 1) % n;
        let prev = (rank + n - 1) % n;
        if clockwise {
            (next, prev)
        } else {
            (prev, next)
        }
    }
}

/// A parsed pipeline policy.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The pipeline name (`pipelineName`, default `"pipeline"`).
    pub name: String,
    /// The stages, in order.
    pub stages: Vec<AppStage>,
    /// The optional failure stage.
    pub failure_stage: Option<AppStage>,
    /// Number of slices (`nSlices`, default 1); the command line may override it.
    pub n_slices: usize,
    /// `shareDataOn`: whether any sharing happens at all.
    pub share_data_on: bool,
    /// The sharing topology (`topology{type: ring, param1: clockwise}`).
    pub topology: Topology,
    /// `executionMode: oneloop` runs a single visit.
    pub one_loop: bool,
    /// The global location map built from `dir{...}` and `database.url`.
    pub location_map: PropertySet,
    /// How long the master waits for all slices to finish one step before
    /// declaring a slice lost (`stepTimeout` seconds, default
    /// [`DEFAULT_STEP_TIMEOUT`] = 300 s). While it waits it warns every
    /// [`PipelineConfig::heartbeat`] which slices it is waiting for.
    pub step_timeout: Duration,
    /// `exitTopic`: at the end of the run the pipeline publishes
    /// `message = "exiting_<runId>"` on it.
    pub exit_topic: Option<String>,
    /// `shutdownTopic`: an event carrying this topic ends the run before its
    /// visit.
    pub shutdown_topic: Option<String>,
    /// Warnings about the policy (keys daf ignores or does not know), also
    /// logged when the policy is parsed.
    pub warnings: Vec<String>,
}

/// The default `stepTimeout`: 300 s.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Pipeline keys pex_harness knew that daf accepts and ignores, and why.
const IGNORED_KEYS: &[(&str, &str)] = &[
    (
        "eventBrokerHost",
        "events come from --events, not an event broker",
    ),
    ("logThreshold", "set the log level with RUST_LOG"),
    ("localLogMode", "logs go to stderr (RUST_LOG)"),
    (
        "barrierDelay",
        "slices are synchronised by messages, not polling",
    ),
    ("eventTimeout", "the event stream ends the run"),
];

/// Pipeline keys daf reads.
const KNOWN_KEYS: &[&str] = &[
    "pipelineName",
    "appStage",
    "failureStage",
    "nSlices",
    "shareDataOn",
    "topology",
    "executionMode",
    "stepTimeout",
    "dir",
    "database",
    "exitTopic",
    "shutdownTopic",
];

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            name: "pipeline".into(),
            stages: Vec::new(),
            failure_stage: None,
            n_slices: 1,
            share_data_on: false,
            topology: Topology::Ring { clockwise: true },
            one_loop: false,
            location_map: PropertySet::new(),
            step_timeout: DEFAULT_STEP_TIMEOUT,
            exit_topic: None,
            shutdown_topic: None,
            warnings: Vec::new(),
        }
    }
}

fn get_str(p: &Policy, name: &str) -> Result<Option<String>> {
    if !p.exists(name) {
        return Ok(None);
    }
    p.get::<String>(name)
        .map(Some)
        .map_err(|e| HarnessError::Policy(format!("{name}: {e}")))
}

fn none_if_none(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty() && s != "None")
}

fn get_bool(p: &Policy, name: &str, default: bool) -> Result<bool> {
    if !p.exists(name) {
        return Ok(default);
    }
    p.get::<bool>(name)
        .map_err(|e| HarnessError::Policy(format!("{name}: {e}")))
}

/// Loads a policy file (YAML or PAF, by extension) as `@file` includes need.
pub type PolicyLoader = dyn Fn(&Path) -> Result<Policy>;

impl AppStage {
    /// Parses one `appStage` entry; `@file` stage policies are resolved
    /// against `base_dir` with `load`.
    pub fn from_policy(p: &Policy, base_dir: &Path, load: &PolicyLoader) -> Result<AppStage> {
        let name = get_str(p, "name")?
            .or(get_str(p, "stageName")?)
            .ok_or_else(|| HarnessError::Policy("appStage without a name".into()))?;
        let stage_policy = if !p.exists("stagePolicy") {
            None
        } else {
            match p.as_property_set().type_of("stagePolicy")? {
                PropertyType::PropertySet => Some(p.get_policy("stagePolicy")?),
                PropertyType::String => {
                    let s = p.get::<String>("stagePolicy")?;
                    if s == "None" || s.is_empty() {
                        None
                    } else if let Some(file) = s.strip_prefix('@') {
                        let path = base_dir.join(file);
                        Some(load(&path)?)
                    } else {
                        return Err(HarnessError::Policy(format!(
                            "appStage {name}: stagePolicy must be a policy, \"None\" or \"@file\", not {s:?}"
                        )));
                    }
                }
                other => {
                    return Err(HarnessError::Policy(format!(
                        "appStage {name}: stagePolicy is a {other}"
                    )))
                }
            }
        };
        Ok(AppStage {
            serial_class: none_if_none(get_str(p, "serialClass")?),
            parallel_class: none_if_none(get_str(p, "parallelClass")?),
            event_topic: none_if_none(get_str(p, "eventTopic")?),
            share_data: get_bool(p, "shareData", false)?,
            stage_policy,
            name,
        })
    }
}

impl PipelineConfig {
    /// Parses a pipeline policy (optionally wrapped in `execute:`), with
    /// stage policies given inline only (`@file` is an error).
    pub fn from_policy(policy: &Policy) -> Result<PipelineConfig> {
        Self::from_policy_with(policy, Path::new("."), &|p: &Path| {
            Err(HarnessError::Policy(format!(
                "stage policy file {} cannot be loaded here: use PipelineConfig::from_policy_with",
                p.display()
            )))
        })
    }

    /// Parses a pipeline policy; `@file` stage policies are loaded with `load`,
    /// relative to `base_dir`.
    pub fn from_policy_with(
        policy: &Policy,
        base_dir: &Path,
        load: &PolicyLoader,
    ) -> Result<PipelineConfig> {
        let p = if policy.exists("execute") && policy.as_property_set().is_property_set("execute") {
            policy.get_policy("execute")?
        } else {
            policy.clone()
        };
        let mut cfg = PipelineConfig::default();
        if let Some(n) = get_str(&p, "pipelineName")? {
            cfg.name = n;
        }
        if !p.exists("appStage") {
            return Err(HarnessError::Policy(
                "pipeline policy has no appStage".into(),
            ));
        }
        for s in p.get_policy_array("appStage")? {
            cfg.stages.push(AppStage::from_policy(&s, base_dir, load)?);
        }
        if p.exists("failureStage") {
            cfg.failure_stage = Some(AppStage::from_policy(
                &p.get_policy("failureStage")?,
                base_dir,
                load,
            )?);
        }
        if p.exists("nSlices") {
            let n = p
                .as_property_set()
                .get_as_i64("nSlices")
                .map_err(|e| HarnessError::Policy(format!("nSlices: {e}")))?;
            if !(1..=4096).contains(&n) {
                return Err(HarnessError::Policy(format!(
                    "nSlices must be between 1 and 4096, not {n}"
                )));
            }
            cfg.n_slices = n as usize;
        }
        cfg.share_data_on = get_bool(&p, "shareDataOn", false)?;
        if p.exists("topology") {
            let t = p.get_policy("topology")?;
            let kind = get_str(&t, "type")?.unwrap_or_else(|| "ring".into());
            if kind != "ring" {
                return Err(HarnessError::Policy(format!(
                    "topology type {kind:?} is not supported (only \"ring\")"
                )));
            }
            let dir = get_str(&t, "param1")?.unwrap_or_else(|| "clockwise".into());
            let clockwise = match dir.as_str() {
                "clockwise" => true,
                "counterclockwise" => false,
                other => {
                    return Err(HarnessError::Policy(format!(
                        "topology.param1 must be clockwise or counterclockwise, not {other:?}"
                    )))
                }
            };
            cfg.topology = Topology::Ring { clockwise };
        }
        cfg.one_loop = get_str(&p, "executionMode")?.is_some_and(|m| m == "oneloop");
        if p.exists("stepTimeout") {
            let t = p
                .as_property_set()
                .get_as_f64("stepTimeout")
                .map_err(|e| HarnessError::Policy(format!("stepTimeout: {e}")))?;
            if !(t > 0.0 && t < 1e9) {
                return Err(HarnessError::Policy(format!(
                    "stepTimeout must be positive, not {t}"
                )));
            }
            cfg.step_timeout = Duration::from_secs_f64(t);
        }
        cfg.exit_topic = none_if_none(get_str(&p, "exitTopic")?);
        cfg.shutdown_topic = none_if_none(get_str(&p, "shutdownTopic")?);
        for name in p.as_property_set().names() {
            if KNOWN_KEYS.contains(&name.as_str()) {
                continue;
            }
            let w = match IGNORED_KEYS.iter().find(|(k, _)| *k == name) {
                Some((k, why)) => format!("pipeline policy key {k} is ignored: {why}"),
                None => format!("unknown pipeline policy key {name} is ignored"),
            };
            tracing::warn!("{w}");
            cfg.warnings.push(w);
        }
        if p.exists("dir") {
            cfg.location_map = dir_map(&p.get_policy("dir")?, "run")?;
        }
        if p.exists("database.url") {
            let url: String = p.get("database.url")?;
            cfg.location_map.set("dbUrl", url)?;
        }
        Ok(cfg)
    }

    /// Re-resolves the `dir` map for a run id (`runDirPattern` uses it).
    pub fn resolve_dirs(&mut self, policy: &Policy, run_id: &str) -> Result<()> {
        let p = if policy.exists("execute") && policy.as_property_set().is_property_set("execute") {
            policy.get_policy("execute")?
        } else {
            policy.clone()
        };
        if p.exists("dir") {
            let db = self.location_map.values("dbUrl").cloned();
            self.location_map = dir_map(&p.get_policy("dir")?, run_id)?;
            if let Some(db) = db {
                self.location_map.set("dbUrl", db)?;
            }
        }
        Ok(())
    }
}

impl PipelineConfig {
    /// How often the master warns while it waits for slices: a quarter of
    /// the step timeout, between 1 s and 30 s.
    pub fn heartbeat(&self) -> Duration {
        (self.step_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }
}

/// Builds the location map from a `dir{defaultRoot, runDirPattern, work,
/// input, output, update, scratch}` policy: relative entries are resolved
/// under `defaultRoot/<runDirPattern filled with run_id>`.
fn dir_map(dir: &Policy, run_id: &str) -> Result<PropertySet> {
    let root = get_str(dir, "defaultRoot")?;
    let pattern = get_str(dir, "runDirPattern")?;
    // With neither key, entries are taken as given (relative to the working
    // directory); otherwise under defaultRoot/<runDirPattern>.
    let base = if root.is_none() && pattern.is_none() {
        PathBuf::new()
    } else {
        let pattern = pattern.unwrap_or_else(|| "%(runid)s".into());
        let run_dir = pattern
            .replace("%(runid)s", run_id)
            .replace("%(runid)", run_id);
        PathBuf::from(root.unwrap_or_else(|| ".".into())).join(run_dir)
    };
    let mut map = PropertySet::new();
    for key in ["work", "input", "output", "update", "scratch"] {
        let v = get_str(dir, key)?.unwrap_or_else(|| key.to_string());
        let p = PathBuf::from(&v);
        let full = if p.is_absolute() { p } else { base.join(p) };
        map.set(key, full.display().to_string())?;
    }
    Ok(map)
}
