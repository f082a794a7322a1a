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

/// How slices exchange shared clipboard items (`topology{type, param1,
/// param2}`, the topologies of pex_harness's MPI era).
///
/// ```
/// use daf_harness::Topology;
/// let ring = Topology::Ring { clockwise: true };
/// assert_eq!((ring.send_to(0, 3), ring.receive_from(0, 3)), (vec![1], vec![2]));
/// let leaders = Topology::SliceLeaders { modulus: 3 };
/// assert_eq!(leaders.receive_from(3, 6), vec![4, 5]);
/// assert_eq!(leaders.send_to(5, 6), vec![3]);
/// let fp = Topology::FocalPlane { nx: 3, ny: 3 };
/// assert_eq!(fp.send_to(4, 9), vec![1, 7, 3, 5]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// `ring`: 1-D periodic ring; each slice sends to `rank+1` (`clockwise`)
    /// or `rank−1` (`counterclockwise`) and receives from the other side.
    Ring {
        /// Direction of sending.
        clockwise: bool,
    },
    /// `sliceleaders` with `param1` = the modulus *m*: a slice whose rank is
    /// a multiple of *m* leads its group and receives from the next *m*−1
    /// slices; every other slice sends to its leader and receives nothing.
    SliceLeaders {
        /// The group size *m* (≥ 1).
        modulus: usize,
    },
    /// `focalplane` with `param1` × `param2` slices on a 2-D periodic grid
    /// (rank = x·param2 + y): each slice sends to and receives from its four
    /// neighbours (x±1, y±1), each once.
    FocalPlane {
        /// Grid size along x (`param1`).
        nx: usize,
        /// Grid size along y (`param2`).
        ny: usize,
    },
}

fn dedup(v: Vec<usize>) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::with_capacity(v.len());
    for r in v {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

impl Topology {
    /// The ranks slice `rank` (of `n`) sends its shared items to.
    pub fn send_to(&self, rank: usize, n: usize) -> Vec<usize> {
        match *self {
            Topology::Ring { clockwise } => {
                vec![if clockwise {
                    (rank + 1) % n
                } else {
                    (rank + n - 1) % n
                }]
            }
            Topology::SliceLeaders { modulus } => {
                let m = modulus.max(1);
                if rank.is_multiple_of(m) {
                    Vec::new()
                } else {
                    vec![rank - rank % m]
                }
            }
            Topology::FocalPlane { .. } => self.grid_neighbours(rank),
        }
    }

    /// The ranks slice `rank` (of `n`) receives shared items from, in the
    /// order they are stored (`"<key>-<rank>"`).
    pub fn receive_from(&self, rank: usize, n: usize) -> Vec<usize> {
        match *self {
            Topology::Ring { clockwise } => {
                vec![if clockwise {
                    (rank + n - 1) % n
                } else {
                    (rank + 1) % n
                }]
            }
            Topology::SliceLeaders { modulus } => {
                let m = modulus.max(1);
                if rank.is_multiple_of(m) {
                    (rank + 1..(rank + m).min(n)).collect()
                } else {
                    Vec::new()
                }
            }
            Topology::FocalPlane { .. } => self.grid_neighbours(rank),
        }
    }

    fn grid_neighbours(&self, rank: usize) -> Vec<usize> {
        let Topology::FocalPlane { nx, ny } = *self else {
            return Vec::new();
        };
        let (x, y) = (rank / ny, rank % ny);
        let at = |x: usize, y: usize| x * ny + y;
        dedup(vec![
            at((x + nx - 1) % nx, y),
            at((x + 1) % nx, y),
            at(x, (y + ny - 1) % ny),
            at(x, (y + 1) % ny),
        ])
    }

    /// Checks that the topology fits `n` slices: a focal plane needs
    /// exactly `param1 × param2` slices.
    pub fn check(&self, n: usize) -> Result<()> {
        if let Topology::FocalPlane { nx, ny } = *self {
            if nx * ny != n {
                return Err(HarnessError::Policy(format!(
                    "topology focalplane {nx}x{ny} needs {} slices, not {n}",
                    nx * ny
                )));
            }
        }
        Ok(())
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
        let stage_name = get_str(p, "stageName")?;
        let name = get_str(p, "name")?
            .or(stage_name.clone())
            .ok_or_else(|| HarnessError::Policy("appStage without a name".into()))?;
        let mut serial_class = none_if_none(get_str(p, "serialClass")?);
        let mut parallel_class = none_if_none(get_str(p, "parallelClass")?);
        // The 2009 form `stageName: "pkg.XStage"` with no classes names a
        // Stage whose parts are `pkg.XStageSerial` and `pkg.XStageParallel`
        // (the naming of pex_harness's stage splitting).
        let mut name = name;
        if let Some(sn) = stage_name.filter(|sn| sn.contains('.')) {
            if serial_class.is_none() && parallel_class.is_none() && !p.exists("name") {
                serial_class = Some(format!("{sn}Serial"));
                parallel_class = Some(format!("{sn}Parallel"));
                name = sn.rsplit('.').next().unwrap_or(&sn).to_string();
            }
        }
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
            serial_class,
            parallel_class,
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
            cfg.topology = topology(&p.get_policy("topology")?)?;
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

/// Parses `topology{type, param1, param2}`.
fn topology(t: &Policy) -> Result<Topology> {
    let kind = get_str(t, "type")?.unwrap_or_else(|| "ring".into());
    let int_param = |name: &str| -> Result<usize> {
        let v = t
            .as_property_set()
            .get_as_i64(name)
            .map_err(|e| HarnessError::Policy(format!("topology {kind}: {name}: {e}")))?;
        if !(1..=4096).contains(&v) {
            return Err(HarnessError::Policy(format!(
                "topology {kind}: {name} must be between 1 and 4096, not {v}"
            )));
        }
        Ok(v as usize)
    };
    match kind.as_str() {
        "ring" => {
            let dir = get_str(t, "param1")?.unwrap_or_else(|| "clockwise".into());
            let clockwise = match dir.as_str() {
                "clockwise" => true,
                "counterclockwise" => false,
                other => {
                    return Err(HarnessError::Policy(format!(
                        "topology.param1 must be clockwise or counterclockwise, not {other:?}"
                    )))
                }
            };
            Ok(Topology::Ring { clockwise })
        }
        "sliceleaders" => Ok(Topology::SliceLeaders {
            modulus: int_param("param1")?,
        }),
        "focalplane" => Ok(Topology::FocalPlane {
            nx: int_param("param1")?,
            ny: int_param("param2")?,
        }),
        other => Err(HarnessError::Policy(format!(
            "topology type {other:?} is not supported (ring, sliceleaders or focalplane)"
        ))),
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
