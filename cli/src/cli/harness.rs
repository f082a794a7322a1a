//! `daf run`: runs a pipeline policy on the harness (threads by default,
//! MPI under `mpirun` when built with the `mpi` feature).

use std::io::Write;
use std::path::{Path, PathBuf};

use daf_harness::launch::{EventSource, TransportChoice};
use daf_harness::{PipelineConfig, RunReport, RunRequest, Services, StageRegistry};
use daf_storages::atomic::AtomicFile;

use super::CliError;

/// Which transport runs the slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// MPI when launched by `mpirun` (and built with `--features mpi`), else threads.
    Auto,
    /// Slices are threads of this process.
    Threads,
    /// Rank 0 is the master, ranks 1..N−1 the slices (needs `--features mpi`).
    Mpi,
}

/// The pipeline policy keys and exit statuses, shown by `daf run --help`.
pub const PIPELINE_HELP: &str = "\
Pipeline policy keys (PAF, .policy or YAML; optionally under `execute:`):
  appStage {name, serialClass, parallelClass, eventTopic, stagePolicy, shareData}
                   the stages, in order (stageName is accepted for name)
  failureStage {...} gets the failed clipboard (failedInStage, failureType ...)
  nSlices          slices (default 1; --slices overrides; MPI: ranks - 1)
  shareDataOn      exchange shared clipboard items before shareData stages
  topology {type, param1, param2}   who shares with whom:
                   ring (param1 clockwise|counterclockwise),
                   sliceleaders (param1 = m: rank % m == 0 receives from the next m-1),
                   focalplane (param1 x param2 periodic grid, 4 neighbours)
  executionMode    oneloop runs one visit
  stepTimeout      seconds the master waits for a step (default 300), warning meanwhile
  dir {defaultRoot, runDirPattern, work, input, output, update, scratch}, database.url
                   the location map
  exitTopic        at the normal end, publish message=\"exiting_<runId>\" on this topic
  shutdownTopic    an event on this topic stops the run at its int `level`:
                   1 now (running stages are not waited for), 2 at the next
                   synchronisation point, 3 at the end of the stage, 4 (default)
                   at the end of the visit; no visit starts after it. It acts
                   when read: events are read one ahead of the visits
  ignored, with a warning: eventBrokerHost, logThreshold, localLogMode, barrierDelay,
  eventTimeout; unknown keys are warned about too.
Built-in stages: InputStage, OutputStage, SymLinkStage, EventStage (keysToPublish
\"topic=clipboardKey\", RunMode), NoOp; lsst.pex.harness.* class paths work too.
Published events (EventStage, exitTopic) go to --publish as --events lines.
Exit status: 0 all visits ok; 3 some visit failed in some process (report printed);
4 a slice was lost (died, or silent past stepTimeout): the partial report of the
visits that completed is printed (and --dump written), naming the lost slice;
5 stopped by a shutdown at level 1 (under MPI the job is aborted). A shutdown at
levels 2-4 exits 0 (or 3), the summary saying where the run stopped.";

/// Arguments of `daf run`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = PIPELINE_HELP)]
pub struct RunArgs {
    /// The pipeline policy (PAF, .policy or YAML). stepTimeout defaults to 300 s.
    pub pipeline: PathBuf,
    /// Events as JSON lines, one visit each (`-` = stdin). Without it, one
    /// visit runs with an empty event. A line (every member optional):
    /// {"jobIdentity": {"visit": 1}, "inputDatasets": [{"type": "raw", "ids": {"visit": 1}}],
    /// "payload": {...}, "topics": {"TOPIC": {...}}, "clipboard": {"root": "tests"}}.
    /// A stage's eventTopic T gets topics.T (else payload); clipboard items are
    /// put as plain items; a topic with the policy's shutdownTopic stops the run at its
    /// `level` (see below).
    #[arg(long)]
    pub events: Option<String>,
    /// Number of slices (threads); overrides the policy's `nSlices`.
    /// Under MPI the number of ranks minus one.
    #[arg(long)]
    pub slices: Option<usize>,
    /// The run id stages see.
    #[arg(long, default_value = "run")]
    pub run_id: String,
    /// Adds `KEY=PATH` to the location map (after the policy's `dir` entries).
    #[arg(long = "location", value_name = "KEY=PATH")]
    pub locations: Vec<String>,
    /// Writes every visit's outcome per process as JSON (for comparing runs).
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// Writes the events the run published (EventStage, exitTopic) as JSON
    /// lines in the --events format, so they can drive another pipeline.
    #[arg(long, value_name = "FILE")]
    pub publish: Option<PathBuf>,
    /// The transport.
    #[arg(long, value_enum, default_value = "auto")]
    pub transport: Transport,
}

/// Loads a pipeline policy and its configuration for `run_id`.
pub fn load_pipeline(path: &Path, run_id: &str) -> Result<PipelineConfig, CliError> {
    Ok(daf_harness::launch::load_pipeline(path, run_id)?)
}

fn parse_locations(locations: &[String]) -> Result<Vec<(String, String)>, CliError> {
    locations
        .iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| CliError::new(format!("--location {l:?}: expected KEY=PATH")))
        })
        .collect()
}

