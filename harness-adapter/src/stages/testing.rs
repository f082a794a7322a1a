//! Small stages for tests, benchmarks and the MPI check.
//!
//! * `daf.harness.FailParallel` / `daf.harness.FailSerial`: fail (type
//!   `InjectedFailure`) when the job identity's `visit` equals the policy's
//!   `failVisit` and (parallel only) the rank equals `failRank` (any rank when
//!   absent). `panic: true` panics instead of returning an error;
//!   `exit: <code>` ends the whole process (a slice that dies, for the MPI
//!   check), `kill: true` kills it with SIGKILL, `abort: true` aborts it
//!   (SIGABRT); `sleep: <seconds>` hangs that long first (a slice that stops
//!   answering).
//! * `daf.harness.ShareParallel`: puts a shared property set `slice`
//!   `{rank, visit, value = visit*100 + rank}` on the clipboard.
//! * `daf.harness.RecordParallel`: puts `record` `{rank, visit, stage,
//!   received}` where `received` sums the `value` of every item received from
//!   a neighbour (`slice-<n>`).

use daf_base::PropertySet;

use crate::clipboard::{Clipboard, Item};
use crate::error::HarnessError;
use crate::stage::{ParallelStage, SerialStage, StageContext};
use crate::Result;

fn visit_of(cb: &Clipboard) -> i64 {
    match cb.get("jobIdentity") {
        Some(Item::JobIdentity(id)) => id.get("visit").and_then(|v| v.as_i64()).unwrap_or(-1),
        _ => -1,
    }
}

fn should_fail(ctx: &StageContext, cb: &Clipboard, with_rank: bool) -> Result<Option<bool>> {
    let p = ctx.policy_or_empty();
    let ps = p.as_property_set();
    let visit_ok = !ps.exists("failVisit") || ps.get_as_i64("failVisit")? == visit_of(cb);
    let rank_ok =
        !with_rank || !ps.exists("failRank") || ps.get_as_i64("failRank")? == i64::from(ctx.rank);
    if visit_ok && rank_ok {
        Ok(Some(ps.exists("panic") && ps.get::<bool>("panic")?))
    } else {
        Ok(None)
    }
}

fn maybe_fail(ctx: &StageContext, cb: &Clipboard, with_rank: bool) -> Result<()> {
    let decision = should_fail(ctx, cb, with_rank)?;
    if decision.is_some() {
        let ps = ctx.policy_or_empty().into_property_set();
        if ps.exists("sleep") {
            let s = ps.get_as_f64("sleep")?.clamp(0.0, 3600.0);
            std::thread::sleep(std::time::Duration::from_secs_f64(s));
        }
        if ps.exists("kill") && ps.get::<bool>("kill")? {
            eprintln!(
                "daf: {} (rank {}) kills itself with SIGKILL as asked",
                ctx.name, ctx.rank
            );
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        if ps.exists("abort") && ps.get::<bool>("abort")? {
            eprintln!("daf: {} (rank {}) aborts as asked", ctx.name, ctx.rank);
            std::process::abort();
        }
        if ps.exists("exit") {
            let code = ps.get_as_i64("exit")?;
            eprintln!(
                "daf: {} (rank {}) exits with status {code} as asked",
                ctx.name, ctx.rank
            );
            std::process::exit(code.clamp(0, 255) as i32);
        }
    }
    match decision {
        Some(true) => panic!("injected panic in {} (rank {})", ctx.name, ctx.rank),
        Some(false) => Err(HarnessError::stage(
            "InjectedFailure",
            format!(
                "injected failure in {} at visit {} (rank {})",
                ctx.name,
                visit_of(cb),
                ctx.rank
            ),
        )),
        None => Ok(()),
    }
}

/// Fails on a chosen visit and rank (see the module docs).
#[derive(Debug, Default)]
pub struct FailParallel;
impl ParallelStage for FailParallel {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        maybe_fail(ctx, cb, true)
    }
}

/// Fails in preprocess on a chosen visit (see the module docs).
#[derive(Debug, Default)]
pub struct FailSerial;
impl SerialStage for FailSerial {
    fn preprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        maybe_fail(ctx, cb, false)
    }
}

/// Puts a shared `slice` property set (see the module docs).
#[derive(Debug, Default)]
pub struct ShareParallel;
impl ParallelStage for ShareParallel {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        let visit = visit_of(cb);
        let mut ps = PropertySet::new();
        ps.set("rank", ctx.rank)?;
        ps.set("visit", visit)?;
        ps.set("value", visit * 100 + i64::from(ctx.rank))?;
        cb.put_shared("slice", ps);
        Ok(())
    }
}

/// Records what the slice saw (see the module docs).
#[derive(Debug, Default)]
pub struct RecordParallel;
impl ParallelStage for RecordParallel {
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        let mut received = 0i64;
        for k in cb.keys() {
            if k.starts_with("slice-") {
                received += cb.get_property_set(&k)?.get_as_i64("value")?;
            }
        }
        let mut ps = PropertySet::new();
        ps.set("rank", ctx.rank)?;
        ps.set("visit", visit_of(cb))?;
        ps.set("stage", ctx.stage_id as i64)?;
        ps.set("received", received)?;
        cb.put("record", ps);
        Ok(())
    }
}
