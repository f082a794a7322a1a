//! The MPI transport (cargo feature `mpi`): `mpirun -n N daf run …` makes
//! rank 0 the master and ranks 1..N−1 the slices (slice rank = MPI rank − 1).
//!
//! * Commands (start a visit with its event, process stage *i*, end the
//!   visit, shut down) are broadcast from rank 0: a length, then the JSON
//!   bytes.
//! * Each slice first tells the master its host and process id, then answers
//!   it point-to-point. The master polls for the answers.
//! * **A lost slice ends the run with a partial report, never a hang**: a
//!   silent slice whose process on the master's host is gone (checked every
//!   100 ms), or a step longer than the pipeline's `stepTimeout`, makes the
//!   master hand the report of the visits that completed, with
//!   [`RunReport::lost`] naming the slice, visit and stage, to
//!   [`Services::on_lost`] (`daf run` prints it and writes `--dump`), then
//!   abort the MPI job with status 4. When `mpirun` ends the job first (a
//!   rank was killed or aborted elsewhere), the master catches its SIGTERM
//!   and does the same before `mpirun`'s SIGKILL.
//! * Before a stage with `shareData: true` (and `shareDataOn: true`), slices
//!   send their shared property sets to their topology's send-neighbours
//!   (ring, sliceleaders, focalplane), serialised with bincode, and store
//!   what they receive as `"<key>-<neighbourRank>"`.
//!
//! MPI is initialised once per process, so multi-rank runs are separate
//! programs launched by `mpirun` (see `.ci/checks/*-mpi.sh`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use daf_base::PropertySet;
use mpi::point_to_point::{Destination, Source, Status};
use mpi::topology::Communicator;
use mpi::traits::*;
use serde::{Deserialize, Serialize};

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

const TAG_REPLY: i32 = 2;
const TAG_RING: i32 = 3;
const TAG_HELLO: i32 = 4;
/// Largest accepted message (256 MiB): a bad length is an error, not an
/// unbounded allocation.
const MAX_MESSAGE: u64 = 256 << 20;

#[derive(Debug, Serialize, Deserialize)]
enum Cmd {
    Start(Event),
    Process(usize),
    /// End of the visit with this label.
    End(String),
    Shutdown,
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Done(usize),
    Visit(ProcessOutcome),
}

fn terr(e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Transport(e.to_string())
}

/// True when this process was started by an MPI launcher (`mpirun`/`mpiexec`).
pub fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// Runs `cfg` over MPI. Every rank calls it with the same configuration;
/// only rank 0 reads `events` and gets `Some(report)`, slices get `None`.
/// The world must have at least 2 ranks.
pub fn run_mpi(
    cfg: &PipelineConfig,
    registry: &StageRegistry,
    services: Arc<Services>,
    events: impl IntoIterator<Item = Result<Event>>,
    opts: &RunOptions,
) -> Result<Option<RunReport>> {
    let universe = mpi::initialize()
        .ok_or_else(|| HarnessError::Transport("MPI was already initialised".into()))?;
    let world = universe.world();
    let size = world.size() as usize;
    if size < 2 {
        return Err(HarnessError::Transport(format!(
            "the MPI transport needs at least 2 ranks (a master and a slice), got {size}"
        )));
    }
    let n = size - 1;
    let rank = world.rank() as usize;
    if cfg.share_data_on {
        cfg.topology.check(n)?;
    }
    if rank == 0 {
        let master = Master::build(cfg, registry, &services, &opts.run_id, n)?;
        run_master(&world, master, cfg, n, events, &services, opts).map(Some)
    } else {
        let hello = Hello {
            host: processor_name(),
            pid: std::process::id(),
        };
        let bytes = serde_json::to_vec(&hello).map_err(terr)?;
        world
            .process_at_rank(0)
            .send_with_tag(&bytes[..], TAG_HELLO);
        let slice = Slice::build(cfg, registry, &services, &opts.run_id, n, (rank - 1) as i32)?;
        run_slice(&world, slice, cfg, n)?;
        Ok(None)
    }
}

