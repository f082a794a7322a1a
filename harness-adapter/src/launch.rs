//! Running a pipeline policy the way `daf run` does, with **your** stages:
//! [`run_with_registry`].
//!
//! `daf run` knows the built-in stages only. An operator with application
//! stages (Rust, or a foreign-language wrapper such as Python) builds a
//! [`StageRegistry`] — the built-in stages plus named factories of their own
//! — and hands it, as a value, to [`run_with_registry`] together with a
//! [`RunRequest`] (what `daf run`'s arguments say). Nothing is registered
//! globally: two runs in one process may use two different registries.
//!
//! ```
//! use daf_harness::launch::{run_with_registry, RunRequest};
//! use daf_harness::{Clipboard, ParallelStage, StageContext, StageRegistry};
//!
//! struct Hello;
//! impl ParallelStage for Hello {
//!     fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> daf_harness::Result<()> {
//!         cb.put("greeting", format!("hello from slice {}", ctx.rank).as_str());
//!         Ok(())
//!     }
//! }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let pipeline = dir.path().join("hello.paf");
//! std::fs::write(&pipeline, "nSlices: 2\nappStage: {\n name: \"hi\"\n parallelClass: \"my.Hello\"\n}\n").unwrap();
//! let mut registry = StageRegistry::with_defaults();
//! registry.register_parallel("my.Hello", |_ctx| Ok(Box::new(Hello)));
//! let report = run_with_registry(&RunRequest::new(&pipeline), &registry).unwrap().unwrap();
//! assert_eq!(report.visits[0].slices[1].summary["greeting"], "hello from slice 1");
//! ```

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use daf_base::Policy;

use crate::config::PipelineConfig;
use crate::error::HarnessError;
use crate::events::{read_events, Event};
use crate::runner::{RunOptions, RunReport};
use crate::stage::{Services, StageRegistry};
use crate::Result;

/// Which transport runs the slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportChoice {
    /// MPI when launched by `mpirun` (and built with feature `mpi`), else threads.
    #[default]
    Auto,
    /// Slices are threads of this process.
    Threads,
    /// Rank 0 is the master, ranks 1..N−1 the slices (needs feature `mpi`).
    Mpi,
}

/// Where a run's events come from.
#[derive(Debug, Clone, Default)]
pub enum EventSource {
    /// One visit with an empty event.
    #[default]
    Single,
    /// JSON lines on standard input.
    Stdin,
    /// A JSON-lines file.
    File(PathBuf),
    /// Events given in code.
    Events(Vec<Event>),
}

impl EventSource {
    /// `None` → one empty event, `"-"` → stdin, else a file path (as `daf run --events`).
    pub fn from_arg(arg: Option<&str>) -> EventSource {
        match arg {
            None => EventSource::Single,
            Some("-") => EventSource::Stdin,
            Some(f) => EventSource::File(PathBuf::from(f)),
        }
    }

    /// The events as a lazy stream.
    pub fn open(&self) -> Result<Box<dyn Iterator<Item = Result<Event>>>> {
        Ok(match self {
            EventSource::Single => Box::new(std::iter::once(Ok(Event::default()))),
            EventSource::Stdin => Box::new(read_events(BufReader::new(std::io::stdin()), "stdin")),
            EventSource::File(f) => {
                let file = std::fs::File::open(f)
                    .map_err(|e| HarnessError::io("open events file", f, e))?;
                Box::new(read_events(BufReader::new(file), &f.display().to_string()))
            }
            EventSource::Events(v) => Box::new(v.clone().into_iter().map(Ok)),
        })
    }
}

/// What to run: the arguments of `daf run` as a value.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The pipeline policy file (`.paf`, `.policy`, `.yaml`).
    pub pipeline: PathBuf,
    /// The events.
    pub events: EventSource,
    /// Number of slices (threads); overrides the policy's `nSlices`.
    pub slices: Option<usize>,
    /// The run id stages see (and `runDirPattern` uses).
    pub run_id: String,
    /// Extra location-map entries, after the policy's `dir` entries.
    pub locations: Vec<(String, String)>,
    /// The transport.
    pub transport: TransportChoice,
}