/// Services for command-line runs: default registries, the location map,
/// and the butler of `daf-butler` for IO stages that use the butler method.
pub fn services(cfg: &PipelineConfig, locations: &[String]) -> Result<Services, CliError> {
    Ok(daf_harness::launch::default_services(
        cfg,
        &parse_locations(locations)?,
    )?)
}

impl RunArgs {
    /// The run request these arguments describe.
    pub fn request(&self) -> Result<RunRequest, CliError> {
        Ok(RunRequest {
            pipeline: self.pipeline.clone(),
            events: EventSource::from_arg(self.events.as_deref()),
            slices: self.slices,
            run_id: self.run_id.clone(),
            locations: parse_locations(&self.locations)?,
            transport: match self.transport {
                Transport::Auto => TransportChoice::Auto,
                Transport::Threads => TransportChoice::Threads,
                Transport::Mpi => TransportChoice::Mpi,
            },
        })
    }
}

/// Prints a run summary.
pub fn print_summary(report: &RunReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} visits on {} slices in {:.3} s; {} failed (visit, process) pairs",
        report.visits.len(),
        report.n_slices,
        report.elapsed.as_secs_f64(),
        report.failures()
    )?;
    for v in &report.visits {
        let mut fails = Vec::new();
        if let Some(f) = &v.master.failure {
            fails.push(format!(
                "master: {} in {} ({})",
                f.failure_type, f.stage, f.message
            ));
        }
        for s in &v.slices {
            if let Some(f) = &s.failure {
                fails.push(format!(
                    "slice {}: {} in {} ({})",
                    s.rank, f.failure_type, f.stage, f.message
                ));
            }
        }
        let status = if fails.is_empty() {
            "ok".to_string()
        } else {
            fails.join("; ")
        };
        writeln!(
            out,
            "  visit {:>4}: {:>9.3} ms  {status}",
            v.id,
            v.elapsed.as_secs_f64() * 1e3
        )?;
    }
    let published = report.published();
    if !published.is_empty() {
        let mut topics: Vec<&str> = published.iter().map(|p| p.topic.as_str()).collect();
        topics.dedup();
        writeln!(
            out,
            "  published {} events ({})",
            published.len(),
            topics.join(", ")
        )?;
    }
    if let Some(s) = &report.shutdown {
        let level = daf_harness::ShutdownLevel::from_int(s.level as i64)
            .map_or_else(|| format!("level {}", s.level), |l| l.to_string());
        if s.visit.is_empty() {
            writeln!(out, "  shutdown at {level} before any visit")?;
        } else {
            writeln!(
                out,
                "  shutdown at {level}: stopped in visit {} at {}",
                s.visit, s.at
            )?;
        }
    }
    if let Some(l) = &report.lost {
        writeln!(
            out,
            "  LOST slice {} in visit {}, {}: {}",
            l.rank, l.visit, l.stage, l.message
        )?;
        writeln!(
            out,
            "  partial report: {} visits completed before the slice was lost",
            report.visits.len()
        )?;
    }
    Ok(())
}

