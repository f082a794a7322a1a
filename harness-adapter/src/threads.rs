//! The thread transport: the master on the calling thread, one thread per
//! slice, steps synchronised over channels, shared items passed to the
//! topology's neighbours.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use daf_base::PropertySet;

use crate::config::PipelineConfig;
use crate::error::HarnessError;
use crate::events::Event;
use crate::runner::{
    exit_event, receive_shared, shared_items, LostSlice, Master, ProcessOutcome, RunOptions,
    RunReport, Slice, VisitReport, VisitState,
};
use crate::shutdown::{
    after_listener_stopped, Check, ShutdownLevel, ShutdownReport, ShutdownSignal,
};
use crate::stage::{Services, StageRegistry};
use crate::Result;

enum Cmd {
    Start(Arc<Event>),
    Process(usize),
    /// End of the visit with this label.
    End(String),
}

enum Reply {
    Done(usize),
    Visit(Box<ProcessOutcome>),
}

type Shared = (usize, Vec<(String, PropertySet)>);

/// Runs `cfg` on `n_slices` slice threads (the policy's `nSlices` when
/// `None`), one visit per event, and returns the report. Stage construction
/// errors (an unknown stage class, a bad stage policy) are returned before
/// any visit runs. A visit that fails in one process does not stop the run
/// (see [`crate::runner::Failure`]); an event-stream error or a lost slice
/// does. A lost slice (it stopped answering within `stepTimeout`) returns
/// [`HarnessError::SliceLost`] with the partial report — the visits that
/// completed and [`RunReport::lost`] — also handed to
/// [`Services::on_lost`](crate::Services::on_lost).
pub fn run_threads(
    cfg: &PipelineConfig,
    registry: &StageRegistry,
    services: Arc<Services>,
    events: impl IntoIterator<Item = Result<Event>>,
    n_slices: Option<usize>,
    opts: &RunOptions,
) -> Result<RunReport> {
    let t0 = Instant::now();
    let n = n_slices.unwrap_or(cfg.n_slices).max(1);
    if cfg.share_data_on {
        cfg.topology.check(n)?;
    }
    let mut master = Master::build(cfg, registry, &services, &opts.run_id, n)?;
    let mut slices = Vec::with_capacity(n);
    for r in 0..n {
        slices.push(Slice::build(
            cfg,
            registry,
            &services,
            &opts.run_id,
            n,
            r as i32,
        )?);
    }

    let (reply_tx, reply_rx) = channel::<(usize, Reply)>();
    let mut share_txs = Vec::new();
    let mut share_rxs = Vec::new();
    for _ in 0..n {
        let (tx, rx) = channel::<Shared>();
        share_txs.push(tx);
        share_rxs.push(Some(rx));
    }
    let mut cmd_txs = Vec::new();
    let mut handles = Vec::new();
    for (r, slice) in slices.into_iter().enumerate() {
        let (tx, rx) = channel::<Cmd>();
        cmd_txs.push(tx);
        let links = Links {
            to: cfg
                .topology
                .send_to(r, n)
                .into_iter()
                .map(|t| (t, share_txs[t].clone()))
                .collect(),
            from: cfg.topology.receive_from(r, n),
            rx: share_rxs[r].take().expect("one receiver per slice"),
        };
        let reply = reply_tx.clone();
        let keep = opts.keep_clipboards;
        handles.push(
            thread::Builder::new()
                .name(format!("slice-{r}"))
                .spawn(move || slice_loop(slice, rx, reply, links, keep))
                .map_err(|e| HarnessError::Transport(format!("cannot start slice thread: {e}")))?,
        );
    }
    drop(reply_tx);
    drop(share_txs);

    let mut report = RunReport {
        n_slices: n,
        ..RunReport::default()
    };
    // Where the run is, for a partial report: (visit label, stage).
    let mut at = (String::new(), String::new());
    let signal = services.shutdown.clone();
    // Set when a shutdown request stopped the run.
    let mut stopped: Option<ShutdownReport> = None;
    let outcome = (|| -> Result<()> {
        for (visit, ev) in events.into_iter().enumerate() {
            let ev = Arc::new(ev?);
            let tv = Instant::now();
            let mut st = VisitState::start(&ev);
            let label = ev.label(visit);
            at = (label.clone(), "start of visit".into());
            // Stops the run at `point` if a shutdown asks for it.
            macro_rules! check {
                ($point:expr, $where:expr) => {
                    if let Some(level) = signal.stops_at($point) {
                        stopped = Some(ShutdownReport::new(level, &label, $where));
                        return Ok(());
                    }
                };
            }
            broadcast(&cmd_txs, || Cmd::Start(ev.clone()))?;
            for i in 0..master.n_stages() {
                let stage = format!("{} (#{})", cfg.stages[i].name, i + 1);
                at.1 = stage.clone();
                check!(Check::SyncPoint, format!("before preprocess of {stage}"));
                master.pre(i, &mut st, &ev);
                check!(Check::SyncPoint, format!("after preprocess of {stage}"));
                broadcast(&cmd_txs, || Cmd::Process(i))?;
                let mut done = vec![false; n];
                let what = format!("visit {label}, stage {} ({})", i + 1, cfg.stages[i].name);
                while done.iter().any(|d| !d) {
                    match recv(&reply_rx, cfg, &what, &done, &signal)? {
                        None => {
                            stopped = Some(ShutdownReport::new(
                                ShutdownLevel::Now,
                                &label,
                                format!("during {stage}"),
                            ));
                            return Ok(());
                        }
                        Some((r, Reply::Done(j))) if j == i => done[r] = true,
                        Some((r, _)) => {
                            return Err(HarnessError::lost(r as i32, "answered out of step"))
                        }
                    }
                }
                check!(Check::SyncPoint, format!("after process of {stage}"));
                master.post(i, &mut st);
                check!(Check::EndOfStage, format!("end of {stage}"));
            }
            at.1 = "end of visit".into();
            broadcast(&cmd_txs, || Cmd::End(label.clone()))?;
            let mut outs: Vec<Option<ProcessOutcome>> = (0..n).map(|_| None).collect();
            let what = format!("end of visit {label}");
            for _ in 0..n {
                let answered: Vec<bool> = outs.iter().map(Option::is_some).collect();
                match recv(&reply_rx, cfg, &what, &answered, &signal)? {
                    None => {
                        stopped = Some(ShutdownReport::new(
                            ShutdownLevel::Now,
                            &label,
                            "end of visit (reports not all in)",
                        ));
                        return Ok(());
                    }
                    Some((r, Reply::Visit(o))) => outs[r] = Some(*o),
                    Some((r, _)) => {
                        return Err(HarnessError::lost(r as i32, "answered out of step"))
                    }
                }
            }
            let published = master.outbox.drain(&label);
            report.visits.push(VisitReport {
                visit,
                id: label.clone(),
                master: st.finish(-1, opts.keep_clipboards, published),
                slices: outs
                    .into_iter()
                    .map(|o| o.expect("every slice answered"))
                    .collect(),
                elapsed: tv.elapsed(),
            });
            check!(Check::EndOfVisit, "end of visit");
            if cfg.one_loop {
                break;
            }
        }
        Ok(())
    })();
    report.shutdown = stopped.or_else(|| after_listener_stopped(&signal, &report));
    // Clean shutdown: closing the command channels ends every slice loop.
    // After a lost slice the threads are not joined (one may be stuck); they
    // end when they next look at their closed channel.
    drop(cmd_txs);
    report.elapsed = t0.elapsed();
    match outcome {
        Err(HarnessError::SliceLost { rank, message, .. }) => {
            report.lost = Some(LostSlice {
                rank,
                visit: at.0,
                stage: at.1,
                message: message.clone(),
            });
            if let Some(hook) = &services.on_lost {
                hook(&report);
            }
            Err(HarnessError::SliceLost {
                rank,
                message,
                partial: Some(Box::new(report)),
            })
        }
        Err(e) => {
            for h in handles {
                let _ = h.join();
            }
            Err(e)
        }
        Ok(()) => {
            // At level 1 slices may still be inside a stage: they are not
            // waited for (they end when they next look at their channel).
            let now = report
                .shutdown
                .as_ref()
                .is_some_and(|s| s.level == ShutdownLevel::Now.as_int());
            if !now {
                for h in handles {
                    let _ = h.join();
                }
                report.exit_event = exit_event(cfg, &opts.run_id);
            }
            report.elapsed = t0.elapsed();
            Ok(report)
        }
    }
}