/// Commands travel in one fixed-size broadcast (8-byte length + up to
/// `INLINE` bytes); a longer one (an event with a large payload) follows in a
/// second broadcast.
const INLINE: usize = 248;

fn broadcast_cmd<C: Communicator>(world: &C, cmd: &Cmd) -> Result<()> {
    let bytes = serde_json::to_vec(cmd).map_err(terr)?;
    let root = world.process_at_rank(0);
    let mut head = [0u8; INLINE + 8];
    head[..8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    let inline = bytes.len() <= INLINE;
    if inline {
        head[8..8 + bytes.len()].copy_from_slice(&bytes);
    }
    root.broadcast_into(&mut head[..]);
    if !inline {
        let mut buf = bytes;
        root.broadcast_into(&mut buf[..]);
    }
    Ok(())
}

fn receive_cmd<C: Communicator>(world: &C) -> Result<Cmd> {
    let root = world.process_at_rank(0);
    let mut head = [0u8; INLINE + 8];
    root.broadcast_into(&mut head[..]);
    let len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    if len > MAX_MESSAGE {
        return Err(terr(format!("command of {len} bytes refused")));
    }
    let len = len as usize;
    if len <= INLINE {
        return serde_json::from_slice(&head[8..8 + len]).map_err(terr);
    }
    let mut buf = vec![0u8; len];
    root.broadcast_into(&mut buf[..]);
    serde_json::from_slice(&buf).map_err(terr)
}

/// A slice's process, as the master sees it (to tell a dead slice from a
/// slow one when both run on the master's host).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hello {
    host: String,
    pid: u32,
}

fn processor_name() -> String {
    mpi::environment::processor_name().unwrap_or_default()
}

/// Is process `pid` on this host gone (no `/proc/<pid>`, or a zombie)?
/// `false` when it cannot be told (no `/proc`).
fn process_gone(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X' | 'x')),
    }
}

/// What the master knows about its slices and where the run is, shared with
/// the signal watcher so either can write the partial report (once).
struct Progress {
    report: RunReport,
    /// (visit label, stage) being run.
    at: (String, String),
    /// Slices that have not answered the current step.
    silent: Vec<usize>,
    /// Each slice's process, when it runs on the master's host.
    local_pids: Vec<Option<u32>>,
    /// The partial report was handed out.
    reported: bool,
}

impl Progress {
    /// The dead local slices among the silent ones, else the silent ones.
    fn suspects(&self) -> (Vec<usize>, bool) {
        let dead: Vec<usize> = self
            .silent
            .iter()
            .copied()
            .filter(|r| self.local_pids[*r].is_some_and(process_gone))
            .collect();
        if dead.is_empty() {
            (self.silent.clone(), false)
        } else {
            (dead, true)
        }
    }

    /// Fills `report.lost` and calls the hook, the first time only.
    fn report_lost(&mut self, services: &Services, rank: i32, message: String) {
        if self.reported {
            return;
        }
        self.reported = true;
        self.report.lost = Some(LostSlice {
            rank,
            visit: self.at.0.clone(),
            stage: self.at.1.clone(),
            message,
        });
        match &services.on_lost {
            Some(hook) => hook(&self.report),
            None => eprintln!(
                "daf: slice lost ({} visits completed): {}",
                self.report.visits.len(),
                self.report.lost.as_ref().map_or("", |l| l.message.as_str())
            ),
        }
    }
}

type SharedProgress = Arc<std::sync::Mutex<Progress>>;