/// Writes the published events as JSON lines (the `--events` format), atomically.
pub fn write_published(report: &RunReport, path: &Path) -> Result<(), CliError> {
    let mut f = AtomicFile::create(path)?;
    for p in report.published() {
        serde_json::to_writer(f.writer(), &p.to_event_line())
            .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
        f.writer().write_all(b"\n")?;
    }
    f.commit()?;
    Ok(())
}

/// Everything `daf run` writes for a report: the summary, `--dump`, `--publish`.
fn write_outputs(
    report: &RunReport,
    args_dump: Option<&Path>,
    publish: Option<&Path>,
) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    print_summary(report, &mut out)?;
    out.flush()?;
    if let Some(d) = args_dump {
        write_dump(report, d)?;
    }
    if let Some(p) = publish {
        write_published(report, p)?;
    }
    Ok(())
}

/// Writes the report's JSON atomically.
pub fn write_dump(report: &RunReport, path: &Path) -> Result<(), CliError> {
    let mut f = AtomicFile::create(path)?;
    serde_json::to_writer_pretty(f.writer(), &report.to_json())
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    f.writer().write_all(b"\n")?;
    f.commit()?;
    Ok(())
}

/// Runs `daf run` with the built-in stages. Exit status 3 when some visit
/// failed in some process.
pub fn run(args: RunArgs) -> Result<(), CliError> {
    run_with_registry(args, &StageRegistry::with_defaults())
}

/// The first stage class of `cfg` that is a dotted path the built-in
/// registry does not know: an application stage written in Python.
pub fn python_stage_class(cfg: &PipelineConfig, registry: &StageRegistry) -> Option<String> {
    cfg.stages
        .iter()
        .chain(cfg.failure_stage.iter())
        .flat_map(|s| {
            let serial = s.serial_class.as_ref().filter(|c| !registry.has_serial(c));
            let parallel = s
                .parallel_class
                .as_ref()
                .filter(|c| !registry.has_parallel(c));
            serial.into_iter().chain(parallel)
        })
        .find(|c| c.contains('.'))
        .cloned()
}

