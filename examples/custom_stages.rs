//! A template `daf` with your own stages.
//!
//! Copy this file into your crate, replace the stages, and run
//!
//! ```text
//! cargo run --example custom_stages -- run template_policy.paf
//! ```
//!
//! It is the whole `daf` command line (every subcommand works), with one
//! difference: `daf run` also knows the stages registered in [`registry`].
//! Here they are the sample stages of pex_harness's examples
//! (`lsst.pexhexamples.pipeline.*`), under their upstream class paths so the
//! upstream pipeline policies run unchanged: `SampleStage` (template,
//! exitevent), `SampleFailingStage` and `AppFailureStage` (failurestage).
//!
//! The registry is a value handed to `daf::cli::run_with_registry` (or, to
//! run without the command line, `daf::harness::run_with_registry`): nothing
//! is registered globally.

use clap::Parser;
use daf::base::PropertySet;
use daf::harness::{
    Clipboard, HarnessError, ParallelStage, Result, SerialStage, StageContext, StageRegistry,
};

/// The stage policy's `RunMode`, or `"None"` (as the upstream samples read it).
fn run_mode(ctx: &StageContext) -> String {
    ctx.policy
        .as_ref()
        .and_then(|p| p.get::<String>("RunMode").ok())
        .unwrap_or_else(|| "None".into())
}

/// What the samples log, also put on the clipboard so a test can check it.
fn record(ctx: &StageContext, cb: &mut Clipboard, key: &str) -> Result<()> {
    let mut ps = PropertySet::new();
    ps.set("rank", ctx.rank as i64)?;
    ps.set("stageId", ctx.stage_id as i64)?;
    ps.set("universeSize", ctx.universe_size as i64)?;
    ps.set("runId", ctx.run_id.as_str())?;
    ps.set("RunMode", run_mode(ctx).as_str())?;
    tracing::info!(stage = %ctx.name, rank = ctx.rank, "{key}: {:?}", ps);
    cb.put(key, ps);
    Ok(())
}

/// `lsst.pexhexamples.pipeline.SampleStageSerial`: logs in pre/postprocess.
pub struct SampleStageSerial;
impl SerialStage for SampleStageSerial {
    fn postprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        record(ctx, cb, "sampleSerial")
    }
}

/// `lsst.pexhexamples.pipeline.SampleStageParallel`: logs in process.
pub struct SampleStageParallel;
impl ParallelStage for SampleStageParallel {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        record(ctx, cb, "sampleParallel")
    }
}

fn bogus_failure(cb: &mut Clipboard, who: &str, phase: &str) -> Result<()> {
    let mut one = PropertySet::new();
    one.set("message", "Calculating variance")?;
    cb.put("onedata", one);
    Err(HarnessError::stage(
        "RuntimeError",
        format!("{who}: Divide by zero occurred in {phase}"),
    ))
}

/// `lsst.pexhexamples.pipeline.SampleFailingStageSerial`: fails in
/// preprocess when `RunMode` is `preprocess`.
pub struct SampleFailingStageSerial;
impl SerialStage for SampleFailingStageSerial {
    fn preprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        if run_mode(ctx) == "preprocess" {
            return bogus_failure(cb, "SampleFailingStageSerial", "preprocess");
        }
        Ok(())
    }
}

/// `lsst.pexhexamples.pipeline.SampleFailingStageParallel`: fails in
/// process when `RunMode` is `process`.
pub struct SampleFailingStageParallel;
impl ParallelStage for SampleFailingStageParallel {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        if run_mode(ctx) == "process" {
            return bogus_failure(cb, "SampleFailingStageParallel", "process");
        }
        Ok(())
    }
}

/// `lsst.pexhexamples.pipeline.AppFailureStage*`: the failure stage; it
/// reads what the harness put on the failed clipboard and leaves a note.
pub struct AppFailureStage;
impl AppFailureStage {
    fn handle(&self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        let stage = match cb.get("failedInStage") {
            Some(daf::harness::Item::Str(s)) => s.clone(),
            _ => return Err(HarnessError::stage("RuntimeError", "no failedInStage")),
        };
        tracing::warn!(rank = ctx.rank, "AppFailureStage: visit failed in {stage}");
        cb.put("appFailureHandled", stage.as_str());
        Ok(())
    }
}
impl SerialStage for AppFailureStage {
    fn preprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        self.handle(ctx, cb)
    }
}
impl ParallelStage for AppFailureStage {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        self.handle(ctx, cb)
    }
}

/// The built-in stages plus this application's, under their class names.
pub fn registry() -> StageRegistry {
    const P: &str = "lsst.pexhexamples.pipeline.";
    let mut r = StageRegistry::with_defaults();
    r.register_serial(&format!("{P}SampleStageSerial"), |_| {
        Ok(Box::new(SampleStageSerial))
    });
    r.register_parallel(&format!("{P}SampleStageParallel"), |_| {
        Ok(Box::new(SampleStageParallel))
    });
    r.register_serial(&format!("{P}SampleFailingStageSerial"), |_| {
        Ok(Box::new(SampleFailingStageSerial))
    });
    r.register_parallel(&format!("{P}SampleFailingStageParallel"), |_| {
        Ok(Box::new(SampleFailingStageParallel))
    });
    r.register_serial(&format!("{P}AppFailureStageSerial"), |_| {
        Ok(Box::new(AppFailureStage))
    });
    r.register_parallel(&format!("{P}AppFailureStageParallel"), |_| {
        Ok(Box::new(AppFailureStage))
    });
    r
}

#[allow(dead_code)] // also compiled into tests/harness_upstream.rs, which has its own main
fn main() {
    let cli = daf::cli::Cli::parse();
    if let Err(e) = daf::cli::run_with_registry(cli, &registry()) {
        eprintln!("custom_stages: {e}");
        std::process::exit(e.code);
    }
}
