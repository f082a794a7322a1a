//! The stage API: [`SerialStage`] (the master's `preprocess` / `postprocess`),
//! [`ParallelStage`] (every slice's `process`), the [`StageContext`] each
//! stage sees, and the [`StageRegistry`] that finds stage classes by name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use daf_base::{Policy, PropertySet};
use daf_formatters::FormatterRegistry;
use daf_storages::StorageRegistry;

use crate::butler::ButlerFactory;
use crate::clipboard::Clipboard;
use crate::error::HarnessError;
use crate::events::Published;
use crate::Result;

/// The registries and settings stages share, passed by value (no globals).
#[derive(Clone)]
pub struct Services {
    /// Storages by name (for IO stages).
    pub storages: StorageRegistry,
    /// Formatters by persistable name (for IO stages).
    pub formatters: FormatterRegistry,
    /// The global location map (`input`, `output`, `work` ... → paths) used
    /// first when filling location templates.
    pub location_map: PropertySet,
    /// Makes the butler of IO stages that use the butler method; `None`
    /// makes such stages fail at setup with a clear error.
    pub butler_factory: Option<ButlerFactory>,
    /// Called on the master with the partial report (the visits that
    /// completed, and [`crate::RunReport::lost`]) when a run loses a slice,
    /// before the run ends: `daf run` prints it and writes `--dump` there.
    /// Under MPI it runs just before the master aborts the job.
    pub on_lost: Option<LostHook>,
    /// The run's shutdown request (see [`crate::shutdown`]): the event
    /// listener raises it for events on the `shutdownTopic`, and a stage
    /// may raise it too; the master acts on it.
    pub shutdown: crate::shutdown::ShutdownSignal,
}

/// What [`Services::on_lost`] is called with: the partial report.
pub type LostHook = Arc<dyn Fn(&crate::RunReport) + Send + Sync>;

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("storages", &self.storages)
            .field("formatters", &self.formatters)
            .field("location_map", &self.location_map)
            .field("butler_factory", &self.butler_factory.is_some())
            .field("on_lost", &self.on_lost.is_some())
            .finish()
    }
}

impl Services {
    /// Default storage and formatter registries, an empty location map, no butler.
    pub fn with_defaults() -> Self {
        Services {
            storages: StorageRegistry::with_defaults(),
            formatters: FormatterRegistry::with_defaults(),
            location_map: PropertySet::new(),
            butler_factory: None,
            on_lost: None,
            shutdown: Default::default(),
        }
    }
}

impl Default for Services {
    fn default() -> Self {
        Self::with_defaults()
    }
}

/// What a stage knows about where it runs.
#[derive(Debug, Clone)]
pub struct StageContext {
    /// The `appStage` name.
    pub name: String,
    /// 1-based position of the stage in the pipeline.
    pub stage_id: usize,
    /// −1 on the master, the slice rank (0-based) on a slice.
    pub rank: i32,
    /// The run id.
    pub run_id: String,
    /// Number of processes: slices + 1.
    pub universe_size: usize,
    /// The stage policy (`None` for `stagePolicy: None` or none given).
    pub policy: Option<Policy>,
    /// Registries and the location map.
    pub services: Arc<Services>,
    /// Where [`StageContext::publish`] puts events (one per process).
    pub outbox: Outbox,
}

/// The events a process's stages published during the current visit
/// (shared by the stage contexts of one process; see [`StageContext::publish`]).
#[derive(Debug, Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<Published>>>);

impl Outbox {
    /// Takes every event published so far, labelling them with `visit`.
    pub fn drain(&self, visit: &str) -> Vec<Published> {
        let mut v = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for p in &mut v {
            p.visit = visit.to_string();
        }
        v
    }

    fn push(&self, p: Published) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    }
}

impl StageContext {
    /// A context for tests and tools: stage 1, master rank, run `"test"`.
    pub fn new(name: &str, rank: i32, policy: Option<Policy>, services: Arc<Services>) -> Self {
        StageContext {
            name: name.to_string(),
            stage_id: 1,
            rank,
            run_id: "test".into(),
            universe_size: 1,
            policy,
            services,
            outbox: Outbox::default(),
        }
    }

    /// Publishes `payload` as an event on `topic` (what LSST's EventStage and
    /// the harness's `exitTopic` did through the event broker). The harness
    /// collects it with the visit's outcome ([`crate::ProcessOutcome::published`]);
    /// `daf run --publish FILE` writes it as an event line another pipeline
    /// can read with `--events`.
    pub fn publish(&self, topic: &str, payload: PropertySet) {
        tracing::info!(stage = %self.name, rank = self.rank, "publishes an event on {topic}");
        self.outbox.push(Published {
            topic: topic.to_string(),
            payload,
            stage: self.name.clone(),
            rank: self.rank,
            visit: String::new(),
        });
    }

    /// The policy, or an empty one.
    pub fn policy_or_empty(&self) -> Policy {
        self.policy.clone().unwrap_or_default()
    }
}