fn broadcast(txs: &[Sender<Cmd>], mut make: impl FnMut() -> Cmd) -> Result<()> {
    for (r, tx) in txs.iter().enumerate() {
        tx.send(make())
            .map_err(|_| HarnessError::lost(r as i32, "slice thread has stopped"))?;
    }
    Ok(())
}

/// Waits for the next slice answer, warning every heartbeat which slices
/// have not answered; after the step timeout the first silent slice is lost.
/// `None` when a level-1 shutdown (stop now) was asked meanwhile.
fn recv(
    rx: &Receiver<(usize, Reply)>,
    cfg: &PipelineConfig,
    what: &str,
    answered: &[bool],
    signal: &ShutdownSignal,
) -> Result<Option<(usize, Reply)>> {
    // How often a wait looks for a level-1 shutdown.
    const POLL: std::time::Duration = std::time::Duration::from_millis(20);
    let mut last_warning = Instant::now();
    let start = Instant::now();
    let silent = || -> Vec<usize> { (0..answered.len()).filter(|r| !answered[*r]).collect() };
    loop {
        let left = cfg.step_timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            let ranks = silent();
            return Err(HarnessError::lost(
                ranks.first().map_or(-1, |r| *r as i32),
                format!(
                    "{what}: no answer from slice(s) {ranks:?} within the step timeout ({:?}; stepTimeout in the pipeline policy)",
                    cfg.step_timeout
                ),
            ));
        }
        if signal.level() == Some(ShutdownLevel::Now) {
            return Ok(None);
        }
        match rx.recv_timeout(left.min(POLL)) {
            Ok(x) => return Ok(Some(x)),
            Err(RecvTimeoutError::Timeout) => {
                if last_warning.elapsed() < cfg.heartbeat() {
                    continue;
                }
                last_warning = Instant::now();
                if start.elapsed() < cfg.step_timeout {
                    tracing::warn!(
                        "{what}: still waiting for slice(s) {:?} after {:.0?} (step timeout {:?})",
                        silent(),
                        start.elapsed(),
                        cfg.step_timeout
                    );
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(HarnessError::lost(
                    silent().first().map_or(-1, |r| *r as i32),
                    format!("{what}: every slice thread has stopped"),
                ))
            }
        }
    }
}

