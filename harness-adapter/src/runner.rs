//! The per-process side of a run, shared by every transport: the master's
//! serial stages and a slice's parallel stages, the per-visit state, failure
//! handling, and the reports a run returns.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use daf_base::PropertySet;
use serde::{Deserialize, Serialize};

use crate::clipboard::{Clipboard, Item};
use crate::config::{AppStage, PipelineConfig};
use crate::error::HarnessError;
use crate::events::{property_set_to_json, Event, Published};
use crate::stage::{Outbox, ParallelStage, SerialStage, Services, StageContext, StageRegistry};
use crate::Result;

/// Why a visit failed in one process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The stage that failed (`failedInStage`).
    pub stage: String,
    /// Its 1-based position (`failedInStageN`).
    pub stage_n: usize,
    /// The error kind (`failureType`).
    pub failure_type: String,
    /// The error message (`failureMessage`).
    pub message: String,
}

/// What one process (master or slice) ended a visit with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessOutcome {
    /// −1 for the master, else the slice rank.
    pub rank: i32,
    /// The final clipboard, summarised as JSON (see [`summarize`]).
    pub summary: serde_json::Value,
    /// Set when the visit failed in this process.
    pub failure: Option<Failure>,
    /// The final clipboard itself, when [`RunOptions::keep_clipboards`] is set
    /// (thread transport only).
    #[serde(skip)]
    pub clipboard: Option<Clipboard>,
    /// The events this process's stages published during the visit
    /// ([`StageContext::publish`]), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
}

/// Where a run lost a slice (see [`RunReport::lost`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LostSlice {
    /// The slice rank (MPI rank − 1), or −1 when it is not known which.
    pub rank: i32,
    /// The label of the visit that was running.
    pub visit: String,
    /// The stage that was running (`name (#n)`), or `end of visit`.
    pub stage: String,
    /// What happened.
    pub message: String,
}

/// One visit of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisitReport {
    /// 0-based visit number.
    pub visit: usize,
    /// The visit's label: its event's job identity (`visit=1 ccd=2`), else
    /// its payload's `visitId`, else `#<number>` (see [`Event::label`]).
    #[serde(default)]
    pub id: String,
    /// The master's outcome.
    pub master: ProcessOutcome,
    /// Every slice's outcome, by rank.
    pub slices: Vec<ProcessOutcome>,
    /// Wall time of the visit.
    #[serde(skip)]
    pub elapsed: Duration,
}

impl VisitReport {
    /// True when no process failed.
    pub fn ok(&self) -> bool {
        self.master.failure.is_none() && self.slices.iter().all(|s| s.failure.is_none())
    }
}

/// What a run returns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunReport {
    /// The visits, in order.
    pub visits: Vec<VisitReport>,
    /// Number of slices.
    pub n_slices: usize,
    /// Wall time of the run (setup included).
    #[serde(skip)]
    pub elapsed: Duration,
    /// The pipeline's `exitTopic` event (`message = "exiting_<runId>"`),
    /// published when the run ends normally (end of events or shutdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_event: Option<Published>,
    /// Set in a partial report: the run lost a slice (it died or stopped
    /// answering), and `visits` holds the visits that completed before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostSlice>,
    /// Set when a shutdown event (or a stage) stopped the run: where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<crate::shutdown::ShutdownReport>,
}

impl RunReport {
    /// Number of (visit, process) pairs that failed.
    pub fn failures(&self) -> usize {
        self.visits
            .iter()
            .map(|v| {
                usize::from(v.master.failure.is_some())
                    + v.slices.iter().filter(|s| s.failure.is_some()).count()
            })
            .sum()
    }

    /// Every published event in order: each visit's (master first, then the
    /// slices by rank), then the exit event.
    pub fn published(&self) -> Vec<&Published> {
        self.visits
            .iter()
            .flat_map(|v| {
                v.master
                    .published
                    .iter()
                    .chain(v.slices.iter().flat_map(|s| s.published.iter()))
            })
            .chain(self.exit_event.iter())
            .collect()
    }