/// The serial part of a stage, run on the master. Both steps default to
/// passing the clipboard through.
pub trait SerialStage: Send {
    /// Called once, after construction, before the first visit.
    fn setup(&mut self, _ctx: &StageContext) -> Result<()> {
        Ok(())
    }
    /// Runs before the slices' `process`.
    fn preprocess(&mut self, _ctx: &StageContext, _clipboard: &mut Clipboard) -> Result<()> {
        Ok(())
    }
    /// Runs after every slice has finished `process`.
    fn postprocess(&mut self, _ctx: &StageContext, _clipboard: &mut Clipboard) -> Result<()> {
        Ok(())
    }
}

/// The parallel part of a stage, run on every slice.
pub trait ParallelStage: Send {
    /// Called once, after construction, before the first visit.
    fn setup(&mut self, _ctx: &StageContext) -> Result<()> {
        Ok(())
    }
    /// Processes one visit's clipboard.
    fn process(&mut self, _ctx: &StageContext, _clipboard: &mut Clipboard) -> Result<()> {
        Ok(())
    }
}

/// The serial placeholder for a stage with no serial class.
#[derive(Debug, Default)]
pub struct NoOpSerial;
impl SerialStage for NoOpSerial {}

/// The parallel placeholder for a stage with no parallel class.
#[derive(Debug, Default)]
pub struct NoOpParallel;
impl ParallelStage for NoOpParallel {}

/// Makes a serial stage for a context (its policy is `ctx.policy`).
pub type SerialFactory = Arc<dyn Fn(&StageContext) -> Result<Box<dyn SerialStage>> + Send + Sync>;
/// Makes a parallel stage for a context.
pub type ParallelFactory =
    Arc<dyn Fn(&StageContext) -> Result<Box<dyn ParallelStage>> + Send + Sync>;

/// Stage classes by name: a value passed to the pipeline, not a global.
///
/// [`StageRegistry::with_defaults`] knows the built-in stages under their
/// daf names (`InputStageParallel` ...) and their LSST class paths
/// (`lsst.pex.harness.IOStage.InputStageParallel` ...).
///
/// ```
/// use daf_harness::StageRegistry;
/// let reg = StageRegistry::with_defaults();
/// assert!(reg.has_parallel("lsst.pex.harness.IOStage.OutputStageParallel"));
/// assert!(reg.has_serial("SymLinkStageSerial"));
/// assert!(reg.has_parallel("NoOpParallel"));
/// ```
#[derive(Clone, Default)]
pub struct StageRegistry {
    serial: BTreeMap<String, SerialFactory>,
    parallel: BTreeMap<String, ParallelFactory>,
}

impl std::fmt::Debug for StageRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageRegistry")
            .field("serial", &self.serial.keys().collect::<Vec<_>>())
            .field("parallel", &self.parallel.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl StageRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in stages: IO, symlink, no-op and the harness's test stages.
    pub fn with_defaults() -> Self {
        let mut r = Self::new();
        crate::stages::register_builtin(&mut r);
        r
    }

    /// Registers a serial stage class under `name` (replacing any previous one).
    pub fn register_serial(
        &mut self,
        name: &str,
        factory: impl Fn(&StageContext) -> Result<Box<dyn SerialStage>> + Send + Sync + 'static,
    ) {
        self.serial.insert(name.to_string(), Arc::new(factory));
    }

    /// Registers a parallel stage class under `name` (replacing any previous one).
    pub fn register_parallel(
        &mut self,
        name: &str,
        factory: impl Fn(&StageContext) -> Result<Box<dyn ParallelStage>> + Send + Sync + 'static,
    ) {
        self.parallel.insert(name.to_string(), Arc::new(factory));
    }

    /// Is a serial class registered under `name`?
    pub fn has_serial(&self, name: &str) -> bool {
        self.serial.contains_key(name)
    }

    /// Is a parallel class registered under `name`?
    pub fn has_parallel(&self, name: &str) -> bool {
        self.parallel.contains_key(name)
    }

    /// Builds and sets up serial class `name` (NoOp for `None`).
    pub fn make_serial(
        &self,
        name: Option<&str>,
        ctx: &StageContext,
    ) -> Result<Box<dyn SerialStage>> {
        let mut stage: Box<dyn SerialStage> = match name {
            None => Box::new(NoOpSerial),
            Some(n) => {
                let f = self
                    .serial
                    .get(n)
                    .ok_or_else(|| HarnessError::UnknownStage {
                        kind: "serial",
                        name: n.into(),
                        known: self.serial.keys().cloned().collect::<Vec<_>>().join(", "),
                    })?;
                f(ctx)?
            }
        };
        stage.setup(ctx)?;
        Ok(stage)
    }

    /// Builds and sets up parallel class `name` (NoOp for `None`).
    pub fn make_parallel(
        &self,
        name: Option<&str>,
        ctx: &StageContext,
    ) -> Result<Box<dyn ParallelStage>> {
        let mut stage: Box<dyn ParallelStage> = match name {
            None => Box::new(NoOpParallel),
            Some(n) => {
                let f = self
                    .parallel
                    .get(n)
                    .ok_or_else(|| HarnessError::UnknownStage {
                        kind: "parallel",
                        name: n.into(),
                        known: self.parallel.keys().cloned().collect::<Vec<_>>().join(", "),
                    })?;
                f(ctx)?
            }
        };
        stage.setup(ctx)?;
        Ok(stage)
    }
}
