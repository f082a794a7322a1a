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
//! exitevent), `SampleFailingStage` and `AppFailureStage` (failurestage),
//! `ShutdownTestStage` (shutdowntest), the association stages, and the
//! `lsst.pexhexamples.apps.*` stages of the ring, syncslices (focal plane),
//! eventstage and inputoutput examples.
//!
//! The registry is a value handed to `daf_cli::cli::run_with_registry` (or, to
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

/// `lsst.pexhexamples.apps.SyncSetupStage*` (ring and syncslices examples):
/// the master puts `redKey {redHerring: rank}`; each slice puts a *shared*
/// `rankKey {sliceRank, Level}` for the next stage to exchange.
pub struct SyncSetupStage;
impl SerialStage for SyncSetupStage {
    fn preprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        let mut ps = PropertySet::new();
        ps.set("redHerring", ctx.rank as i64)?;
        cb.put("redKey", ps);
        Ok(())
    }
}
impl ParallelStage for SyncSetupStage {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        let mut ps = PropertySet::new();
        ps.set("sliceRank", ctx.rank as i64)?;
        ps.set("Level", "Debug")?;
        cb.put_shared("rankKey", ps);
        Ok(())
    }
}

/// `lsst.pexhexamples.apps.SyncTestStage*`: each slice lists what it
/// received from its neighbours (`rankKey-<n>`) as `syncTest {from: [n ...],
/// sliceRanks: [their sliceRank ...]}`.
pub struct SyncTestStage;
impl SerialStage for SyncTestStage {}
impl ParallelStage for SyncTestStage {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        let mut ps = PropertySet::new();
        ps.set("rank", ctx.rank as i64)?;
        for key in cb.keys() {
            let Some(from) = key.strip_prefix("rankKey-") else {
                continue;
            };
            let got = cb.get_property_set(&key)?;
            ps.add("from", from.parse::<i64>().unwrap_or(-1))?;
            ps.add("sliceRanks", got.get::<i64>("sliceRank")?)?;
        }
        tracing::info!(rank = ctx.rank, "SyncTestStage received {:?}", ps);
        cb.put("syncTest", ps);
        Ok(())
    }
}

/// `lsst.pexhexamples.apps.App1StageSerial` (eventstage example): puts
/// `outgoingKey {visitId: 1, FOVRa, FOVDec}` for the EventStage to publish.
pub struct App1Stage;
impl SerialStage for App1Stage {
    fn preprocess(&mut self, _ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        let mut ps = PropertySet::new();
        ps.set("visitId", 1i64)?;
        ps.set("FOVRa", 273.48066298343)?;
        ps.set("FOVDec", -27.125)?;
        cb.put("outgoingKey", ps);
        Ok(())
    }
}

/// The association example's stages (`LoadStage`, `MatchDiaSourceStage`,
/// `MatchMopStage`, `StoreStage`): each reads `visitId`, `FOVRa` and
/// `FOVDec` from whatever event payloads are on the clipboard and records
/// them under its own name (`loadStage`, ...), as the samples print them.
pub struct EventReader(&'static str);
impl EventReader {
    fn read(&self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        let mut seen = PropertySet::new();
        seen.set("rank", ctx.rank as i64)?;
        for key in cb.keys() {
            let Ok(ps) = cb.get_property_set(&key) else {
                continue;
            };
            for name in ["visitId", "FOVRa", "FOVDec"] {
                if ps.exists(name) {
                    let v = ps.get_as_f64(name)?;
                    seen.set(&format!("{key}.{name}"), v)?;
                }
            }
        }
        cb.put(self.0, seen);
        Ok(())
    }
}
impl SerialStage for EventReader {
    fn preprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        self.read(ctx, cb)
    }
}
impl ParallelStage for EventReader {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        self.read(ctx, cb)
    }
}

/// `lsst.pexhexamples.pipeline.ShutdownTestStage*`: the slice "wastes
/// time" (a few short sleeps) in process and counts its loops.
pub struct ShutdownTestStage;
impl SerialStage for ShutdownTestStage {}
impl ParallelStage for ShutdownTestStage {
    fn process(&mut self, _ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        for _ in 0..3 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        cb.put("shutdownTestLoops", 3i64);
        Ok(())
    }
}

/// `lsst.pexhexamples.apps.IPDPStageParallel` (inputoutput example): shows
/// what the InputStage read, the PropertySet `theProperty`, logging each
/// name with its value as a string and recording them as `ipdp {name:
/// value}`.
pub struct IpdpStage;
impl ParallelStage for IpdpStage {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        let input = cb.get_property_set("theProperty")?.clone();
        let mut shown = PropertySet::new();
        for name in input.param_names() {
            let value = input
                .values(&name)
                .and_then(|v| v.text_at(0))
                .unwrap_or_default();
            tracing::info!(rank = ctx.rank, "inputImage property {name} {value}");
            shown.set(&name, value.as_str())?;
        }
        cb.put("ipdp", shown);
        Ok(())
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
    r.register_serial(&format!("{P}ShutdownTestStageSerial"), |_| {
        Ok(Box::new(ShutdownTestStage))
    });
    r.register_parallel(&format!("{P}ShutdownTestStageParallel"), |_| {
        Ok(Box::new(ShutdownTestStage))
    });
    for (class, key) in [
        ("LoadStage", "loadStage"),
        ("MatchDiaSourceStage", "matchDiaSourceStage"),
        ("MatchMopStage", "matchMopStage"),
        ("StoreStage", "storeStage"),
    ] {
        r.register_serial(&format!("{P}{class}Serial"), move |_| {
            Ok(Box::new(EventReader(key)))
        });
        r.register_parallel(&format!("{P}{class}Parallel"), move |_| {
            Ok(Box::new(EventReader(key)))
        });
    }
    const A: &str = "lsst.pexhexamples.apps.";
    r.register_serial(&format!("{A}SyncSetupStageSerial"), |_| {
        Ok(Box::new(SyncSetupStage))
    });
    r.register_parallel(&format!("{A}SyncSetupStageParallel"), |_| {
        Ok(Box::new(SyncSetupStage))
    });
    r.register_serial(&format!("{A}SyncTestStageSerial"), |_| {
        Ok(Box::new(SyncTestStage))
    });
    r.register_parallel(&format!("{A}SyncTestStageParallel"), |_| {
        Ok(Box::new(SyncTestStage))
    });
    r.register_serial(&format!("{A}App1StageSerial"), |_| Ok(Box::new(App1Stage)));
    r.register_parallel(&format!("{A}IPDPStageParallel"), |_| {
        Ok(Box::new(IpdpStage))
    });
    r
}

#[allow(dead_code)] // also compiled into tests/harness_upstream.rs, which has its own main
fn main() {
    let cli = daf_cli::cli::Cli::parse();
    if let Err(e) = daf_cli::cli::run_with_registry(cli, &registry()) {
        eprintln!("custom_stages: {e}");
        std::process::exit(e.code);
    }
}