impl RunRequest {
    /// Runs `pipeline` with one empty event, the policy's `nSlices`, run id
    /// `run`, transport `Auto`.
    pub fn new(pipeline: impl AsRef<Path>) -> Self {
        RunRequest {
            pipeline: pipeline.as_ref().to_path_buf(),
            events: EventSource::Single,
            slices: None,
            run_id: "run".into(),
            locations: Vec::new(),
            transport: TransportChoice::Auto,
        }
    }
}

/// Loads a pipeline policy file (PAF, `.policy` or YAML; `@file` stage
/// policies relative to its directory) and resolves its `dir` map for `run_id`.
pub fn load_pipeline(path: &Path, run_id: &str) -> Result<PipelineConfig> {
    let policy = Policy::load(path)
        .map_err(|e| HarnessError::Policy(format!("pipeline policy {}: {e}", path.display())))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let loader = |p: &Path| {
        Policy::load(p).map_err(|e| HarnessError::Policy(format!("{}: {e}", p.display())))
    };
    let mut cfg = PipelineConfig::from_policy_with(&policy, &base, &loader)
        .map_err(|e| HarnessError::Policy(format!("pipeline policy {}: {e}", path.display())))?;
    cfg.resolve_dirs(&policy, run_id)?;
    Ok(cfg)
}

/// The services of a command-line run: default storage and formatter
/// registries, the pipeline's location map plus `locations`, and
/// `daf-butler`'s Butler for IO stages that use the butler method.
pub fn default_services(cfg: &PipelineConfig, locations: &[(String, String)]) -> Result<Services> {
    let mut s = Services::with_defaults();
    s.location_map = cfg.location_map.clone();
    s.butler_factory = Some(crate::repo_butler::butler_factory(None));
    for (k, v) in locations {
        s.location_map.set(k, v.as_str())?;
    }
    Ok(s)
}

/// Does this request run on MPI?
pub fn uses_mpi(t: TransportChoice) -> Result<bool> {
    match t {
        TransportChoice::Threads => Ok(false),
        #[cfg(feature = "mpi")]
        TransportChoice::Mpi => Ok(true),
        #[cfg(feature = "mpi")]
        TransportChoice::Auto => Ok(crate::mpi_transport::launched_by_mpi()),
        #[cfg(not(feature = "mpi"))]
        TransportChoice::Mpi => Err(HarnessError::Transport(
            "this daf was built without MPI support: rebuild with `--features mpi`".into(),
        )),
        #[cfg(not(feature = "mpi"))]
        TransportChoice::Auto => Ok(false),
    }
}

/// Runs `req` with the stages of `registry` and [`default_services`].
/// Returns the report on the process that ran the master (`None` on MPI
/// slice ranks).
pub fn run_with_registry(req: &RunRequest, registry: &StageRegistry) -> Result<Option<RunReport>> {
    let cfg = load_pipeline(&req.pipeline, &req.run_id)?;
    let services = default_services(&cfg, &req.locations)?;
    run_loaded(&cfg, req, registry, services)
}

/// Runs an already loaded pipeline with the given services (for callers
/// that bring their own butler factory, storages or formatters).
pub fn run_loaded(
    cfg: &PipelineConfig,
    req: &RunRequest,
    registry: &StageRegistry,
    services: Services,
) -> Result<Option<RunReport>> {
    let services = Arc::new(services);
    let opts = RunOptions {
        run_id: req.run_id.clone(),
        keep_clipboards: false,
    };
    // Events on the policy's shutdownTopic are shutdown requests, read
    // ahead of the visits by a listener (see crate::shutdown).
    let events: Box<dyn Iterator<Item = Result<crate::events::Event>>> = match &cfg.shutdown_topic {
        Some(t) => Box::new(crate::shutdown::listen(
            req.events.clone(),
            t.clone(),
            services.shutdown.clone(),
        )?),
        None => req.events.open()?,
    };
    if uses_mpi(req.transport)? {
        #[cfg(feature = "mpi")]
        {
            if req.slices.is_some() {
                tracing::warn!("--slices is ignored under MPI (slices = ranks − 1)");
            }
            return crate::mpi_transport::run_mpi(cfg, registry, services, events, &opts);
        }
        #[cfg(not(feature = "mpi"))]
        unreachable!("uses_mpi is false without the mpi feature")
    }
    crate::threads::run_threads(cfg, registry, services, events, req.slices, &opts).map(Some)
}