    /// The outcomes as JSON, for comparing runs across transports.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run id stages see.
    pub run_id: String,
    /// Keep each process's final clipboard in the report (threads only).
    pub keep_clipboards: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            run_id: "run".into(),
            keep_clipboards: false,
        }
    }
}

/// A deterministic JSON summary of a clipboard: property sets and scalars by
/// value, dataset lists by value, objects by persistable name.
pub fn summarize(cb: &Clipboard) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, item, _) in cb.iter() {
        let v = match item {
            Item::PropertySet(ps) => property_set_to_json(ps),
            Item::Object(o) => serde_json::json!({ "object": o.persistable_name() }),
            Item::Objects(v) => serde_json::json!({
                "objects": v.iter().map(|o| o.persistable_name().to_string()).collect::<Vec<_>>()
            }),
            Item::Datasets(d) => serde_json::to_value(d).unwrap_or_default(),
            Item::JobIdentity(id) => serde_json::to_value(id).unwrap_or_default(),
            Item::Str(s) => serde_json::json!(s),
            Item::Int(i) => serde_json::json!(i),
            Item::Float(f) => serde_json::json!(f),
            Item::Bool(b) => serde_json::json!(b),
        };
        m.insert(k.to_string(), v);
    }
    serde_json::Value::Object(m)
}

/// One visit in one process.
#[derive(Debug, Default)]
pub(crate) struct VisitState {
    pub cb: Clipboard,
    pub failure: Option<Failure>,
}

impl VisitState {
    pub(crate) fn start(ev: &Event) -> VisitState {
        let mut cb = Clipboard::new();
        if let Some(id) = &ev.job_identity {
            cb.put("jobIdentity", id.clone());
        }
        if let Some(ds) = &ev.input_datasets {
            cb.put("inputDatasets", ds.clone());
        }
        for (k, v) in &ev.clipboard {
            if let Ok(item) = crate::events::plain_item(v) {
                cb.put(k.clone(), item);
            }
        }
        VisitState { cb, failure: None }
    }

    pub(crate) fn finish(self, rank: i32, keep: bool, published: Vec<Published>) -> ProcessOutcome {
        ProcessOutcome {
            rank,
            summary: summarize(&self.cb),
            failure: self.failure,
            clipboard: keep.then_some(self.cb),
            published,
        }
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Runs `f`, turning a panic into [`HarnessError::Panic`].
pub(crate) fn guarded(f: impl FnOnce() -> Result<()>) -> Result<()> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(HarnessError::Panic(panic_message(p))),
    }
}

fn failure_type(e: &HarnessError) -> String {
    match e {
        HarnessError::Stage { kind, .. } => kind.clone(),
        other => other.kind().to_string(),
    }
}