fn lock(p: &SharedProgress) -> std::sync::MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Watches for the signals `mpirun` sends when it ends the job (a rank died
/// or aborted, or the user interrupted it): writes the partial report and
/// exits with status 4 before `mpirun`'s SIGKILL follows (about 1 s later).
fn watch_signals(
    progress: SharedProgress,
    services: Arc<Services>,
) -> Result<(signal_hook::iterator::Handle, std::thread::JoinHandle<()>)> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| terr(format!("cannot watch signals: {e}")))?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("daf-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let mut p = lock(&progress);
                let (ranks, dead) = p.suspects();
                let rank = ranks.first().map_or(-1, |r| *r as i32);
                let msg = if dead {
                    format!(
                        "slice(s) {ranks:?} died (their processes are gone); mpirun ended the job (signal {sig})"
                    )
                } else {
                    format!(
                        "mpirun ended the job (signal {sig}) while the master waited for slice(s) {ranks:?}"
                    )
                };
                let at = p.at.clone();
                p.report_lost(&services, rank, format!("visit {}, {}: {msg}", at.0, at.1));
                drop(p);
                std::process::exit(4);
            }
        })
        .map_err(|e| terr(format!("cannot start the signal watcher: {e}")))?;
    Ok((handle, thread))
}

/// Waits for one reply until `timeout`, checking every 100 ms whether a
/// silent slice on this host has died. A dead slice or the timeout is
/// [`HarnessError::SliceLost`].
fn receive_reply<C: Communicator>(
    world: &C,
    timeout: Duration,
    waiting: &str,
    progress: &SharedProgress,
    shutdown: &ShutdownSignal,
) -> Result<(usize, Reply)> {
    let t0 = Instant::now();
    let mut nap = Duration::from_micros(20);
    let mut spins = 0u32;
    let mut last_check = Instant::now();
    let mut last_warn = Instant::now();
    loop {
        if let Some(status) = world.any_process().immediate_probe_with_tag(TAG_REPLY) {
            let src = status.source_rank();
            let (bytes, _): (Vec<u8>, Status) = world
                .process_at_rank(src)
                .receive_vec_with_tag::<u8>(TAG_REPLY);
            let reply: Reply = serde_json::from_slice(&bytes).map_err(terr)?;
            return Ok(((src - 1) as usize, reply));
        }
        if last_check.elapsed() > Duration::from_millis(100) {
            last_check = Instant::now();
            if shutdown.level() == Some(ShutdownLevel::Now) {
                // Level 1 while slices work: end the whole job at once, as
                // upstream's kill -9 of the pipeline did.
                tracing::error!("{waiting}: shutdown at level 1 (stop now): aborting the MPI job");
                world.abort(5);
            }
            let p = lock(progress);
            if let (ranks, true) = p.suspects() {
                let pids: Vec<u32> = ranks.iter().filter_map(|r| p.local_pids[*r]).collect();
                return Err(HarnessError::lost(
                    ranks[0] as i32,
                    format!(
                        "{waiting}: slice(s) {ranks:?} (MPI rank(s) {:?}, pid(s) {pids:?}) died",
                        ranks.iter().map(|r| r + 1).collect::<Vec<_>>()
                    ),
                ));
            }
            if last_warn.elapsed() > timeout / 4 && t0.elapsed() < timeout {
                last_warn = Instant::now();
                tracing::warn!(
                    "{waiting}: still waiting for slice(s) {:?} after {:.0?} (step timeout {timeout:?})",
                    p.silent,
                    t0.elapsed()
                );
            }
        }
        if t0.elapsed() > timeout {
            let silent = lock(progress).silent.clone();
            return Err(HarnessError::lost(
                silent.first().map_or(-1, |r| *r as i32),
                format!(
                    "{waiting}: no answer from slice(s) {silent:?} within the step timeout ({timeout:?}; stepTimeout in the pipeline policy)"
                ),
            ));
        }
        // Spin briefly (answers usually come within microseconds), then
        // yield, then nap, so a long step does not burn a core.
        if spins < 2000 {
            spins += 1;
            std::thread::yield_now();
        } else {
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_micros(500));
        }
    }
}

