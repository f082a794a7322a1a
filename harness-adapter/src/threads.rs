//! The thread transport: the master on the calling thread, one thread per
//! slice, steps synchronised over channels, shared items passed in a ring.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use daf_base::PropertySet;

use crate::config::PipelineConfig;
use crate::error::HarnessError;
use crate::events::Event;
use crate::runner::{
    receive_shared, shared_items, Master, ProcessOutcome, RunOptions, RunReport, Slice,
    VisitReport, VisitState,
};
use crate::stage::{Services, StageRegistry};
use crate::Result;

enum Cmd {
    Start(Arc<Event>),
    Process(usize),
    End,
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
/// (see [`crate::runner::Failure`]); an event-stream error or a lost slice does.
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
    let mut ring_txs = Vec::new();
    let mut ring_rxs = Vec::new();
    for _ in 0..n {
        let (tx, rx) = channel::<Shared>();
        ring_txs.push(tx);
        ring_rxs.push(Some(rx));
    }
    let mut cmd_txs = Vec::new();
    let mut handles = Vec::new();
    for (r, slice) in slices.into_iter().enumerate() {
        let (tx, rx) = channel::<Cmd>();
        cmd_txs.push(tx);
        let (to, _from) = cfg.topology.neighbours(r, n);
        let ring_tx = ring_txs[to].clone();
        let ring_rx = ring_rxs[r].take().expect("one receiver per slice");
        let reply = reply_tx.clone();
        let keep = opts.keep_clipboards;
        handles.push(
            thread::Builder::new()
                .name(format!("slice-{r}"))
                .spawn(move || slice_loop(slice, rx, reply, ring_tx, ring_rx, keep))
                .map_err(|e| HarnessError::Transport(format!("cannot start slice thread: {e}")))?,
        );
    }
    drop(reply_tx);
    drop(ring_txs);

    let mut report = RunReport {
        n_slices: n,
        ..RunReport::default()
    };
    let outcome = (|| -> Result<()> {
        for (visit, ev) in events.into_iter().enumerate() {
            let ev = Arc::new(ev?);
            let tv = Instant::now();
            let mut st = VisitState::start(&ev);
            broadcast(&cmd_txs, || Cmd::Start(ev.clone()))?;
            let label = ev.label(visit);
            for i in 0..master.n_stages() {
                master.pre(i, &mut st, &ev);
                broadcast(&cmd_txs, || Cmd::Process(i))?;
                let mut done = vec![false; n];
                let what = format!("visit {label}, stage {} ({})", i + 1, cfg.stages[i].name);
                while done.iter().any(|d| !d) {
                    match recv(&reply_rx, cfg, &what, &done)? {
                        (r, Reply::Done(j)) if j == i => done[r] = true,
                        (r, _) => {
                            return Err(HarnessError::SliceLost {
                                rank: r as i32,
                                message: "answered out of step".into(),
                            })
                        }
                    }
                }
                master.post(i, &mut st);
            }
            broadcast(&cmd_txs, || Cmd::End)?;
            let mut outs: Vec<Option<ProcessOutcome>> = (0..n).map(|_| None).collect();
            let what = format!("end of visit {label}");
            for _ in 0..n {
                let answered: Vec<bool> = outs.iter().map(Option::is_some).collect();
                match recv(&reply_rx, cfg, &what, &answered)? {
                    (r, Reply::Visit(o)) => outs[r] = Some(*o),
                    (r, _) => {
                        return Err(HarnessError::SliceLost {
                            rank: r as i32,
                            message: "answered out of step".into(),
                        })
                    }
                }
            }
            report.visits.push(VisitReport {
                visit,
                id: ev.label(visit),
                master: st.finish(-1, opts.keep_clipboards),
                slices: outs
                    .into_iter()
                    .map(|o| o.expect("every slice answered"))
                    .collect(),
                elapsed: tv.elapsed(),
            });
            if cfg.one_loop {
                break;
            }
        }
        Ok(())
    })();
    // Clean shutdown: closing the command channels ends every slice loop.
    // After a lost slice the threads are not joined (one may be stuck); they
    // end when they next look at their closed channel.
    drop(cmd_txs);
    if !matches!(outcome, Err(HarnessError::SliceLost { .. })) {
        for h in handles {
            let _ = h.join();
        }
    }
    outcome?;
    report.elapsed = t0.elapsed();
    Ok(report)
}

fn broadcast(txs: &[Sender<Cmd>], mut make: impl FnMut() -> Cmd) -> Result<()> {
    for (r, tx) in txs.iter().enumerate() {
        tx.send(make()).map_err(|_| HarnessError::SliceLost {
            rank: r as i32,
            message: "slice thread has stopped".into(),
        })?;
    }
    Ok(())
}

/// Waits for the next slice answer, warning every heartbeat which slices
/// have not answered; after the step timeout the first silent slice is lost.
fn recv(
    rx: &Receiver<(usize, Reply)>,
    cfg: &PipelineConfig,
    what: &str,
    answered: &[bool],
) -> Result<(usize, Reply)> {
    let start = Instant::now();
    let silent = || -> Vec<usize> { (0..answered.len()).filter(|r| !answered[*r]).collect() };
    loop {
        let left = cfg.step_timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            let ranks = silent();
            return Err(HarnessError::SliceLost {
                rank: ranks.first().map_or(-1, |r| *r as i32),
                message: format!(
                    "{what}: no answer from slice(s) {ranks:?} within the step timeout ({:?}; stepTimeout in the pipeline policy)",
                    cfg.step_timeout
                ),
            });
        }
        match rx.recv_timeout(left.min(cfg.heartbeat())) {
            Ok(x) => return Ok(x),
            Err(RecvTimeoutError::Timeout) => {
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
                return Err(HarnessError::SliceLost {
                    rank: silent().first().map_or(-1, |r| *r as i32),
                    message: format!("{what}: every slice thread has stopped"),
                })
            }
        }
    }
}

fn slice_loop(
    mut slice: Slice,
    rx: Receiver<Cmd>,
    reply: Sender<(usize, Reply)>,
    ring_tx: Sender<Shared>,
    ring_rx: Receiver<Shared>,
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
                    if ring_tx.send((r, shared_items(&st.cb))).is_err() {
                        return;
                    }
                    match ring_rx.recv() {
                        Ok((from, items)) => receive_shared(&mut st.cb, from, items),
                        Err(_) => return,
                    }
                }
                slice.process(i, &mut st, &ev);
                if reply.send((r, Reply::Done(i))).is_err() {
                    return;
                }
            }
            Cmd::End => {
                let out = std::mem::take(&mut st).finish(slice.rank, keep);
                if reply.send((r, Reply::Visit(Box::new(out)))).is_err() {
                    return;
                }
            }
        }
    }
}
