//! # daf-harness
//!
//! A minimal pipeline harness — one master Pipeline and N Slice workers, on
//! threads or (feature `mpi`) on MPI ranks — with the IO stages that plug
//! persistence and the butler into it.
//!
//! A pipeline policy lists stages ([`PipelineConfig`], `appStage` entries);
//! each stage has a serial part run on the master ([`SerialStage`]:
//! `preprocess` / `postprocess`) and a parallel part run on every slice
//! ([`ParallelStage`]: `process`), found by class name in a
//! [`StageRegistry`]. Each visit is driven by an [`Event`]; stages pass data
//! on a [`Clipboard`]. Per visit the master preprocesses, every slice
//! processes, the master postprocesses — stage after stage. A failing stage
//! flags the visit in its own process only; the optional failure stage gets
//! the failed clipboard with `failedInStage`, `failureType` and
//! `failureMessage`, and an empty clipboard goes on.
//!
//! Depends on every other daf crate. Start reading at [`run_threads`] and
//! [`stage`], then the built-in stages in [`stages`] and [`StageTester`].
//!
//! **Your own stages**: implement [`SerialStage`] / [`ParallelStage`],
//! register factories under class names in a [`StageRegistry`] (a value —
//! no global state), and run a pipeline policy with
//! [`run_with_registry`] (what `daf run` does, see [`launch`]). The
//! `daf-cli` crate's `examples/custom_stages.rs` is a template binary.
//!
//! ```
//! use std::sync::Arc;
//! use daf_base::{data_id, Policy};
//! use daf_harness::{run_threads, Event, PipelineConfig, RunOptions, Services, StageRegistry};
//! let mut p = Policy::new();
//! let mut st = Policy::new();
//! st.set("name", "noop").unwrap();
//! st.set("parallelClass", "NoOpParallel").unwrap();
//! p.add("appStage", st.into_property_set()).unwrap();
//! let cfg = PipelineConfig::from_policy(&p).unwrap();
//! let events = (1..=3).map(|v| Ok(Event::with_job_identity(data_id! { visit: v })));
//! let report = run_threads(&cfg, &StageRegistry::with_defaults(),
//!     Arc::new(Services::with_defaults()), events, Some(4), &RunOptions::default()).unwrap();
//! assert_eq!(report.visits.len(), 3);
//! assert_eq!(report.visits[2].slices[3].summary["jobIdentity"]["visit"], 3);
//! ```

pub mod additional_data;
pub mod butler;
pub mod clipboard;
pub mod config;
pub mod error;
pub mod events;
pub mod launch;
pub mod location;
#[cfg(feature = "mpi")]
pub mod mpi_transport;
pub mod repo_butler;
pub mod runner;
pub mod shutdown;
pub mod stage;
pub mod stages;
pub mod tester;
pub mod threads;

pub use butler::{ButlerFactory, ButlerSpec, DataButler};
pub use clipboard::{Clipboard, Dataset, Item, Queue};
pub use config::{AppStage, PipelineConfig, Topology};
pub use error::HarnessError;
pub use events::{read_events, Event, Published};
pub use launch::{run_with_registry, RunRequest};
pub use runner::{Failure, LostSlice, ProcessOutcome, RunOptions, RunReport, VisitReport};
pub use shutdown::{ShutdownLevel, ShutdownReport, ShutdownSignal};
pub use stage::{
    LostHook, Outbox, ParallelStage, SerialStage, Services, StageContext, StageRegistry,
};
pub use tester::StageTester;
pub use threads::run_threads;

/// Result alias for harness operations.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