fn run_master<C: Communicator>(
    world: &C,
    mut master: Master,
    cfg: &PipelineConfig,
    n: usize,
    events: impl IntoIterator<Item = Result<Event>>,
    services: &Arc<Services>,
    opts: &RunOptions,
) -> Result<RunReport> {
    let t0 = Instant::now();
    // Every slice says where it runs first.
    let host = processor_name();
    let mut local_pids = vec![None; n];
    for _ in 0..n {
        let (msg, status): (Vec<u8>, Status) =
            world.any_process().receive_vec_with_tag::<u8>(TAG_HELLO);
        let hello: Hello = serde_json::from_slice(&msg).map_err(terr)?;
        let r = (status.source_rank() - 1) as usize;
        if r < n && hello.host == host {
            local_pids[r] = Some(hello.pid);
        }
    }
    let progress: SharedProgress = Arc::new(std::sync::Mutex::new(Progress {
        report: RunReport {
            n_slices: n,
            ..RunReport::default()
        },
        at: (String::new(), String::new()),
        silent: Vec::new(),
        local_pids,
        reported: false,
    }));
    let (signals, watcher) = watch_signals(progress.clone(), services.clone())?;
    let set_at = |visit: &str, stage: String, silent: Vec<usize>| {
        let mut p = lock(&progress);
        p.at = (visit.to_string(), stage);
        p.silent = silent;
    };
    let signal = services.shutdown.clone();
    // Set when a shutdown request stopped the run. Every place the master
    // looks at it is between steps, when the slices wait for a command, so
    // the run ends cleanly there, level 1 included.
    let mut stopped: Option<ShutdownReport> = None;
    let outcome = (|| -> Result<()> {
        for (visit, ev) in events.into_iter().enumerate() {
            let ev = ev?;
            let tv = Instant::now();
            let label = ev.label(visit);
            let mut st = VisitState::start(&ev);
            set_at(&label, "start of visit".into(), Vec::new());
            macro_rules! check {
                ($point:expr, $where:expr) => {
                    if let Some(level) = signal.stops_at($point) {
                        stopped = Some(ShutdownReport::new(level, &label, $where));
                        return Ok(());
                    }
                };
            }
            broadcast_cmd(world, &Cmd::Start(ev.clone()))?;
            for i in 0..master.n_stages() {
                let stage = format!("{} (#{})", cfg.stages[i].name, i + 1);
                set_at(&label, stage.clone(), Vec::new());
                check!(Check::SyncPoint, format!("before preprocess of {stage}"));
                master.pre(i, &mut st, &ev);
                check!(Check::SyncPoint, format!("after preprocess of {stage}"));
                lock(&progress).silent = (0..n).collect();
                broadcast_cmd(world, &Cmd::Process(i))?;
                let mut done = vec![false; n];
                let what = format!("visit {label}, stage {} ({})", i + 1, cfg.stages[i].name);
                for _ in 0..n {
                    match receive_reply(world, cfg.step_timeout, &what, &progress, &signal)? {
                        (r, Reply::Done(j)) if j == i && r < n && !done[r] => {
                            done[r] = true;
                            lock(&progress).silent.retain(|s| *s != r);
                        }
                        (r, _) => return Err(HarnessError::lost(r as i32, "answered out of step")),
                    }
                }
                check!(Check::SyncPoint, format!("after process of {stage}"));
                master.post(i, &mut st);
                check!(Check::EndOfStage, format!("end of {stage}"));
            }
            set_at(&label, "end of visit".into(), (0..n).collect());
            broadcast_cmd(world, &Cmd::End(label.clone()))?;
            let mut outs: Vec<Option<ProcessOutcome>> = (0..n).map(|_| None).collect();
            let what = format!("end of visit {label}");
            for _ in 0..n {
                match receive_reply(world, cfg.step_timeout, &what, &progress, &signal)? {
                    (r, Reply::Visit(o)) if r < n => {
                        outs[r] = Some(o);
                        lock(&progress).silent.retain(|s| *s != r);
                    }
                    (r, _) => return Err(HarnessError::lost(r as i32, "answered out of step")),
                }
            }
            let slices = outs
                .into_iter()
                .enumerate()
                .map(|(r, o)| o.ok_or(HarnessError::lost(r as i32, "no end-of-visit report")))
                .collect::<Result<_>>()?;
            let published = master.outbox.drain(&label);
            lock(&progress).report.visits.push(VisitReport {
                visit,
                id: label.clone(),
                master: st.finish(-1, false, published),
                slices,
                elapsed: tv.elapsed(),
            });
            check!(Check::EndOfVisit, "end of visit");
            if cfg.one_loop {
                break;
            }
        }
        Ok(())
    })();
    if let Err(HarnessError::SliceLost { rank, message, .. }) = &outcome {
        // The partial report first, then end the job: a lost rank cannot
        // take part in a clean shutdown (MPI_Finalize would wait for it).
        tracing::error!("slice {rank} lost: {message}; aborting the MPI job");
        {
            let mut p = lock(&progress);
            p.report.elapsed = t0.elapsed();
            p.report_lost(services, *rank, message.clone());
        }
        world.abort(4);
    }
    // Clean shutdown in every other case, so no slice waits forever.
    broadcast_cmd(world, &Cmd::Shutdown)?;
    signals.close();
    let _ = watcher.join();
    outcome?;
    let mut report = std::mem::take(&mut lock(&progress).report);
    report.shutdown = stopped.or_else(|| after_listener_stopped(&signal, &report));
    report.exit_event = exit_event(cfg, &opts.run_id);
    report.elapsed = t0.elapsed();
    Ok(report)
}