/// True when started by an MPI launcher (the environment `mpirun` sets).
fn daf_harness_launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// The Python interpreter that runs Python stages: `DAF_PYTHON`, else
/// `python3` on the `PATH`.
fn python() -> String {
    std::env::var("DAF_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Hands a pipeline with Python stages to `python -m daf.run` (the `daf`
/// Python package runs the same harness in-process with the Python stages
/// registered; this binary does not link Python). Same arguments, output
/// and exit status.
fn run_in_python(args: &RunArgs, class: &str) -> Result<(), CliError> {
    let py = python();
    let mut cmd = std::process::Command::new(&py);
    cmd.args(["-m", "daf.run"]).arg(&args.pipeline);
    if let Some(e) = &args.events {
        cmd.arg("--events").arg(e);
    }
    if let Some(n) = args.slices {
        cmd.arg("--slices").arg(n.to_string());
    }
    cmd.arg("--run-id").arg(&args.run_id);
    for l in &args.locations {
        cmd.arg("--location").arg(l);
    }
    if let Some(d) = &args.dump {
        cmd.arg("--dump").arg(d);
    }
    if args.publish.is_some() {
        return Err(CliError::new(format!(
            "--publish is not supported for pipelines with Python stages (stage class {class})"
        )));
    }
    cmd.arg("--transport").arg(match args.transport {
        Transport::Auto => "auto",
        Transport::Threads => "threads",
        Transport::Mpi => "mpi",
    });
    // Under mpirun the rank process becomes the Python run (exec), so MPI
    // sees the process it launched; this binary never initialises MPI here.
    #[cfg(unix)]
    if args.transport == Transport::Mpi || daf_harness_launched_by_mpi() {
        use std::os::unix::process::CommandExt;
        let e = cmd.exec();
        return Err(CliError::new(format!(
            "stage class {class} is a Python class: running it needs {py} with the daf package \
             (pip install ./python; set DAF_PYTHON to choose the interpreter): {e}"
        )));
    }
    let status = cmd.status().map_err(|e| {
        CliError::new(format!(
            "stage class {class} is a Python class: running it needs {py} with the daf package \
             (pip install ./python; set DAF_PYTHON to choose the interpreter): {e}"
        ))
    })?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(CliError {
            message: format!(
                "the Python run of {} ended with status {code} (stage class {class} is not a \
                 built-in stage, so it was looked up as a Python class)",
                args.pipeline.display()
            ),
            code,
        }),
        None => Err(CliError::new(format!(
            "the Python run of {} was killed by a signal",
            args.pipeline.display()
        ))),
    }
}

/// Runs `daf run` with the stages of `registry` (the built-in ones plus an
/// application's own): prints the summary, writes `--dump`, exit status 3
/// when some visit failed in some process.
pub fn run_with_registry(args: RunArgs, registry: &StageRegistry) -> Result<(), CliError> {
    let cfg = load_pipeline(&args.pipeline, &args.run_id)?;
    if let Some(class) = python_stage_class(&cfg, registry) {
        return run_in_python(&args, &class);
    }
    let req = args.request()?;
    let mut services = daf_harness::launch::default_services(&cfg, &req.locations)?;
    // A lost slice: the master prints the partial report (under MPI just
    // before it aborts the job, so this is the only place it can).
    let (dump, publish) = (args.dump.clone(), args.publish.clone());
    services.on_lost = Some(std::sync::Arc::new(move |report: &RunReport| {
        if let Err(e) = write_outputs(report, dump.as_deref(), publish.as_deref()) {
            eprintln!("daf: writing the partial report: {e}");
        }
        if let Some(l) = &report.lost {
            eprintln!(
                "daf: slice {} lost in visit {}, {}: {} ({} visits completed)",
                l.rank,
                l.visit,
                l.stage,
                l.message,
                report.visits.len()
            );
        }
    }));
    let report = match daf_harness::launch::run_loaded(&cfg, &req, registry, services) {
        Ok(Some(report)) => report,
        Ok(None) => return Ok(()), // an MPI slice rank: the master reports
        Err(daf_harness::HarnessError::SliceLost { rank, message, .. }) => {
            return Err(CliError {
                message: format!("slice {rank} lost: {message} (partial report printed)"),
                code: 4,
            })
        }
        Err(e) => return Err(e.into()),
    };
    write_outputs(&report, args.dump.as_deref(), args.publish.as_deref())?;
    if let Some(s) = report
        .shutdown
        .as_ref()
        .filter(|s| s.level == daf_harness::ShutdownLevel::Now.as_int())
    {
        return Err(CliError {
            message: format!(
                "stopped now by a level-1 shutdown in visit {} ({})",
                s.visit, s.at
            ),
            code: 5,
        });
    }
    if report.failures() > 0 {
        return Err(CliError {
            message: format!("{} (visit, process) pairs failed", report.failures()),
            code: 3,
        });
    }
    Ok(())
}

/// Arguments of `daf demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the demo repository goes (created; default `./daf-demo`).
    #[arg(default_value = "daf-demo")]
    pub dir: PathBuf,
    /// Number of visits.
    #[arg(long, default_value_t = 8)]
    pub visits: usize,
    /// Number of CCDs, one per thread slice.
    #[arg(long, default_value_t = 4)]
    pub ccds: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 1024)]
    pub side: usize,
}

