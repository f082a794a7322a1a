//! The FITS fuzz campaign (issue 15 §2, issue 17 §2): ≥ 10,000 mutated FITS
//! files — plain, `.gz` and tile-compressed `.fz`, grown from the seeds in
//! `tests/data/fits/seeds` (made by astropy: `make_seeds.py`) — each read the
//! way `daf show` and the formatters read them. Required: no signal, no hang
//! over 5 s, no panic, and no input whose reading allocates more than 4× the
//! larger of its file size and its seed's plain (decompressed) size.
//!
//! How: the test re-runs its own binary as a worker (the ignored test
//! `fuzz_worker`) that reads inputs in order, printing a line before and
//! after each with the peak heap allocation it measured (a counting global
//! allocator). The parent watches the lines: a worker killed by a signal or
//! silent for 5 s is charged to the input it was reading, and a new worker
//! carries on after it. So a crash in C code (cfitsio) is counted and named,
//! not just fatal, and the campaign stays one process in the normal case
//! (fast: a few seconds). Counts are printed; `DAF_FUZZ_KEEP=DIR` keeps the
//! inputs that failed, `DAF_FUZZ_CASES=N` changes the number of inputs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use daf::base::{Policy, PropertySet};
use daf::formatters::catalog::SourceCatalog;
use daf::formatters::image::*;
use daf::formatters::{FormatterRegistry, Persistable, Persistence};
use daf::storages::fits::FitsFile;
use daf::storages::{LogicalLocation, StorageRegistry};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to System and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new > l.size() {
                let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

const DEFAULT_CASES: usize = 10_240;

fn cases() -> usize {
    std::env::var("DAF_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn seeds() -> Vec<(String, Vec<u8>, usize)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fits/seeds");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let p = dir.join(&n);
            let bytes = std::fs::read(&p).unwrap();
            // The seed's plain size: what it decompresses to (PLIO_1 and
            // HCOMPRESS_1 are refused: their seeds test the refusal).
            let plain = match FitsFile::open(&p) {
                Ok(f) => f.plain_len(),
                Err(e) if n.contains("plio") || n.contains("hcompress") => {
                    assert!(e.to_string().contains("not supported"), "{e}");
                    bytes.len()
                }
                Err(e) => panic!("seed {n} must read: {e}"),
            };
            (n, bytes, plain)
        })
        .collect()
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const VALUES: &[&str] = &[
    "0",
    "-5",
    "1",
    "-1",
    "2",
    "7",
    "999",
    "1000",
    "4294967296",
    "2147483647",
    "-2147483648",
    "9223372036854775807",
    "99999999999999999999",
    "1.5E300",
    "NAN",
    "T",
    "F",
    "'RICE_1'",
    "'GZIP_1'",
    "'GZIP_2'",
    "'PLIO_1'",
    "'HCOMPRESS_1'",
    "'NOCOMPRESS'",
    "'NOPE'",
    "'SUBTRACTIVE_DITHER_2'",
    "'NO_DITHER'",
    "'1PB(100000)'",
    "'1QB'",
    "'2A'",
    "'999999999E'",
    "''",
    "'IMAGE'",
    "'BINTABLE'",
    "-32",
    "-64",
    "64",
    "16",
    "10000000",
];
const KEYS: &[&str] = &[
    "ZTILE1", "ZTILE2", "ZNAXIS", "ZNAXIS1", "ZNAXIS2", "ZBITPIX", "ZCMPTYPE", "ZVAL1", "ZVAL2",
    "ZQUANTIZ", "ZDITHER0", "ZBLANK", "ZSCALE", "ZZERO", "TFIELDS", "TFORM1", "TFORM2", "NAXIS",
    "NAXIS1", "NAXIS2", "NAXIS3", "BITPIX", "PCOUNT", "GCOUNT", "THEAP", "GROUPS", "BLANK",
    "BSCALE", "BZERO", "XTENSION", "EXTEND", "ZIMAGE", "TTYPE1", "TNULL1", "TDIM1",
];

fn card(key: &str, value: &str) -> [u8; 80] {
    let mut c = [b' '; 80];
    let t = format!("{key:<8}= {value:>20}");
    let n = t.len().min(80);
    c[..n].copy_from_slice(&t.as_bytes()[..n]);
    c
}

/// Positions of the cards of the header blocks (card starts whose text has
/// `= ` at column 9).
fn value_cards(b: &[u8]) -> Vec<usize> {
    (0..b.len() / 80)
        .map(|i| i * 80)
        .filter(|&o| b.get(o + 8..o + 10) == Some(b"= ".as_slice()))
        .collect()
}