fn send_reply<C: Communicator>(world: &C, reply: &Reply) -> Result<()> {
    let bytes = serde_json::to_vec(reply).map_err(terr)?;
    world
        .process_at_rank(0)
        .send_with_tag(&bytes[..], TAG_REPLY);
    Ok(())
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_MESSAGE as usize }>()
}

/// Shared items received from one neighbour: (its rank, the items).
type Received = (usize, Vec<(String, PropertySet)>);

/// Sends the shared items to every send-neighbour and receives one message
/// from every receive-neighbour (in that order).
fn exchange<C: Communicator>(
    world: &C,
    cfg: &PipelineConfig,
    rank: usize,
    n: usize,
    items: Vec<(String, PropertySet)>,
) -> Result<Vec<Received>> {
    let to = cfg.topology.send_to(rank, n);
    let from = cfg.topology.receive_from(rank, n);
    let bytes = bincode::serde::encode_to_vec(&items, bincode_config()).map_err(terr)?;
    let received = mpi::request::scope(|scope| {
        let reqs: Vec<_> = to
            .iter()
            .map(|t| {
                world
                    .process_at_rank((t + 1) as i32)
                    .immediate_send_with_tag(scope, &bytes[..], TAG_RING)
            })
            .collect();
        let msgs: Vec<Vec<u8>> = from
            .iter()
            .map(|f| {
                world
                    .process_at_rank((f + 1) as i32)
                    .receive_vec_with_tag::<u8>(TAG_RING)
                    .0
            })
            .collect();
        for r in reqs {
            r.wait();
        }
        msgs
    });
    from.into_iter()
        .zip(received)
        .map(|(f, msg)| {
            let (items, _): (Vec<(String, PropertySet)>, usize) =
                bincode::serde::decode_from_slice(&msg, bincode_config()).map_err(terr)?;
            Ok((f, items))
        })
        .collect()
}

fn run_slice<C: Communicator>(
    world: &C,
    mut slice: Slice,
    cfg: &PipelineConfig,
    n: usize,
) -> Result<()> {
    let rank = slice.rank as usize;
    let mut st = VisitState::default();
    let mut ev = Event::default();
    loop {
        match receive_cmd(world)? {
            Cmd::Start(e) => {
                st = VisitState::start(&e);
                ev = e;
            }
            Cmd::Process(i) => {
                if slice.shares(i) {
                    for (from, items) in exchange(world, cfg, rank, n, shared_items(&st.cb))? {
                        receive_shared(&mut st.cb, from, items);
                    }
                }
                slice.process(i, &mut st, &ev);
                send_reply(world, &Reply::Done(i))?;
            }
            Cmd::End(label) => {
                let published = slice.outbox.drain(&label);
                let out = std::mem::take(&mut st).finish(slice.rank, false, published);
                send_reply(world, &Reply::Visit(out))?;
            }
            Cmd::Shutdown => return Ok(()),
        }
    }
}