fn failure_message(e: &HarnessError) -> String {
    match e {
        HarnessError::Stage { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// What daf can say for `failureTraceback`: Rust errors carry no stack of
/// the stage's frames, so it is the error, its chain of causes, and where it
/// happened (stage, position, rank, run).
fn traceback(err: &HarnessError, ctx: &StageContext) -> String {
    let mut t = format!("{}: {}\n", failure_type(err), failure_message(err));
    let mut src = std::error::Error::source(err);
    while let Some(e) = src {
        t.push_str(&format!("  caused by: {e}\n"));
        src = e.source();
    }
    let place = if ctx.rank < 0 {
        "master".to_string()
    } else {
        format!("slice {}", ctx.rank)
    };
    t.push_str(&format!(
        "  in stage {} (#{}) on the {place}, run {}",
        ctx.name, ctx.stage_id, ctx.run_id
    ));
    t
}

/// Records a failure: log, flag, hand the failed clipboard to the failure
/// stage, continue with an empty clipboard.
fn fail(
    st: &mut VisitState,
    ctx: &StageContext,
    err: HarnessError,
    on_failed: impl FnOnce(&mut Clipboard),
) {
    let failure = Failure {
        stage: ctx.name.clone(),
        stage_n: ctx.stage_id,
        failure_type: failure_type(&err),
        message: failure_message(&err),
    };
    tracing::error!(
        stage = %ctx.name, rank = ctx.rank, run = %ctx.run_id,
        "stage failed ({}): {}", failure.failure_type, failure.message
    );
    let mut failed = std::mem::take(&mut st.cb);
    failed.put("failedInStage", failure.stage.as_str());
    failed.put("failedInStageN", failure.stage_n as i64);
    failed.put("failureType", failure.failure_type.as_str());
    failed.put("failureMessage", failure.message.as_str());
    failed.put("failureTraceback", traceback(&err, ctx).as_str());
    on_failed(&mut failed);
    st.failure = Some(failure);
}

#[allow(clippy::too_many_arguments)]
fn context(
    s: &AppStage,
    stage_id: usize,
    rank: i32,
    run_id: &str,
    universe: usize,
    services: &Arc<Services>,
    outbox: &Outbox,
) -> StageContext {
    StageContext {
        name: s.name.clone(),
        stage_id,
        rank,
        run_id: run_id.to_string(),
        universe_size: universe,
        policy: s.stage_policy.clone(),
        services: services.clone(),
        outbox: outbox.clone(),
    }
}

/// The `exitTopic` event of a run that ended normally.
pub(crate) fn exit_event(cfg: &PipelineConfig, run_id: &str) -> Option<Published> {
    cfg.exit_topic.as_deref().map(|t| {
        tracing::info!("publishing the exit event on {t}");
        Published::exit(t, run_id)
    })
}

/// The master's stages.
pub(crate) struct Master {
    stages: Vec<(StageContext, Box<dyn SerialStage>, Option<String>)>,
    failure: Option<(StageContext, Box<dyn SerialStage>)>,
    pub(crate) outbox: Outbox,
}

impl Master {
    pub(crate) fn build(
        cfg: &PipelineConfig,
        reg: &StageRegistry,
        services: &Arc<Services>,
        run_id: &str,
        n_slices: usize,
    ) -> Result<Master> {
        let u = n_slices + 1;
        let outbox = Outbox::default();
        let mut stages = Vec::new();
        for (i, s) in cfg.stages.iter().enumerate() {
            let ctx = context(s, i + 1, -1, run_id, u, services, &outbox);
            let st = reg.make_serial(s.serial_class.as_deref(), &ctx)?;
            stages.push((ctx, st, s.event_topic.clone()));
        }
        let failure = match &cfg.failure_stage {
            Some(s) => {
                let ctx = context(s, cfg.stages.len() + 1, -1, run_id, u, services, &outbox);
                let st = reg.make_serial(s.serial_class.as_deref(), &ctx)?;
                Some((ctx, st))
            }
            None => None,
        };
        Ok(Master {
            stages,
            failure,
            outbox,
        })
    }

    pub(crate) fn n_stages(&self) -> usize {
        self.stages.len()
    }

    /// Puts the event payload and runs stage `i`'s preprocess.
    pub(crate) fn pre(&mut self, i: usize, st: &mut VisitState, ev: &Event) {
        if st.failure.is_some() {
            return;
        }
        let (ctx, stage, topic) = &mut self.stages[i];
        if let Some(t) = topic {
            st.cb.put(t.clone(), ev.payload_for(t).clone());
        }
        let cb = &mut st.cb;
        if let Err(e) = guarded(|| stage.preprocess(ctx, cb)) {
            let fs = &mut self.failure;
            fail(st, ctx, e, |failed| run_failure_serial(fs, failed));
        }
    }

    /// Runs stage `i`'s postprocess.
    pub(crate) fn post(&mut self, i: usize, st: &mut VisitState) {
        if st.failure.is_some() {
            return;
        }
        let (ctx, stage, _) = &mut self.stages[i];
        let cb = &mut st.cb;
        if let Err(e) = guarded(|| stage.postprocess(ctx, cb)) {
            let fs = &mut self.failure;
            fail(st, ctx, e, |failed| run_failure_serial(fs, failed));
        }
    }
}

fn run_failure_serial(
    fs: &mut Option<(StageContext, Box<dyn SerialStage>)>,
    failed: &mut Clipboard,
) {
    if let Some((ctx, stage)) = fs {
        let r = guarded(|| {
            stage.preprocess(ctx, failed)?;
            stage.postprocess(ctx, failed)
        });
        if let Err(e) = r {
            tracing::error!(stage = %ctx.name, "failure stage failed: {e}");
        }
    }
}

/// A slice's stage: context, instance, event topic, shares data.
type SliceStage = (StageContext, Box<dyn ParallelStage>, Option<String>, bool);

/// One slice's stages.
pub(crate) struct Slice {
    pub(crate) rank: i32,
    stages: Vec<SliceStage>,
    failure: Option<(StageContext, Box<dyn ParallelStage>)>,
    pub(crate) outbox: Outbox,
}

impl Slice {
    pub(crate) fn build(
        cfg: &PipelineConfig,
        reg: &StageRegistry,
        services: &Arc<Services>,
        run_id: &str,
        n_slices: usize,
        rank: i32,
    ) -> Result<Slice> {
        let u = n_slices + 1;
        let outbox = Outbox::default();
        let mut stages = Vec::new();
        for (i, s) in cfg.stages.iter().enumerate() {
            let ctx = context(s, i + 1, rank, run_id, u, services, &outbox);
            let st = reg.make_parallel(s.parallel_class.as_deref(), &ctx)?;
            stages.push((
                ctx,
                st,
                s.event_topic.clone(),
                cfg.share_data_on && s.share_data,
            ));
        }
        let failure = match &cfg.failure_stage {
            Some(s) => {
                let ctx = context(s, cfg.stages.len() + 1, rank, run_id, u, services, &outbox);
                let st = reg.make_parallel(s.parallel_class.as_deref(), &ctx)?;
                Some((ctx, st))
            }
            None => None,
        };
        Ok(Slice {
            rank,
            stages,
            failure,
            outbox,
        })
    }

    /// Does stage `i` exchange shared items before `process`?
    pub(crate) fn shares(&self, i: usize) -> bool {
        self.stages[i].3
    }

    /// Runs stage `i`'s process (after putting the event payload).
    pub(crate) fn process(&mut self, i: usize, st: &mut VisitState, ev: &Event) {
        if st.failure.is_some() {
            return;
        }
        let (ctx, stage, topic, _) = &mut self.stages[i];
        if let Some(t) = topic {
            st.cb.put(t.clone(), ev.payload_for(t).clone());
        }
        let cb = &mut st.cb;
        if let Err(e) = guarded(|| stage.process(ctx, cb)) {
            let fs = &mut self.failure;
            fail(st, ctx, e, |failed| {
                if let Some((fctx, fstage)) = fs {
                    if let Err(e) = guarded(|| fstage.process(fctx, failed)) {
                        tracing::error!(stage = %fctx.name, "failure stage failed: {e}");
                    }
                }
            });
        }
    }
}

/// The shared property sets of a clipboard, to send to neighbours.
/// Shared items that are not property sets are not sent (logged).
pub(crate) fn shared_items(cb: &Clipboard) -> Vec<(String, PropertySet)> {
    let mut out = Vec::new();
    for (k, item, shared) in cb.iter() {
        if !shared {
            continue;
        }
        match item {
            Item::PropertySet(ps) => out.push((k.to_string(), ps.clone())),
            other => tracing::warn!("shared item {k} is a {} and is not sent", other.kind()),
        }
    }
    out
}

/// Stores items received from slice `from` as non-shared `"<key>-<from>"`.
pub(crate) fn receive_shared(cb: &mut Clipboard, from: usize, items: Vec<(String, PropertySet)>) {
    for (k, ps) in items {
        cb.put(format!("{k}-{from}"), ps);
    }
}