/// A slice's links to the others for sharing: whom it sends to (with their
/// channels), whom it receives from, and its own receiving channel.
struct Links {
    to: Vec<(usize, Sender<Shared>)>,
    from: Vec<usize>,
    rx: Receiver<Shared>,
}

impl Links {
    /// Sends `items` to every send-neighbour, then waits for one message
    /// from every receive-neighbour; returns them in `from` order. `None`
    /// when the run is over (a channel closed).
    fn exchange(&self, me: usize, items: Vec<(String, PropertySet)>) -> Option<Vec<Shared>> {
        for (_, tx) in &self.to {
            tx.send((me, items.clone())).ok()?;
        }
        let mut got: Vec<Option<Vec<(String, PropertySet)>>> = vec![None; self.from.len()];
        while got.iter().any(Option::is_none) {
            let (from, items) = self.rx.recv().ok()?;
            match self.from.iter().position(|f| *f == from) {
                Some(i) if got[i].is_none() => got[i] = Some(items),
                _ => tracing::warn!("slice {me}: unexpected shared items from slice {from}"),
            }
        }
        Some(
            self.from
                .iter()
                .zip(got)
                .map(|(f, g)| (*f, g.unwrap_or_default()))
                .collect(),
        )
    }
}

fn slice_loop(
    mut slice: Slice,
    rx: Receiver<Cmd>,
    reply: Sender<(usize, Reply)>,
    links: Links,
    keep: bool,
) {
    let r = slice.rank as usize;
    let mut st = VisitState::default();
    let mut ev = Arc::new(Event::default());
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Cmd::Start(e) => {
                st = VisitState::start(&e);
                ev = e;
            }
            Cmd::Process(i) => {
                if slice.shares(i) {
                    let Some(received) = links.exchange(r, shared_items(&st.cb)) else {
                        return;
                    };
                    for (from, items) in received {
                        receive_shared(&mut st.cb, from, items);
                    }
                }
                slice.process(i, &mut st, &ev);
                if reply.send((r, Reply::Done(i))).is_err() {
                    return;
                }
            }
            Cmd::End(label) => {
                let published = slice.outbox.drain(&label);
                let out = std::mem::take(&mut st).finish(slice.rank, keep, published);
                if reply.send((r, Reply::Visit(Box::new(out)))).is_err() {
                    return;
                }
            }
        }
    }
}
