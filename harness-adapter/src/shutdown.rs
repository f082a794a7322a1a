//! Shutdown events and their levels, as pex_harness's `ShutdownThread`
//! handled them: an event on the pipeline's `shutdownTopic` carries an int
//! `level` saying where the run stops.
//!
//! | level | [`ShutdownLevel`] | the run stops                                  |
//! |-------|-------------------|------------------------------------------------|
//! | 1     | `Now`             | at once: running stages are not waited for      |
//! | 2     | `SyncPoint`       | at the next synchronisation point (before or after a stage's preprocess, process or postprocess) |
//! | 3     | `EndOfStage`      | when the current stage has finished (postprocess included) |
//! | 4     | `EndOfVisit`      | when the current visit has finished             |
//!
//! A shutdown is a request to a running pipeline: it arrives while a visit
//! runs (the event listener reads events ahead of the visits) or is
//! requested by a stage through [`crate::Services::shutdown`]. No visit
//! starts after one. The levels that stop inside a visit (1 to 3) leave
//! that visit out of [`crate::RunReport::visits`] and name it in
//! [`crate::RunReport::shutdown`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::HarnessError;
use crate::events::Event;
use crate::launch::EventSource;
use crate::Result;

/// Where a shutdown stops the run (pex_harness's `level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ShutdownLevel {
    /// Level 1: stop at once (upstream killed the process).
    Now = 1,
    /// Level 2: stop at the next synchronisation point.
    SyncPoint = 2,
    /// Level 3: stop at the end of the current stage.
    EndOfStage = 3,
    /// Level 4: stop at the end of the current visit.
    EndOfVisit = 4,
}

impl ShutdownLevel {
    /// The level of an int (1 to 4).
    pub fn from_int(level: i64) -> Option<ShutdownLevel> {
        Some(match level {
            1 => ShutdownLevel::Now,
            2 => ShutdownLevel::SyncPoint,
            3 => ShutdownLevel::EndOfStage,
            4 => ShutdownLevel::EndOfVisit,
            _ => return None,
        })
    }

    /// The level a shutdown event on `topic` asks for: its payload's
    /// `level`; level 4 (with a warning) when it has none or an unknown one.
    pub fn of_event(ev: &Event, topic: &str) -> ShutdownLevel {
        let payload = ev.payload_for(topic);
        match payload.get_as_i64("level").ok() {
            Some(l) => ShutdownLevel::from_int(l).unwrap_or_else(|| {
                tracing::warn!("shutdown event on {topic}: unknown level {l}; stopping at the end of the visit (level 4)");
                ShutdownLevel::EndOfVisit
            }),
            None => {
                tracing::warn!("shutdown event on {topic} without an int `level`; stopping at the end of the visit (level 4)");
                ShutdownLevel::EndOfVisit
            }
        }
    }

    /// The int level.
    pub fn as_int(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for ShutdownLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            ShutdownLevel::Now => "stop now",
            ShutdownLevel::SyncPoint => "stop at the next synchronisation point",
            ShutdownLevel::EndOfStage => "stop at the end of the stage",
            ShutdownLevel::EndOfVisit => "stop at the end of the visit",
        };
        write!(f, "level {} ({what})", self.as_int())
    }
}

/// A run's shutdown request, shared by whoever may ask (the event
/// listener, stages) and the master, which acts on it. A value per run, not
/// global state; clones share the request. When several levels are asked,
/// the most urgent (lowest) wins.
#[derive(Debug, Clone, Default)]
pub struct ShutdownSignal(Arc<AtomicU8>);

impl ShutdownSignal {
    /// A signal nobody has raised.
    pub fn new() -> ShutdownSignal {
        ShutdownSignal::default()
    }

