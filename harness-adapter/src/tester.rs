//! [`StageTester`]: runs one or more stages on a clipboard, as the master or
//! as one slice, for unit tests of stages (LSST's `SimpleStageTester`).

use std::sync::Arc;

use daf_base::Policy;

use crate::clipboard::Clipboard;
use crate::runner::guarded;
use crate::stage::{ParallelStage, SerialStage, Services, StageContext, StageRegistry};
use crate::Result;

struct Entry {
    ctx: StageContext,
    serial: Box<dyn SerialStage>,
    parallel: Box<dyn ParallelStage>,
}

/// A stage by name, policy and (serial, parallel) class names.
type Spec = (String, Option<Policy>, Option<String>, Option<String>);
/// Stage instances given directly.
type Instances = (Box<dyn SerialStage>, Box<dyn ParallelStage>);

/// Runs stages outside a pipeline.
///
/// Stages get 1-based stage ids in the order added. `run(cb, slice_id)` runs
/// the master side (every stage's `preprocess` then `postprocess`, stage by
/// stage) when `slice_id < 0`, else the worker side (`process`) with rank
/// `slice_id`. Unlike the harness, the first stage error is returned.
///
/// ```
/// use daf_harness::{Clipboard, StageTester, Item};
/// use daf_base::data_id;
/// let mut t = StageTester::new();
/// t.add_registered("share", None, Some("daf.harness.ShareParallel"), None).unwrap();
/// let mut cb = Clipboard::new();
/// cb.put("jobIdentity", data_id! { visit: 7 });
/// let out = t.run(cb, 2).unwrap();
/// assert_eq!(out.get_property_set("slice").unwrap().get::<i64>("value").unwrap(), 702);
/// ```
pub struct StageTester {
    registry: StageRegistry,
    services: Arc<Services>,
    run_id: String,
    universe_size: usize,
    stages: Vec<Spec>,
    custom: Vec<Option<Instances>>,
}

impl Default for StageTester {
    fn default() -> Self {
        Self::new()
    }
}

impl StageTester {
    /// A tester with the default registry and services, run id
    /// `"simpleTest"` and universe size 1.
    pub fn new() -> Self {
        Self::with(
            StageRegistry::with_defaults(),
            Arc::new(Services::with_defaults()),
        )
    }

    /// A tester with a given registry and services.
    pub fn with(registry: StageRegistry, services: Arc<Services>) -> Self {
        StageTester {
            registry,
            services,
            run_id: "simpleTest".into(),
            universe_size: 1,
            stages: Vec::new(),
            custom: Vec::new(),
        }
    }

    /// Sets the run id stages see.
    pub fn run_id(mut self, run_id: &str) -> Self {
        self.run_id = run_id.into();
        self
    }

    /// Sets the universe size stages see.
    pub fn universe_size(mut self, n: usize) -> Self {
        self.universe_size = n;
        self
    }

    /// Adds a stage by registered class names (`None` = NoOp). Unknown names
    /// are reported by [`StageTester::run`].
    pub fn add_registered(
        &mut self,
        name: &str,
        serial_class: Option<&str>,
        parallel_class: Option<&str>,
        policy: Option<Policy>,
    ) -> Result<&mut Self> {
        self.stages.push((
            name.into(),
            policy,
            serial_class.map(str::to_string),
            parallel_class.map(str::to_string),
        ));
        self.custom.push(None);
        Ok(self)
    }

    /// Adds stage instances directly (their `setup` is called by `run`).
    pub fn add_stage(
        &mut self,
        name: &str,
        serial: Box<dyn SerialStage>,
        parallel: Box<dyn ParallelStage>,
        policy: Option<Policy>,
    ) -> &mut Self {
        self.stages.push((name.into(), policy, None, None));
        self.custom.push(Some((serial, parallel)));
        self
    }

    fn build(&mut self, rank: i32) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for (i, (name, policy, s, p)) in self.stages.iter().enumerate() {
            let ctx = StageContext {
                name: name.clone(),
                stage_id: i + 1,
                rank,
                run_id: self.run_id.clone(),
                universe_size: self.universe_size,
                policy: policy.clone(),
                services: self.services.clone(),
                outbox: Default::default(),
            };
            let (serial, parallel) = match self.custom[i].take() {
                Some((mut s, mut p)) => {
                    if rank < 0 {
                        s.setup(&ctx)?;
                    } else {
                        p.setup(&ctx)?;
                    }
                    (s, p)
                }
                None => {
                    let s: Box<dyn SerialStage> = if rank < 0 {
                        self.registry.make_serial(s.as_deref(), &ctx)?
                    } else {
                        Box::new(crate::stage::NoOpSerial)
                    };
                    let p: Box<dyn ParallelStage> = if rank >= 0 {
                        self.registry.make_parallel(p.as_deref(), &ctx)?
                    } else {
                        Box::new(crate::stage::NoOpParallel)
                    };
                    (s, p)
                }
            };
            out.push(Entry {
                ctx,
                serial,
                parallel,
            });
        }
        Ok(out)
    }

    /// Runs every stage on `clipboard`: as the master when `slice_id < 0`,
    /// else as the worker of that rank. Stage instances added with
    /// [`StageTester::add_stage`] are used by the first run only; registered
    /// ones are built afresh for each run.
    pub fn run(&mut self, clipboard: Clipboard, slice_id: i32) -> Result<Clipboard> {
        let mut entries = self.build(slice_id)?;
        let mut cb = clipboard;
        for e in &mut entries {
            let (ctx, cbr) = (&e.ctx, &mut cb);
            if slice_id < 0 {
                let s = &mut e.serial;
                guarded(|| {
                    s.preprocess(ctx, cbr)?;
                    s.postprocess(ctx, cbr)
                })?;
            } else {
                let p = &mut e.parallel;
                guarded(|| p.process(ctx, cbr))?;
            }
        }
        Ok(cb)
    }

    /// [`StageTester::run`] as the master.
    pub fn run_master(&mut self, clipboard: Clipboard) -> Result<Clipboard> {
        self.run(clipboard, -1)
    }

    /// [`StageTester::run`] as slice 0.
    pub fn run_worker(&mut self, clipboard: Clipboard) -> Result<Clipboard> {
        self.run(clipboard, 0)
    }
}
