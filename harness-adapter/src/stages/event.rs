//! EventStage: publishes clipboard property sets as events (one of the four
//! predefined stages of LSST's DC3 harness).
//!
//! Stage policy:
//!
//! ```text
//! keysToPublish: "outgoingEvent=outgoingKey" "visitDone"   # TOPIC=clipboardKey, or KEY for both
//! RunMode: "postprocess"                                  # else publishes in preprocess
//! ```
//!
//! The serial stage publishes in `preprocess`, or in `postprocess` when
//! `RunMode` is `postprocess` (nothing when it is `process`); the parallel
//! stage publishes in `process` when `RunMode` is `process`. Each named
//! clipboard item must be a PropertySet. Events go through
//! [`StageContext::publish`]: `daf run --publish FILE` writes them as event
//! lines, so one pipeline's events can drive another (`--events`).
//! Upstream needed an event broker host; daf needs none, and a policy
//! without `keysToPublish` only warns.

use daf_base::Policy;

use crate::clipboard::{Clipboard, Item};
use crate::error::HarnessError;
use crate::stage::{ParallelStage, SerialStage, StageContext};
use crate::Result;

/// The parsed EventStage policy.
#[derive(Debug, Clone, Default)]
struct Plan {
    run_mode: String,
    /// (topic, clipboard key)
    keys: Vec<(String, String)>,
}

impl Plan {
    fn from(ctx: &StageContext) -> Result<Plan> {
        let p: Policy = ctx.policy_or_empty();
        let run_mode = if p.exists("RunMode") {
            p.get::<String>("RunMode")
                .map_err(|e| HarnessError::Policy(format!("RunMode: {e}")))?
        } else {
            "None".into()
        };
        let mut keys = Vec::new();
        if p.exists("keysToPublish") {
            for k in p
                .get_array::<String>("keysToPublish")
                .map_err(|e| HarnessError::Policy(format!("keysToPublish: {e}")))?
            {
                let (topic, key) = match k.split_once('=') {
                    Some((t, c)) if !t.is_empty() => (t.to_string(), c.to_string()),
                    _ => (k.clone(), k.clone()),
                };
                if topic.is_empty() || key.is_empty() {
                    return Err(HarnessError::Policy(format!(
                        "keysToPublish entry {k:?}: expected \"topic=clipboardKey\" or \"key\""
                    )));
                }
                keys.push((topic, key));
            }
        }
        if keys.is_empty() {
            tracing::warn!(stage = %ctx.name, "Did not find keysToPublish in EventStage Policy");
        }
        Ok(Plan { run_mode, keys })
    }

    fn publish(&self, ctx: &StageContext, cb: &Clipboard) -> Result<()> {
        for (topic, key) in &self.keys {
            match cb.get(key) {
                Some(Item::PropertySet(ps)) => ctx.publish(topic, ps.clone()),
                Some(other) => {
                    return Err(HarnessError::WrongItemType {
                        key: key.clone(),
                        expected: "PropertySet",
                        actual: other.kind(),
                    })
                }
                None => return Err(HarnessError::ExpectedDataNotFound { key: key.clone() }),
            }
        }
        Ok(())
    }
}

/// `lsst.pex.harness.EventStage.EventStageSerial`: publishes on the master.
#[derive(Debug, Default)]
pub struct EventStageSerial {
    plan: Plan,
}

impl SerialStage for EventStageSerial {
    fn setup(&mut self, ctx: &StageContext) -> Result<()> {
        self.plan = Plan::from(ctx)?;
        Ok(())
    }
    fn preprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        if matches!(self.plan.run_mode.as_str(), "process" | "postprocess") {
            return Ok(());
        }
        self.plan.publish(ctx, cb)
    }
    fn postprocess(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        if self.plan.run_mode == "postprocess" {
            self.plan.publish(ctx, cb)?;
        }
        Ok(())
    }
}

/// `EventStageParallel`: publishes from every slice in `process` when
/// `RunMode` is `process`.
#[derive(Debug, Default)]
pub struct EventStageParallel {
    plan: Plan,
}

impl ParallelStage for EventStageParallel {
    fn setup(&mut self, ctx: &StageContext) -> Result<()> {
        self.plan = Plan::from(ctx)?;
        Ok(())
    }
    fn process(&mut self, ctx: &StageContext, cb: &mut Clipboard) -> Result<()> {
        if self.plan.run_mode == "process" {
            self.plan.publish(ctx, cb)?;
        }
        Ok(())
    }
}