fn mutate(b: &mut Vec<u8>, r: &mut Rng) {
    let n = b.len().max(1);
    match r.below(9) {
        0 => {
            let at = r.below(n);
            b.truncate(at);
        }
        1 => {
            for _ in 0..1 + r.below(8) {
                let at = r.below(n);
                if at < b.len() {
                    b[at] = r.next() as u8;
                }
            }
        }
        2 => {
            let at = r.below(n).min(b.len());
            let k = 1 + r.below(100);
            let ins: Vec<u8> = (0..k).map(|_| r.next() as u8).collect();
            b.splice(at..at, ins);
        }
        3 => {
            let at = r.below(n).min(b.len());
            let k = (1 + r.below(3000)).min(b.len() - at);
            b.drain(at..at + k);
        }
        4 | 5 => {
            // A value card rewritten: same key, a dangerous value.
            let cards = value_cards(b);
            if !cards.is_empty() {
                let o = cards[r.below(cards.len())];
                let key = String::from_utf8_lossy(&b[o..o + 8]).trim().to_string();
                let c = card(&key, VALUES[r.below(VALUES.len())]);
                b[o..o + 80].copy_from_slice(&c);
            }
        }
        6 => {
            // A card replaced by a dangerous keyword and value.
            let cards = value_cards(b);
            if !cards.is_empty() {
                let o = cards[r.below(cards.len())];
                let c = card(KEYS[r.below(KEYS.len())], VALUES[r.below(VALUES.len())]);
                b[o..o + 80].copy_from_slice(&c);
            }
        }
        7 => {
            // A 2880-byte block duplicated or dropped.
            let blocks = b.len() / 2880;
            if blocks > 0 {
                let i = r.below(blocks) * 2880;
                if r.below(2) == 0 {
                    let blk = b[i..i + 2880].to_vec();
                    b.splice(i..i, blk);
                } else {
                    b.drain(i..i + 2880);
                }
            }
        }
        _ => {
            // Data scrambled: a run of random bytes after the first header.
            if b.len() > 2880 {
                let at = 2880 + r.below(b.len() - 2880);
                let k = (1 + r.below(400)).min(b.len() - at);
                for x in &mut b[at..at + k] {
                    *x = r.next() as u8;
                }
            }
        }
    }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Input `i`: (kind, file name, bytes, denominator of the allocation ratio).
fn input(i: usize, seeds: &[(String, Vec<u8>, usize)]) -> (&'static str, String, Vec<u8>, usize) {
    let (name, seed, plain) = &seeds[i % seeds.len()];
    let mut r = Rng::new(i as u64 + 1);
    let is_gz = name.ends_with(".gz");
    let kind = if is_gz {
        "gz"
    } else if name.ends_with(".fz") {
        "fz"
    } else {
        "plain"
    };
    let rounds = 1 + r.below(3);
    let bytes = if is_gz && r.below(2) == 0 {
        // Mutate the inflated file, then compress it again.
        let f = FitsFile::from_bytes(name.as_str(), {
            let mut d = flate2::read::GzDecoder::new(seed.as_slice());
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut d, &mut v).unwrap();
            v
        })
        .unwrap();
        let mut b = f.bytes().to_vec();
        for _ in 0..rounds {
            mutate(&mut b, &mut r);
        }
        gzip(&b)
    } else {
        let mut b = seed.clone();
        for _ in 0..rounds {
            mutate(&mut b, &mut r);
        }
        b
    };
    let denom = bytes.len().max(*plain);
    (kind, format!("{i:05}-{name}"), bytes, denom)
}

fn persistence() -> Persistence {
    Persistence::new(
        Policy::new(),
        FormatterRegistry::with_defaults(),
        StorageRegistry::with_defaults(),
    )
}

fn try_get<T: Persistable>(p: &Persistence, loc: &str, ad: &PropertySet) {
    if let Ok(mut st) = p.retrieve_storage("FitsStorage", &LogicalLocation::literal(loc)) {
        let _ = p.retrieve_as::<T>(std::slice::from_mut(&mut st), ad);
    }
}