/// Runs `daf demo` and prints its summary.
pub fn demo(args: DemoArgs) -> Result<(), CliError> {
    if args.ccds == 0 || args.visits == 0 || !(8..=8192).contains(&args.side) {
        return Err(CliError::new(
            "daf demo: --ccds and --visits must be positive, --side 8..8192",
        ));
    }
    let cfg = crate::demo::DemoConfig {
        dir: args.dir.clone(),
        visits: args.visits,
        ccds: args.ccds,
        side: args.side,
    };
    let t = std::time::Instant::now();
    let s = crate::demo::run(&cfg)?;
    let mib = (args.side * args.side * 4) as f64 / (1024.0 * 1024.0);
    let mut out = std::io::stdout().lock();
    writeln!(out, "daf demo in {}", args.dir.display())?;
    writeln!(
        out,
        "  wrote {} synthetic FITS exposures ({} raws + {} biases, {}x{} f32) in {:.3} s",
        s.inputs_written,
        args.visits * args.ccds,
        args.ccds,
        args.side,
        args.side,
        s.write_time.as_secs_f64()
    )?;
    writeln!(
        out,
        "  created repository {} (SimpleMapper, SQLite registry) and ingested them in {:.3} s",
        args.dir.join("repo").display(),
        s.ingest_time.as_secs_f64()
    )?;
    writeln!(
        out,
        "  pipeline input -> bias subtraction -> output (butler) on {} thread slices:",
        args.ccds
    )?;
    print_summary(&s.report, &mut out)?;
    let per_visit = s.report.elapsed.as_secs_f64() / args.visits as f64;
    writeln!(
        out,
        "  {:.1} ms per visit, {:.1} MiB/s through the IO stages (read raw + bias, write postISR)",
        per_visit * 1e3,
        3.0 * mib * (args.visits * args.ccds) as f64 / s.report.elapsed.as_secs_f64()
    )?;
    writeln!(
        out,
        "  queried {} postISR outputs in the registry, read back, bias removed, pixels exact, in {:.3} s; total {:.3} s",
        s.outputs_checked,
        s.check_time.as_secs_f64(),
        t.elapsed().as_secs_f64()
    )?;
    writeln!(
        out,
        "  provenance: daf provenance {} postISR visit=1 ccd=0",
        args.dir.join("repo").display()
    )?;
    if s.outputs_checked != args.visits * args.ccds || s.report.failures() > 0 {
        return Err(CliError::new(format!(
            "demo: {} of {} outputs checked, {} failures",
            s.outputs_checked,
            args.visits * args.ccds,
            s.report.failures()
        )));
    }
    Ok(())
}

/// Arguments of `daf provenance`.
#[derive(Debug, clap::Args)]
pub struct ProvenanceArgs {
    /// The repository.
    pub repo: PathBuf,
    /// The dataset type.
    pub dataset_type: String,
    /// The data id: `key=value` pairs (integers stay integers), e.g. `visit=1 ccd=2`.
    #[arg(required = true)]
    pub data_id: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_data_id(items: &[String]) -> Result<daf_base::DataId, CliError> {
    let mut id = daf_base::DataId::new();
    for it in items {
        for kv in it.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| CliError::new(format!("data id item {kv:?}: expected key=value")))?;
            match v.parse::<i64>() {
                Ok(i) => id.insert(k, i),
                Err(_) => match v.parse::<f64>() {
                    Ok(f) if v.contains('.') => id.insert(k, f),
                    _ => id.insert(k, v),
                },
            }
        }
    }
    Ok(id)
}

/// Runs `daf provenance`: lists the input datasets recorded for a dataset.
pub fn provenance(args: ProvenanceArgs) -> Result<(), CliError> {
    let id = parse_data_id(&args.data_id)?;
    let inputs = daf::harness_butler::provenance(&args.repo, &args.dataset_type, &id)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&inputs).map_err(|e| CliError::new(e.to_string()))?
        )?;
    } else if inputs.is_empty() {
        writeln!(out, "no provenance recorded for {} {id}", args.dataset_type)?;
    } else {
        writeln!(out, "{} {id} was made from:", args.dataset_type)?;
        for d in &inputs {
            writeln!(out, "  {} {}", d.dataset_type, d.ids)?;
        }
    }
    Ok(())
}