    /// Asks the run to stop at `level`.
    pub fn request(&self, level: ShutdownLevel) {
        let l = level.as_int();
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                (cur == 0 || l < cur).then_some(l)
            });
    }

    /// The level asked for, if any.
    pub fn level(&self) -> Option<ShutdownLevel> {
        ShutdownLevel::from_int(self.0.load(Ordering::SeqCst) as i64)
    }

    /// Whether the run stops at `point`.
    pub(crate) fn stops_at(&self, point: Check) -> Option<ShutdownLevel> {
        let l = self.level()?;
        let stops = match point {
            Check::SyncPoint => l <= ShutdownLevel::SyncPoint,
            Check::EndOfStage => l <= ShutdownLevel::EndOfStage,
            Check::EndOfVisit => l <= ShutdownLevel::EndOfVisit,
        };
        stops.then_some(l)
    }
}

/// The places where the master looks at the shutdown request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Before and after a stage's preprocess, and after its process.
    SyncPoint,
    /// After a stage's postprocess.
    EndOfStage,
    /// After a visit's report is made.
    EndOfVisit,
}

/// The report of a run whose events ended because the listener read a
/// shutdown event after the last visit had passed its last check: that
/// visit ended normally (`"end of visit"`), or none ran (`"start of visit"`
/// of no visit).
pub(crate) fn after_listener_stopped(
    signal: &ShutdownSignal,
    report: &crate::RunReport,
) -> Option<ShutdownReport> {
    let level = signal.level()?;
    Some(match report.visits.last() {
        Some(v) => ShutdownReport::new(level, &v.id, "end of visit"),
        None => ShutdownReport::new(level, "", "start of visit"),
    })
}

/// Where a shutdown stopped the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownReport {
    /// The level (1 to 4).
    pub level: u8,
    /// The visit it stopped in or after (its label; empty when it came
    /// before any visit).
    pub visit: String,
    /// Where in that visit: `"start of visit"` (no visit ran),
    /// `"before preprocess of STAGE (#N)"`, `"after preprocess of …"`,
    /// `"after process of …"`, `"end of STAGE (#N)"`, `"end of visit"` (the
    /// visit completed and is in the report), or `"during STAGE (#N)"`
    /// (level 1 while slices were processing).
    pub at: String,
}

impl ShutdownReport {
    pub(crate) fn new(level: ShutdownLevel, visit: &str, at: impl Into<String>) -> Self {
        let r = ShutdownReport {
            level: level.as_int(),
            visit: visit.to_string(),
            at: at.into(),
        };
        tracing::warn!(
            "shutdown at {level}: the run stops in visit {} at {}",
            r.visit,
            r.at
        );
        r
    }
}

/// The events of `source` as the master takes them, with shutdown events
/// (those carrying `topic`) taken out and turned into requests on `signal`
/// as soon as they are read: a listener thread reads one event ahead of
/// the visits, so a shutdown event that follows visit N's event in a file
/// (or arrives on stdin while visit N runs) reaches the run during visit N,
/// and its level decides where visit N stops (how far visit N got by then
/// is a matter of timing, except at level 4). The events end at a
/// shutdown event. The listener thread ends with the source, at a shutdown
/// event, or when the run drops the iterator.
pub fn listen(
    source: EventSource,
    topic: String,
    signal: ShutdownSignal,
) -> Result<impl Iterator<Item = Result<Event>>> {
    let (tx, rx) = sync_channel::<Result<Event>>(0);
    std::thread::Builder::new()
        .name("shutdown-listener".into())
        .spawn(move || {
            let events = match source.open() {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            for ev in events {
                match ev {
                    Ok(ev) if ev.has_topic(&topic) => {
                        let level = ShutdownLevel::of_event(&ev, &topic);
                        tracing::warn!("shutdown event on {topic} at {level}");
                        signal.request(level);
                        // No visit starts after a shutdown: the events
                        // end here.
                        return;
                    }
                    other => {
                        if tx.send(other).is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .map_err(|e| HarnessError::Transport(format!("cannot start the shutdown listener: {e}")))?;
    Ok(rx.into_iter())
}