/// Everything `daf show` and the formatters do with a file.
fn read_everything(p: &Persistence, path: &Path) {
    // `daf show` as typed (text). `--json` renders every card as a JSON
    // tree (~6x the header's bytes), so it is not held to the 4x bound.
    let _ = daf_cli::cli::show::show_fits(path, false);
    if let Ok(f) = FitsFile::open(path) {
        for h in f.hdus() {
            // a cut-out first: on a compressed image it decodes only its tiles
            let _ = f.read_image::<u16>(h.index, Some((1, 1, 2, 2)));
            let _ = f.read_image::<f32>(h.index, None);
            let _ = f.image_stats(h.index);
            let _ = f.read_table(h.index);
        }
    }
    let loc = path.to_str().unwrap();
    let none = PropertySet::new();
    try_get::<ExposureF>(p, loc, &none);
    try_get::<MaskedImageF>(p, loc, &none);
    try_get::<Mask>(p, loc, &none);
    try_get::<DecoratedImageF>(p, loc, &none);
    try_get::<SourceCatalog>(p, loc, &none);
    let mut cut = PropertySet::new();
    for (k, v) in [("llcX", 2), ("llcY", 3), ("width", 5), ("height", 4)] {
        cut.set(k, v).unwrap();
    }
    try_get::<ImageF>(p, &format!("{loc}[1]"), &cut);
}

/// The worker: reads inputs DAF_FUZZ_FROM..DAF_FUZZ_TO, reporting each.
#[test]
#[ignore = "run by fits_fuzz_campaign as its worker process"]
fn fuzz_worker() {
    let (Ok(from), Ok(to), Ok(dir)) = (
        std::env::var("DAF_FUZZ_FROM"),
        std::env::var("DAF_FUZZ_TO"),
        std::env::var("DAF_FUZZ_DIR"),
    ) else {
        return;
    };
    let (from, to): (usize, usize) = (from.parse().unwrap(), to.parse().unwrap());
    std::panic::set_hook(Box::new(|_| {}));
    let seeds = seeds();
    let p = persistence();
    let out = std::io::stdout();
    for i in from..to {
        let (_, name, bytes, _) = input(i, &seeds);
        let path = Path::new(&dir).join(&name);
        std::fs::write(&path, &bytes).unwrap();
        writeln!(out.lock(), "@@S {i}").unwrap();
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let ok =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_everything(&p, &path)))
                .is_ok();
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        let _ = std::fs::remove_file(&path);
        writeln!(
            out.lock(),
            "@@D {i} {peak} {}",
            if ok { "ok" } else { "panic" }
        )
        .unwrap();
    }
    writeln!(out.lock(), "@@END").unwrap();
}

#[derive(Default, Debug)]
struct Tally {
    inputs: usize,
    plain: usize,
    gz: usize,
    fz: usize,
    signals: Vec<(usize, String)>,
    hangs: Vec<usize>,
    panics: Vec<usize>,
    over: Vec<(usize, f64)>,
    max_ratio: f64,
    max_ratio_input: usize,
    max_raw_ratio: f64,
}

/// Reading any file costs some fixed memory whatever its size (the gzip
/// inflater's ~40 KB state, I/O buffers, the JSON of `daf show`): the ratio is
/// taken over at least this many bytes, so a 2 KB file is not failed for
/// using 60 KB. Growth with what a header *claims* is what the bound catches.
const FIXED_COST_FLOOR: usize = 64 << 10;

