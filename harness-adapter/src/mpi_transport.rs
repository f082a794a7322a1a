//! The MPI transport (cargo feature `mpi`): `mpirun -n N daf run …` makes
//! rank 0 the master and ranks 1..N−1 the slices (slice rank = MPI rank − 1).
//!
//! * Commands (start a visit with its event, process stage *i*, end the
//!   visit, shut down) are broadcast from rank 0: a length, then the JSON
//!   bytes.
//! * Each slice answers the master point-to-point. The master polls for the
//!   answers; if a step takes longer than the pipeline's `stepTimeout` it
//!   logs which slices are silent and aborts the MPI job, so a slice that
//!   hangs or dies ends the run with an error instead of a deadlock (a slice
//!   that exits is also caught by `mpirun` itself, which ends the job).
//! * Before a stage with `shareData: true` (and `shareDataOn: true`), slices
//!   send their shared property sets to their ring neighbour, serialised with
//!   bincode, and store what they receive as `"<key>-<neighbourRank>"`.
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
    receive_shared, shared_items, Master, ProcessOutcome, RunOptions, RunReport, Slice,
    VisitReport, VisitState,
};
use crate::stage::{Services, StageRegistry};
use crate::Result;

const TAG_REPLY: i32 = 2;
const TAG_RING: i32 = 3;
/// Largest accepted message (256 MiB): a bad length is an error, not an
/// unbounded allocation.
const MAX_MESSAGE: u64 = 256 << 20;

#[derive(Debug, Serialize, Deserialize)]
enum Cmd {
    Start(Event),
    Process(usize),
    End,
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
    if rank == 0 {
        let master = Master::build(cfg, registry, &services, &opts.run_id, n)?;
        run_master(&world, master, cfg, n, events).map(Some)
    } else {
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

/// Polls for one reply until `timeout`; on timeout aborts the whole job.
fn receive_reply<C: Communicator>(
    world: &C,
    timeout: Duration,
    waiting: &str,
) -> Result<(usize, Reply)> {
    let t0 = Instant::now();
    let mut nap = Duration::from_micros(20);
    let mut spins = 0u32;
    loop {
        if let Some(status) = world.any_process().immediate_probe_with_tag(TAG_REPLY) {
            let src = status.source_rank();
            let (bytes, _): (Vec<u8>, Status) = world
                .process_at_rank(src)
                .receive_vec_with_tag::<u8>(TAG_REPLY);
            let reply: Reply = serde_json::from_slice(&bytes).map_err(terr)?;
            return Ok(((src - 1) as usize, reply));
        }
        if t0.elapsed() > timeout {
            tracing::error!(
                "no answer from slices ({waiting}) within {timeout:?}: aborting the MPI job"
            );
            eprintln!(
                "daf: slice lost: no answer ({waiting}) within {timeout:?}; aborting the MPI job"
            );
            world.abort(3);
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
) -> Result<RunReport> {
    let t0 = Instant::now();
    let mut report = RunReport {
        n_slices: n,
        ..RunReport::default()
    };
    let outcome = (|| -> Result<()> {
        for (visit, ev) in events.into_iter().enumerate() {
            let ev = ev?;
            let tv = Instant::now();
            let mut st = VisitState::start(&ev);
            broadcast_cmd(world, &Cmd::Start(ev.clone()))?;
            for i in 0..master.n_stages() {
                master.pre(i, &mut st, &ev);
                broadcast_cmd(world, &Cmd::Process(i))?;
                let mut done = vec![false; n];
                for _ in 0..n {
                    let what = format!("visit {}, stage {}", ev.label(visit), i + 1);
                    match receive_reply(world, cfg.step_timeout, &what)? {
                        (r, Reply::Done(j)) if j == i && r < n && !done[r] => done[r] = true,
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
            broadcast_cmd(world, &Cmd::End)?;
            let mut outs: Vec<Option<ProcessOutcome>> = (0..n).map(|_| None).collect();
            for _ in 0..n {
                match receive_reply(
                    world,
                    cfg.step_timeout,
                    &format!("end of visit {}", ev.label(visit)),
                )? {
                    (r, Reply::Visit(o)) if r < n => outs[r] = Some(o),
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
                master: st.finish(-1, false),
                slices: outs
                    .into_iter()
                    .enumerate()
                    .map(|(r, o)| {
                        o.ok_or(HarnessError::SliceLost {
                            rank: r as i32,
                            message: "no end-of-visit report".into(),
                        })
                    })
                    .collect::<Result<_>>()?,
                elapsed: tv.elapsed(),
            });
            if cfg.one_loop {
                break;
            }
        }
        Ok(())
    })();
    // Clean shutdown in every case, so no slice waits forever.
    broadcast_cmd(world, &Cmd::Shutdown)?;
    outcome?;
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

fn exchange<C: Communicator>(
    world: &C,
    cfg: &PipelineConfig,
    rank: usize,
    n: usize,
    items: Vec<(String, PropertySet)>,
) -> Result<(usize, Vec<(String, PropertySet)>)> {
    let (to, from) = cfg.topology.neighbours(rank, n);
    let bytes = bincode::serde::encode_to_vec(&items, bincode_config()).map_err(terr)?;
    let received = mpi::request::scope(|scope| {
        let req = world
            .process_at_rank((to + 1) as i32)
            .immediate_send_with_tag(scope, &bytes[..], TAG_RING);
        let (msg, _) = world
            .process_at_rank((from + 1) as i32)
            .receive_vec_with_tag::<u8>(TAG_RING);
        req.wait();
        msg
    });
    let (items, _): (Vec<(String, PropertySet)>, usize) =
        bincode::serde::decode_from_slice(&received, bincode_config()).map_err(terr)?;
    Ok((from, items))
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
                    let (from, items) = exchange(world, cfg, rank, n, shared_items(&st.cb))?;
                    receive_shared(&mut st.cb, from, items);
                }
                slice.process(i, &mut st, &ev);
                send_reply(world, &Reply::Done(i))?;
            }
            Cmd::End => {
                let out = std::mem::take(&mut st).finish(slice.rank, false);
                send_reply(world, &Reply::Visit(out))?;
            }
            Cmd::Shutdown => return Ok(()),
        }
    }
}