/// Runs workers over `from..to`, restarting after a crash or hang.
fn campaign(from: usize, to: usize, dir: &Path, seeds: &[(String, Vec<u8>, usize)]) -> Tally {
    let exe = std::env::current_exe().unwrap();
    let mut t = Tally::default();
    let mut next = from;
    while next < to {
        let mut child = Command::new(&exe)
            .args([
                "fuzz_worker",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("DAF_FUZZ_FROM", next.to_string())
            .env("DAF_FUZZ_TO", to.to_string())
            .env("DAF_FUZZ_DIR", dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut current: Option<usize> = None;
        let mut finished = false;
        loop {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(line) => {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    match f.as_slice() {
                        ["@@S", i] => current = Some(i.parse().unwrap()),
                        ["@@D", i, peak, status] => {
                            let i: usize = i.parse().unwrap();
                            let (kind, _, bytes, denom) = input(i, seeds);
                            let _ = bytes;
                            match kind {
                                "gz" => t.gz += 1,
                                "fz" => t.fz += 1,
                                _ => t.plain += 1,
                            }
                            t.inputs += 1;
                            let peak = peak.parse::<f64>().unwrap();
                            t.max_raw_ratio = t.max_raw_ratio.max(peak / denom as f64);
                            let ratio = peak / denom.max(FIXED_COST_FLOOR) as f64;
                            if ratio > t.max_ratio {
                                t.max_ratio = ratio;
                                t.max_ratio_input = i;
                            }
                            if ratio > 4.0 {
                                t.over.push((i, ratio));
                            }
                            if *status == "panic" {
                                t.panics.push(i);
                            }
                            current = None;
                            next = i + 1;
                        }
                        ["@@END"] => {
                            finished = true;
                            break;
                        }
                        _ => {}
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(i) = current {
                        t.hangs.push(i);
                        t.inputs += 1;
                        next = i + 1;
                    }
                    let _ = child.kill();
                    break;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = child.wait().unwrap();
        if finished {
            break;
        }
        if let Some(i) = current {
            use std::os::unix::process::ExitStatusExt;
            if !t.hangs.contains(&i) {
                t.signals
                    .push((i, format!("{status:?} (signal {:?})", status.signal())));
                t.inputs += 1;
                next = i + 1;
            }
        } else if !status.success() && next < to {
            panic!("fuzz worker failed outside an input: {status:?}");
        }
    }
    t
}

#[test]
fn fits_fuzz_campaign() {
    let seeds = seeds();
    let n = cases();
    let dir = tempfile::tempdir().unwrap();
    let workers = 2;
    let per = n.div_ceil(workers);
    let parts: Vec<Tally> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|w| {
                let (seeds, dir) = (&seeds, dir.path());
                s.spawn(move || campaign(w * per, ((w + 1) * per).min(n), dir, seeds))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut t = Tally::default();
    for p in parts {
        t.inputs += p.inputs;
        t.plain += p.plain;
        t.gz += p.gz;
        t.fz += p.fz;
        t.signals.extend(p.signals);
        t.hangs.extend(p.hangs);
        t.panics.extend(p.panics);
        t.over.extend(p.over);
        t.max_raw_ratio = t.max_raw_ratio.max(p.max_raw_ratio);
        if p.max_ratio > t.max_ratio {
            t.max_ratio = p.max_ratio;
            t.max_ratio_input = p.max_ratio_input;
        }
    }
    let name = |i: usize| input(i, &seeds).1;
    // Straight to fd 2, past libtest's capture, so the counts are in the CI log.
    let _ = writeln!(
        std::io::stderr(),
        "FITS fuzz: {} inputs ({} plain, {} .gz, {} .fz) from {} seeds: {} signals, {} hangs (> 5 s), {} panics, max allocation {:.2}x max(file, plain size, 64 KiB) (input {}; {:.1}x without the 64 KiB floor), {} over 4x",
        t.inputs,
        t.plain,
        t.gz,
        t.fz,
        seeds.len(),
        t.signals.len(),
        t.hangs.len(),
        t.panics.len(),
        t.max_ratio,
        name(t.max_ratio_input),
        t.max_raw_ratio,
        t.over.len()
    );
    if let Some(keep) = std::env::var_os("DAF_FUZZ_KEEP").map(PathBuf::from) {
        std::fs::create_dir_all(&keep).unwrap();
        let bad = t
            .signals
            .iter()
            .map(|s| s.0)
            .chain(t.hangs.iter().copied())
            .chain(t.panics.iter().copied())
            .chain(t.over.iter().map(|o| o.0));
        for i in bad {
            let (_, nm, b, _) = input(i, &seeds);
            std::fs::write(keep.join(nm), b).unwrap();
        }
    }
    let show = |v: &[usize]| v.iter().take(10).map(|&i| name(i)).collect::<Vec<_>>();
    let mut problems = Vec::new();
    if t.inputs < n {
        problems.push(format!("only {} of {n} inputs ran", t.inputs));
    }
    if !t.signals.is_empty() {
        let v: Vec<_> = t
            .signals
            .iter()
            .take(10)
            .map(|(i, s)| (name(*i), s))
            .collect();
        problems.push(format!("signals: {v:?}"));
    }
    if !t.hangs.is_empty() {
        problems.push(format!("hangs: {:?}", show(&t.hangs)));
    }
    if !t.panics.is_empty() {
        problems.push(format!("panics: {:?}", show(&t.panics)));
    }
    if !t.over.is_empty() {
        let v: Vec<_> = t
            .over
            .iter()
            .take(10)
            .map(|(i, r)| (name(*i), *r))
            .collect();
        problems.push(format!("over 4x: {v:?}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
